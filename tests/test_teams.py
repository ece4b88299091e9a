"""/team/* in LiteLLM's shapes; a team's budget, models, aliases and limits over all its keys;
team member budgets; spend broken down by team; `python -m proxy teams`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.admin.routes import ADMIN

from .keys_helpers import PRICED, SLOW, admin, chat, generate, key_info, keys_config, ok, settle

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    return await gateway_factory(keys_config(upstream_base, dead_base))


async def test_team_new_info_update_list_delete(gw):
    team = await ok(gw, "POST", "/team/new", json={
        "team_id": "research", "team_alias": "Research", "models": [PRICED, "gpt-4o*"], "max_budget": 50,
        "budget_duration": "30d", "tpm_limit": 100000, "metadata": {"cost_center": 42},
        "members_with_roles": [{"role": "admin", "user_id": "ada"}, {"role": "user", "user_email": "bo@x.org"}],
        "tags": ["ml"], "team_member_budget": 5,
    })
    assert (team["team_id"], team["team_alias"], team["max_budget"], team["spend"]) == ("research", "Research", 50, 0)
    assert team["admins"] == ["ada"] and len(team["members_with_roles"]) == 2 and team["tags"] == ["ml"]
    key = await generate(gw, team_id="research", key_alias="r1")
    info = await ok(gw, "GET", "/team/info", params={"team_id": "research"})
    assert info["team_id"] == "research" and [k["key_alias"] for k in info["keys"]] == ["r1"]
    assert {m["user_id"] for m in info["team_memberships"]} >= {"ada"} and info["team_info"]["budget_reset_at"]
    updated = await ok(gw, "POST", "/team/update", json={"team_id": "research", "tpm_limit": None, "team_alias": "R&D"})
    assert updated["team_id"] == "research" and updated["data"]["tpm_limit"] is None
    assert updated["data"]["team_alias"] == "R&D" and updated["data"]["max_budget"] == 50
    listed = await ok(gw, "GET", "/team/list")
    assert [t["team_id"] for t in listed] == ["research"] and listed[0]["keys"][0]["key_alias"] == "r1"
    assert [t["team_id"] for t in await ok(gw, "GET", "/team/list", params={"user_id": "ada"})] == ["research"]
    ada = await ok(gw, "GET", "/user/info", params={"user_id": "ada"})  # members are users
    assert ada["user_info"]["teams"] == ["research"] and ada["teams"][0]["team_alias"] == "R&D"
    status, body, _ = await admin(gw, "POST", "/team/new", json={"team_id": "research"})
    assert status == 400 and "already exists" in body["error"]["message"]
    status, body, _ = await admin(gw, "GET", "/team/info", params={"team_id": "nope"})
    assert status == 404 and body["error"]["code"] == "404"
    assert await ok(gw, "POST", "/team/delete", json={"team_ids": ["research"]}) == {"deleted_teams": ["research"]}
    assert (await chat(gw, key["key"]))[0] == 401  # LiteLLM deletes a team's keys with it
    assert await ok(gw, "GET", "/team/list") == []


async def test_a_team_budget_exhausted_by_two_keys_together(gw):
    probe = await generate(gw)
    _, _, headers = await chat(gw, probe["key"])
    cost = float(headers["x-litellm-response-cost"])
    await ok(gw, "POST", "/team/new", json={"team_id": "web", "max_budget": cost * 1.5})
    a = await generate(gw, team_id="web", key_alias="web-a", max_budget=1)
    b = await generate(gw, team_id="web", key_alias="web-b", max_budget=1)
    assert (await chat(gw, a["key"]))[0] == 200
    assert (await chat(gw, b["key"]))[0] == 200  # 1 cost < 1.5: admitted; 2 cost now
    for key in (a, b):
        status, body, _ = await chat(gw, key["key"])
        assert status == 429 and body["error"]["type"] == "budget_exceeded"
        assert body["error"]["message"].startswith("Budget has been exceeded! Team=web Current cost: ")
    await settle(gw)
    team = (await ok(gw, "GET", "/team/info", params={"team_id": "web"}))["team_info"]
    logged = gw.rows("SELECT SUM(cost) AS c FROM request_log WHERE team_id = 'web'")[0]["c"]
    assert team["spend"] == pytest.approx(logged) == pytest.approx(2 * cost)
    # Every level is charged at once: each key its own request, the team both.
    assert (await key_info(gw, a["key"]))["spend"] == pytest.approx(cost)
    assert (await key_info(gw, b["key"]))["spend"] == pytest.approx(cost)


async def test_the_team_models_bound_the_keys_and_aliases_route(gw):
    await ok(gw, "POST", "/team/new", json={"team_id": "t", "models": [PRICED], "model_aliases": {"best": PRICED}})
    wide = await generate(gw, team_id="t", models=["*"])
    status, body, _ = await chat(gw, wide["key"], "gpt-4o-mini")
    assert status == 401 and body["error"]["type"] == "team_model_access_denied" and body["error"]["code"] == "401"
    assert "team not allowed to access model" in body["error"]["message"]
    assert (await chat(gw, wide["key"], "best"))[0] == 200
    assert gw.rows()[-1]["upstream_model"] == f"openai/{PRICED}"
    team_only = await generate(gw, team_id="t", models=["all-team-models"])
    assert (await chat(gw, team_only["key"]))[0] == 200
    await ok(gw, "POST", "/team/update", json={"team_id": "t", "models": []})  # the change reaches keys at once
    assert (await chat(gw, wide["key"], "gpt-4o-mini"))[0] == 200
    status, body, _ = await admin(gw, "POST", "/key/generate", json={"team_id": "ghost"})
    assert status == 400 and body["error"]["param"] == "team_id"


async def test_team_limits_blocking_and_member_budgets(gw):
    await ok(gw, "POST", "/team/new", json={"team_id": "ops", "max_parallel_requests": 1})
    added = await ok(gw, "POST", "/team/member_add", json={
        "team_id": "ops", "member": [{"role": "user", "user_id": "kim"}], "max_budget_in_team": 1e-9})
    assert [m["user_id"] for m in added["updated_team_memberships"]] == ["kim"]
    assert added["updated_users"][0]["user_id"] == "kim" and added["updated_users"][0]["teams"] == ["ops"]
    status, body, _ = await admin(gw, "POST", "/team/member_add", json={"team_id": "ops", "member": {"user_id": "kim"}})
    assert status == 400 and "already in team" in body["error"]["message"]
    kim = await generate(gw, team_id="ops", user_id="kim")
    lee = await generate(gw, team_id="ops", user_id="lee")
    results = await asyncio.gather(chat(gw, kim["key"], SLOW), chat(gw, lee["key"], SLOW))
    assert sorted(r[0] for r in results) == [200, 429]
    assert "team `ops`" in next(r for r in results if r[0] == 429)[1]["error"]["message"]
    # kim has spent her budget within the team (if hers was the request admitted); spend again:
    await chat(gw, kim["key"])
    status, body, _ = await chat(gw, kim["key"])
    assert status == 429 and "User=kim in Team=ops" in body["error"]["message"]
    assert (await chat(gw, lee["key"]))[0] == 200  # lee has no member budget
    await ok(gw, "POST", "/team/member_update", json={"team_id": "ops", "user_id": "kim", "max_budget_in_team": None})
    assert (await chat(gw, kim["key"]))[0] == 200
    after = await ok(gw, "POST", "/team/member_delete", json={"team_id": "ops", "user_id": "kim"})
    assert "kim" not in after["members"]
    assert (await admin(gw, "POST", "/team/member_delete", json={"team_id": "ops", "user_id": "kim"}))[0] == 404
    blocked = await ok(gw, "POST", "/team/block", json={"team_id": "ops"})
    assert blocked["blocked"] is True
    status, body, _ = await chat(gw, lee["key"])
    assert status == 401 and "Team=ops is blocked" in body["error"]["message"]
    await ok(gw, "POST", "/team/unblock", json={"team_id": "ops"})
    assert (await chat(gw, lee["key"]))[0] == 200


async def test_spend_by_team(gw):
    for team in ("red", "blue"):
        await ok(gw, "POST", "/team/new", json={"team_id": team})
    red = await generate(gw, team_id="red")
    blue = await generate(gw, team_id="blue")
    for key in (red, red, blue):
        assert (await chat(gw, key["key"]))[0] == 200
    await settle(gw)
    rows = gw.rows()
    cost = {t: sum(r["cost"] for r in rows if r["team_id"] == t) for t in ("red", "blue")}
    info = await ok(gw, "GET", "/spend/info")
    assert info["by_team"] == pytest.approx(cost) and list(info["by_team"]) == ["red", "blue"]
    logs = await ok(gw, "GET", "/spend/logs", params={"team_id": "red"})
    assert len(logs) == 2 and {entry["team_id"] for entry in logs} == {"red"}
    today = datetime.now(UTC).date().isoformat()
    days = await ok(gw, "GET", "/spend/logs", params={"start_date": today, "end_date": today})
    assert days[0]["teams"] == pytest.approx(cost)


def _cli(keys_db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "teams", "--keys-db", str(keys_db), *args],
        capture_output=True, text=True, cwd=REPO, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def test_teams_cli(gw):
    keys_db = Path(gw.app[ADMIN].path)
    made = await asyncio.to_thread(_cli, keys_db, "create", "--team-id", "cli-team", "--max-budget", "3",
                                   "--models", PRICED, "--member", "mo")
    assert made.returncode == 0 and "created team cli-team" in made.stdout, made.stderr
    key = await generate(gw, team_id="cli-team")  # the gateway finds the new team in keys.db
    assert (await chat(gw, key["key"], "gpt-4o-mini"))[0] == 401
    steps = [("add-member", "cli-team", "nia", "--max-budget-in-team", "1"), ("update", "cli-team", "--rpm", "9"),
             ("block", "cli-team")]
    for step in steps:
        done = await asyncio.to_thread(_cli, keys_db, *step)
        assert done.returncode == 0, (step, done.stderr)
    info = await asyncio.to_thread(_cli, keys_db, "info", "cli-team")
    assert '"rpm_limit": 9' in info.stdout and '"nia"' in info.stdout and '"blocked": true' in info.stdout
    for _ in range(100):  # the gateway reloads keys.db within its sync interval
        if (await chat(gw, key["key"]))[0] == 401:
            break
        await asyncio.sleep(0.1)
    status, body, _ = await chat(gw, key["key"])
    assert status == 401 and "blocked" in body["error"]["message"]
    listed = await asyncio.to_thread(_cli, keys_db, "list")
    assert "cli-team" in listed.stdout and "blocked" in listed.stdout and "1 team(s)" in listed.stdout
    gone = await asyncio.to_thread(_cli, keys_db, "delete", "cli-team", "nope")
    assert gone.returncode == 1 and "team_id=nope" in gone.stderr
