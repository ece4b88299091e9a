"""/user/* in LiteLLM's shapes, a user's budget, models and limits over all its keys, and the
`python -m proxy users` command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.admin.routes import ADMIN
from proxy.server.auth import hash_key

from .keys_helpers import PRICED, SLOW, admin, chat, generate, key_info, keys_config, ok, settle

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    return await gateway_factory(keys_config(upstream_base, dead_base))


async def test_user_new_creates_the_user_and_a_key(gw):
    made = await ok(gw, "POST", "/user/new", json={
        "user_id": "alice", "user_email": "alice@example.com", "user_alias": "Alice", "user_role": "internal_user",
        "max_budget": 10, "budget_duration": "30d", "models": [PRICED], "rpm_limit": 30,
        "metadata": {"desk": "3F"}, "key_alias": "alice-laptop", "sso_user_id": "okta-1", "password": "hunter22!",
    })
    assert made["user_id"] == "alice" and made["key"].startswith("sk-") and made["key_alias"] == "alice-laptop"
    assert (made["max_budget"], made["models"], made["user_email"], made["teams"]) == (10, [PRICED], "alice@example.com", [])
    assert made["budget_reset_at"] and made["expires"] is None and "password" not in made
    assert (await chat(gw, made["key"]))[0] == 200
    assert (await chat(gw, made["key"], "gpt-4o-mini"))[0] == 401  # the user's models bound its key
    info = await ok(gw, "GET", "/user/info", params={"user_id": "alice"})
    assert info["user_id"] == "alice" and info["user_info"]["sso_user_id"] == "okta-1"
    assert [k["key_alias"] for k in info["keys"]] == ["alice-laptop"] and info["teams"] == []
    assert "password" not in info["user_info"]

    bare = await ok(gw, "POST", "/user/new", json={"auto_create_key": False})
    assert bare["key"] == "" and len(bare["user_id"]) == 36  # a UUID, as LiteLLM makes
    status, body, _ = await admin(gw, "POST", "/user/new", json={"user_id": "alice"})
    assert status == 409 and "already exists" in body["error"]["message"]
    status, body, _ = await admin(gw, "POST", "/user/new", json={"user_role": "wizard"})
    assert status == 400 and body["error"]["param"] == "user_role"
    status, body, _ = await admin(gw, "POST", "/user/new", json={"teams": ["no-such-team"]})
    assert status == 400 and body["error"]["param"] == "teams"


async def test_a_user_budget_covers_all_its_keys(gw):
    await ok(gw, "POST", "/user/new", json={"user_id": "bob", "max_budget": 1e-9, "auto_create_key": False})
    first = await generate(gw, user_id="bob")
    second = await generate(gw, user_id="bob")
    assert (await chat(gw, first["key"]))[0] == 200
    status, body, _ = await chat(gw, second["key"])  # the other key spent the user's budget
    assert status == 429 and body["error"]["type"] == "budget_exceeded" and body["error"]["code"] == "429"
    assert body["error"]["message"].startswith("Budget has been exceeded! User=bob Current cost: ")
    await settle(gw)
    user = (await ok(gw, "GET", "/user/info", params={"user_id": "bob"}))["user_info"]
    logged = gw.rows("SELECT SUM(cost) AS c FROM request_log WHERE user_id = 'bob'")[0]["c"]
    assert logged > 0 and user["spend"] == pytest.approx(logged)
    # Raising the budget (or clearing it with null) lets both keys in again.
    await ok(gw, "POST", "/user/update", json={"user_id": "bob", "max_budget": None})
    assert (await chat(gw, second["key"]))[0] == 200


async def test_user_rate_limits_count_every_key(gw):
    await ok(gw, "POST", "/user/new", json={"user_id": "carol", "max_parallel_requests": 1, "auto_create_key": False})
    keys = [await generate(gw, user_id="carol") for _ in range(2)]
    results = await asyncio.gather(*(chat(gw, k["key"], SLOW) for k in keys))
    assert sorted(r[0] for r in results) == [200, 429]
    refused = next(r for r in results if r[0] == 429)
    assert "user `carol`" in refused[1]["error"]["message"]
    assert (await chat(gw, keys[0]["key"], SLOW))[0] == 200  # the slot was released


async def test_key_generate_makes_an_unknown_user_and_blocked_users_are_refused(gw):
    key = await generate(gw, user_id="dave")
    listed = await ok(gw, "GET", "/user/list")
    assert [u["user_id"] for u in listed["users"]] == ["dave"] and listed["total"] == 1
    assert listed["users"][0]["key_count"] == 1 and (listed["page"], listed["total_pages"]) == (1, 1)
    await ok(gw, "POST", "/user/update", json={"user_id": "dave", "blocked": True})
    status, body, _ = await chat(gw, key["key"])
    assert status == 401 and "User=dave is blocked" in body["error"]["message"]
    await ok(gw, "POST", "/user/update", json={"user_id": "dave", "blocked": False, "spend": 0})
    assert (await chat(gw, key["key"]))[0] == 200


async def test_user_info_for_the_users_own_key_and_delete_takes_its_keys(gw):
    made = await ok(gw, "POST", "/user/new", json={"user_id": "erin"})
    other = await ok(gw, "POST", "/user/new", json={"user_id": "frank"})
    status, body, _ = await admin(gw, "GET", "/user/info", token=made["key"])
    assert status == 200 and body["user_id"] == "erin"
    status, body, _ = await admin(gw, "GET", "/user/info", token=made["key"], params={"user_id": "frank"})
    assert status == 403
    status, body, _ = await admin(gw, "POST", "/user/delete", json={"user_ids": ["erin", "nobody"]})
    assert status == 404 and (await chat(gw, made["key"]))[0] == 200  # all or nothing
    assert await ok(gw, "POST", "/user/delete", json={"user_ids": ["erin"]}) == {"deleted_users": ["erin"]}
    assert (await chat(gw, made["key"]))[0] == 401
    assert (await admin(gw, "GET", "/user/info", params={"user_id": "erin"}))[0] == 404
    assert (await chat(gw, other["key"]))[0] == 200
    status, body, _ = await admin(gw, "POST", "/user/new", token=other["key"], json={})
    assert status == 401 and "/user/new requires the master key" in body["error"]["message"]


def _cli(keys_db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args[:1], "--keys-db", str(keys_db), *args[1:]],
        capture_output=True, text=True, cwd=REPO, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def test_users_cli_on_the_running_gateways_keys_db(gw):
    keys_db = Path(gw.app[ADMIN].path)
    made = await asyncio.to_thread(_cli, keys_db, "users", "create", "--user-id", "grace", "--max-budget", "2",
                                   "--models", f"{PRICED},gpt-4o*", "--key-alias", "grace-key")
    assert made.returncode == 0, made.stderr
    raw = next(line.split()[1] for line in made.stdout.splitlines() if line.startswith("key: "))
    assert (await chat(gw, raw))[0] == 200
    assert (await key_info(gw, raw))["user_id"] == "grace"
    for _ in range(100):  # the user row reaches the gateway within its sync interval
        if gw.app[ADMIN].registry.users.get("grace") is not None:
            break
        await asyncio.sleep(0.05)
    assert (await chat(gw, raw, "local-llama"))[0] == 401  # the user's models

    updated = await asyncio.to_thread(_cli, keys_db, "users", "update", "grace", "--rpm", "5")
    assert updated.returncode == 0, updated.stderr
    listed = await asyncio.to_thread(_cli, keys_db, "users", "list")
    assert listed.returncode == 0 and "grace" in listed.stdout and "1 user(s)" in listed.stdout
    info = await asyncio.to_thread(_cli, keys_db, "users", "info", "grace")
    assert info.returncode == 0 and '"rpm_limit": 5' in info.stdout and hash_key(raw) in info.stdout
    assert raw not in listed.stdout + info.stdout
    gone = await asyncio.to_thread(_cli, keys_db, "users", "delete", "grace")
    assert gone.returncode == 0 and "deleted users grace" in gone.stdout
    for _ in range(100):
        if (await chat(gw, raw))[0] == 401:
            break
        await asyncio.sleep(0.1)
    assert (await chat(gw, raw))[0] == 401
    missing = await asyncio.to_thread(_cli, keys_db, "users", "info", "grace")
    assert missing.returncode == 1 and "User grace not found" in missing.stderr
