"""The admin surface of virtual keys: /key/*, /spend/*, the keys CLI, restarts, and secrets
never reaching a file the gateway writes."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from proxy.admin.routes import ADMIN
from proxy.logsetup import TEXT_FORMAT
from proxy.server.auth import hash_key

from .conftest import MASTER_KEY
from .keys_helpers import PRICED, PROMPT, admin, chat, generate, key_info, keys_config, sdk, settle

REPO = Path(__file__).resolve().parent.parent
ENDPOINTS = [
    ("POST", "/key/generate", {"json": {}}),
    ("POST", "/key/update", {"json": {"key": "sk-whatever-123456"}}),
    ("POST", "/key/delete", {"json": {"keys": ["sk-whatever-123456"]}}),
    ("GET", "/key/list", {}),
    ("GET", "/spend/info", {}),
    ("GET", "/spend/logs", {}),
    ("POST", "/key/regenerate", {"json": {"key": "sk-whatever-123456"}}),
    ("POST", "/key/block", {"json": {"key": "sk-whatever-123456"}}),
    ("POST", "/key/unblock", {"json": {"key": "sk-whatever-123456"}}),
]


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    return await gateway_factory(keys_config(upstream_base, dead_base))


async def test_admin_endpoints_refuse_without_the_master_key(gw, caplog):
    caplog.set_level(logging.WARNING, logger="proxy.auth")
    virtual = await generate(gw)
    for method, path, kwargs in ENDPOINTS:
        for token in (None, virtual["key"], "sk-wrong"):
            status, body, _ = await admin(gw, method, path, token=token, **kwargs)
            assert status == 401, (path, token)
            assert body["error"]["type"] == "authentication_error" and path in body["error"]["message"]
    assert sum("auth failed" in r.getMessage() for r in caplog.records) == 3 * len(ENDPOINTS)
    status, body, _ = await admin(gw, "GET", "/key/list")
    assert status == 200 and body["keys"] == [hash_key(virtual["key"])]


async def test_generate_info_update_list_delete(gw):
    assert (await admin(gw, "POST", "/team/new", json={"team_id": "research"}))[0] == 200
    made = await generate(gw, key_alias="alice", user_id="alice@example.com", team_id="research",
                          models=[PRICED], max_budget=5, budget_duration="30d", duration="7d",
                          metadata={"purpose": "notebooks"}, rpm_limit=60, tpm_limit=10000,
                          max_parallel_requests=4)
    raw = made["key"]
    assert made["key_name"] == f"sk-…{raw[-4:]}" and made["token"] == made["token_id"] == hash_key(raw)
    assert made["expires"] and made["budget_reset_at"] and made["spend"] == 0
    info = await key_info(gw, raw)
    assert info == {k: v for k, v in made.items() if k not in ("key", "token_id")}
    assert await key_info(gw, hash_key(raw)) == info  # LiteLLM also accepts the hash

    status, body, _ = await admin(gw, "POST", "/key/update",
                                  json={"key": raw, "max_budget": 7.5, "models": [], "key_alias": "alice2",
                                        "aliases": {}, "tpm_limit": None})
    assert status == 200 and body["key"] == raw
    # null clears, as LiteLLM's update does: no tpm limit any more
    assert (body["max_budget"], body["models"], body["key_alias"], body["tpm_limit"]) == (7.5, [], "alice2", None)
    assert body["rpm_limit"] == 60  # fields not sent are unchanged
    assert (await key_info(gw, raw))["max_budget"] == 7.5

    others = [await generate(gw, key_alias=f"bot-{i}", user_id="bots") for i in range(3)]
    status, page, _ = await admin(gw, "GET", "/key/list", params={"page": "2", "size": "3"})
    assert status == 200 and page["total_count"] == 4 and page["total_pages"] == 2
    assert page["current_page"] == 2 and page["keys"] == [hash_key(others[2]["key"])]
    status, page, _ = await admin(gw, "GET", "/key/list",
                                  params={"user_id": "bots", "return_full_object": "true"})
    assert [k["key_alias"] for k in page["keys"]] == ["bot-0", "bot-1", "bot-2"]
    assert all("key" not in k for k in page["keys"])

    # All or nothing: one unknown key and nothing is deleted.
    status, body, _ = await admin(gw, "POST", "/key/delete", json={"keys": [others[0]["key"], "sk-never-issued-1"]})
    assert status == 404 and body["error"]["code"] == "404" and "nothing was deleted" in body["error"]["message"]
    assert (await chat(gw, others[0]["key"]))[0] == 200
    status, body, _ = await admin(gw, "POST", "/key/delete", json={"key_aliases": ["bot-0", "bot-1"]})
    assert status == 200 and body == {"deleted_keys": ["bot-0", "bot-1"]}
    status, body, _ = await admin(gw, "GET", "/key/info", params={"key": others[0]["key"]})
    assert status == 404
    assert (await admin(gw, "GET", "/key/list"))[1]["total_count"] == 2


@pytest.mark.parametrize(("body", "param"), [
    ({"max_budget": "lots"}, "max_budget"),
    ({"budget_duration": "3 weeks"}, "budget_duration"),
    ({"duration": "-1d"}, "duration"),
    ({"rpm_limit": 1.5}, "rpm_limit"),
    ({"models": "gpt-4"}, "models"),
    ({"max_budjet": 1}, "max_budjet"),  # not a LiteLLM field: a typo must not pass silently
    ({"aliases": {"fast": 3}}, "aliases"),
    ({"temp_budget_expiry": "soon"}, "temp_budget_expiry"),
    ({"key": "short"}, "key"),
])
async def test_bad_key_settings_are_refused_and_create_nothing(gw, body, param):
    status, reply, _ = await admin(gw, "POST", "/key/generate", json=body)
    assert status == 400 and reply["error"]["param"] == param
    assert (await admin(gw, "GET", "/key/list"))[1]["total_count"] == 0


async def test_duplicate_alias_is_refused(gw):
    await generate(gw, key_alias="ci")
    status, body, _ = await admin(gw, "POST", "/key/generate", json={"key_alias": "ci"})
    assert status == 400 and "already used" in body["error"]["message"]


async def test_updates_take_effect_on_the_next_request(gw):
    key = (await generate(gw, models=[PRICED]))["key"]
    assert (await chat(gw, key, "gpt-4o-mini"))[0] == 401
    await admin(gw, "POST", "/key/update", json={"key": key, "models": []})
    assert (await chat(gw, key, "gpt-4o-mini"))[0] == 200
    await admin(gw, "POST", "/key/update", json={"key": key, "max_budget": 0})
    status, body, _ = await chat(gw, key)
    assert status == 429 and body["error"]["type"] == "budget_exceeded"
    await admin(gw, "POST", "/key/update", json={"key": key, "max_budget": 1, "blocked": True})
    assert (await chat(gw, key))[0] == 401
    await admin(gw, "POST", "/key/update", json={"key": key, "blocked": False, "spend": 0})
    assert (await chat(gw, key))[0] == 200


async def test_spend_info_and_logs(gw):
    alice = await generate(gw, key_alias="alice", user_id="alice")
    bob = await generate(gw, key_alias="bob", user_id="bob")
    for key in (alice["key"], alice["key"], bob["key"], MASTER_KEY):
        assert (await chat(gw, key))[0] == 200
    _, _, headers = await chat(gw, bob["key"], "gpt-4o-mini")
    await settle(gw)
    rows = gw.rows()
    total = sum(r["cost"] for r in rows)

    status, info, _ = await admin(gw, "GET", "/spend/info")
    assert status == 200 and set(info) == {"total_spend", "daily_spend", "monthly_spend", "by_model", "by_team"}
    assert info["total_spend"] == pytest.approx(total) == pytest.approx(info["daily_spend"])
    assert info["monthly_spend"] == pytest.approx(total)
    assert info["by_model"] == pytest.approx({
        m: sum(r["cost"] for r in rows if r["model"] == m) for m in (PRICED, "gpt-4o-mini")})

    _, logs, _ = await admin(gw, "GET", "/spend/logs", params={"api_key": alice["key"]})
    assert len(logs) == 2 and {entry["api_key"] for entry in logs} == {hash_key(alice["key"])}
    assert logs[0]["user"] == "alice" and logs[0]["call_type"] == "acompletion" and logs[0]["spend"] > 0
    _, logs, _ = await admin(gw, "GET", "/spend/logs", params={"user_id": "bob"})
    assert len(logs) == 2
    _, logs, _ = await admin(gw, "GET", "/spend/logs", params={"request_id": headers["x-litellm-call-id"]})
    assert [entry["model"] for entry in logs] == ["gpt-4o-mini"]

    today = datetime.now(UTC).date()
    start = date.fromordinal(today.toordinal() - 2).isoformat()
    _, days, _ = await admin(gw, "GET", "/spend/logs", params={"start_date": start, "end_date": today.isoformat()})
    assert [d["startTime"] for d in days][-1] == today.isoformat() and len(days) == 3
    assert days[0]["spend"] == 0 and days[-1]["spend"] == pytest.approx(total)
    assert days[-1]["users"]["alice"] == pytest.approx(sum(r["cost"] for r in rows if r["user_id"] == "alice"))
    assert days[-1][hash_key(bob["key"])] == pytest.approx(sum(r["cost"] for r in rows if r["key_alias"] == "bob"))
    _, logs, _ = await admin(gw, "GET", "/spend/logs", params={
        "start_date": today.isoformat(), "end_date": today.isoformat(), "summarize": "false", "user_id": "alice"})
    assert len(logs) == 2
    status, body, _ = await admin(gw, "GET", "/spend/logs", params={"start_date": today.isoformat()})
    assert status == 400 and body["error"]["param"] == "start_date"


async def test_no_raw_key_or_master_key_in_any_file_the_gateway_writes(gw, tmp_path):
    # gateway.log as `serve` writes it: the gateway's loggers (not the test's own SDK client's).
    log_path = tmp_path / "gateway.log"
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    loggers = [logging.getLogger(name) for name in ("proxy", "aiohttp.server", "aiohttp.web")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        made = [await generate(gw, key_alias=f"k{i}", max_budget=0.00004, rpm_limit=4) for i in range(2)]
        secrets = [MASTER_KEY] + [m["key"] for m in made]
        for m in made:
            async with sdk(gw, m["key"]) as client:
                await client.embeddings.create(model="text-embedding-3-small", input="hello")
                stream = await client.chat.completions.create(model=PRICED, messages=PROMPT, stream=True)
                assert [chunk async for chunk in stream]
            for _ in range(3):  # over budget, then over rpm
                assert (await chat(gw, m["key"]))[0] in (200, 429)
            await key_info(gw, m["key"])
            await admin(gw, "GET", "/spend/logs", params={"api_key": m["key"]})
        assert (await chat(gw, MASTER_KEY[:-1] + "x"))[0] == 401
        await admin(gw, "POST", "/key/delete", json={"keys": [made[0]["key"]]})
        assert (await chat(gw, made[0]["key"]))[0] == 401
        await settle(gw)
        handler.flush()
        files = sorted(p for p in tmp_path.iterdir() if p.is_file())
        names = {p.name for p in files}
        assert {"litellm.db", "keys.db", "gateway.log"} <= names and "keys.db-wal" in names
        for path in files:
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"a raw key is in {path.name}"
        text = log_path.read_text()
        assert "auth failed" in text and "budget_exceeded" in text and "key=k1" in text
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
        handler.close()


async def test_keys_and_spend_survive_a_restart(gateway_factory, upstream_base, dead_base, tmp_path):
    raw_config = keys_config(upstream_base, dead_base, max_budget=100.0, budget_duration="30d")
    first = await gateway_factory(raw_config)
    key = (await generate(first, key_alias="persist", max_budget=0.00005, budget_duration="30d"))["key"]
    while (await chat(first, key))[0] == 200:
        pass
    before = await key_info(first, key)
    global_before = first.app[ADMIN].global_snapshot()
    await first.server.close()  # runs the cleanup contexts: spend is flushed

    second = await gateway_factory(raw_config)
    after = await key_info(second, key)
    assert after["spend"] == before["spend"] > 0
    assert after["budget_reset_at"] == before["budget_reset_at"]
    assert second.app[ADMIN].global_snapshot() == global_before
    status, body, _ = await chat(second, key)
    assert status == 429 and body["error"]["type"] == "budget_exceeded"
    label, prefix, spend, max_budget = second.app[ADMIN].budget_snapshot()[0]
    assert (label, prefix, spend, max_budget) == ("persist", hash_key(key)[:12], before["spend"], 0.00005)


def _keys_cli(keys_db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "keys", "--keys-db", str(keys_db), *args],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def test_keys_cli_works_on_the_running_gateways_keys_db(gw):
    keys_db = Path(gw.app[ADMIN].path)
    made = await asyncio.to_thread(_keys_cli, keys_db, "create", "--alias", "cli-bot", "--user-id", "ci",
                                   "--models", PRICED, "--max-budget", "2")
    assert made.returncode == 0, made.stderr
    raw = next(line.split()[1] for line in made.stdout.splitlines() if line.startswith("key: "))
    assert (await chat(gw, raw))[0] == 200  # usable at once: a cache miss reads keys.db
    assert (await key_info(gw, raw))["user_id"] == "ci"

    listed = await asyncio.to_thread(_keys_cli, keys_db, "list")
    assert listed.returncode == 0 and "cli-bot" in listed.stdout and f"sk-…{raw[-4:]}" in listed.stdout
    assert raw not in listed.stdout
    info = await asyncio.to_thread(_keys_cli, keys_db, "info", "cli-bot")
    assert info.returncode == 0 and hash_key(raw) in info.stdout

    revoked = await asyncio.to_thread(_keys_cli, keys_db, "revoke", "cli-bot")
    assert revoked.returncode == 0 and "revoked cli-bot" in revoked.stdout
    for _ in range(100):  # the gateway notices keys.db changed within its sync interval
        if (await chat(gw, raw))[0] == 401:
            break
        await asyncio.sleep(0.1)
    assert (await chat(gw, raw))[0] == 401

    missing = await asyncio.to_thread(_keys_cli, keys_db, "revoke", "no-such-alias")
    assert missing.returncode == 1 and "no key 'no-such-alias' found" in missing.stderr
    bad = await asyncio.to_thread(_keys_cli, keys_db, "create", "--budget-duration", "soon")
    assert bad.returncode == 1 and "budget_duration" in bad.stderr
    helped = await asyncio.to_thread(_keys_cli, keys_db, "--help")
    assert helped.returncode == 0 and "python -m proxy keys create" in helped.stdout


@pytest.mark.parametrize("command", ["keys", "users", "teams"])
def test_admin_commands_take_their_common_options_before_or_after_the_action(tmp_path, capsys, command):
    """`keys list --config c.yaml` as the examples show it, and `keys --config c.yaml list`;
    given both ways, the one after the action wins."""
    from proxy.cli import main

    config = tmp_path / "c.yaml"
    config.write_text(f"general_settings:\n  keys_database_path: {tmp_path / 'cfg-keys.db'}\n")
    assert main(["keys", "create", "--alias", "one", "--keys-db", str(tmp_path / "cfg-keys.db")]) == 0
    capsys.readouterr()
    after = main([command, "list", "--config", str(config)])
    out_after = capsys.readouterr().out
    before = main([command, "--config", str(config), "list"])
    out_before = capsys.readouterr().out
    assert after == before == 0 and out_after == out_before
    if command == "keys":
        assert "one" in out_after
    assert main([command, "--keys-db", str(tmp_path / "other.db"), "list", "--keys-db", str(tmp_path / "cfg-keys.db")]) == 0
    assert capsys.readouterr().out == out_after
