"""Two gateway processes on one keys.db share each key's spend (and the gateway budget): each
adds what it charged, and each adopts what the other added, within one sync interval."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from proxy.admin.routes import ADMIN

from .keys_helpers import admin, chat, generate, keys_config, settle


async def wait_for(predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_two_gateways_share_one_budget(gateway_factory, upstream_base, dead_base, tmp_path):
    raw = keys_config(upstream_base, dead_base)
    db = tmp_path / "litellm.db"
    a = await gateway_factory(raw, db_path=db)
    b = await gateway_factory(raw, db_path=db)
    probe = await generate(a, key_alias="probe")
    status, _, headers = await chat(a, probe["key"])
    assert status == 200
    cost = float(headers["x-litellm-response-cost"])
    shared = await generate(a, key_alias="shared", max_budget=cost * 2.5)
    key, key_hash = shared["key"], shared["token"]

    assert (await chat(a, key))[0] == 200
    assert (await chat(a, key))[0] == 200  # spend 2 × cost, all charged by A
    await settle(a)
    await wait_for(lambda: (rec := b.app[ADMIN].registry.keys.get(key_hash)) is not None and rec.spend >= cost * 1.99)

    assert (await chat(b, key))[0] == 200  # 2c < 2.5c: admitted; spend 3c, charged by B
    await settle(b)
    await wait_for(lambda: a.app[ADMIN].registry.keys.get(key_hash).spend >= cost * 2.99)
    status, body, _ = await chat(a, key)
    assert status == 429 and body["error"]["type"] == "budget_exceeded"

    await settle(a)
    await settle(b)
    with sqlite3.connect(db.with_name("keys.db")) as conn:
        stored = conn.execute("SELECT spend FROM keys WHERE key_hash = ?", (key_hash,)).fetchone()[0]
    with sqlite3.connect(db) as conn:
        logged = conn.execute("SELECT SUM(cost) FROM request_log WHERE key_hash = ?", (key_hash,)).fetchone()[0]
    assert stored == pytest.approx(logged) and stored == pytest.approx(3 * cost)


async def test_admin_spend_reset_is_not_undone_by_the_other_gateway(gateway_factory, upstream_base, dead_base, tmp_path):
    raw = keys_config(upstream_base, dead_base)
    db = tmp_path / "litellm.db"
    a = await gateway_factory(raw, db_path=db)
    b = await gateway_factory(raw, db_path=db)
    shared = await generate(a, key_alias="team", max_budget=1.0)
    key, key_hash = shared["key"], shared["token"]
    for gw in (a, b, b):
        assert (await chat(gw, key))[0] == 200
    await settle(a)
    await settle(b)
    status, body, _ = await admin(a, "POST", "/key/update", json={"key": key, "spend": 0})
    assert status == 200, body
    status, _, headers = await chat(b, key)  # B, not yet aware of the reset, charges one more
    assert status == 200
    await settle(b)
    with sqlite3.connect(db.with_name("keys.db")) as conn:
        stored = conn.execute("SELECT spend FROM keys WHERE key_hash = ?", (key_hash,)).fetchone()[0]
    # B added its one request to the reset spend; it did not write back its stale total.
    assert stored == pytest.approx(float(headers["x-litellm-response-cost"]))
    assert b.app[ADMIN].registry.keys.get(key_hash).spend == pytest.approx(stored)


async def test_two_gateways_share_a_team_budget_and_see_each_others_teams(gateway_factory, upstream_base, dead_base, tmp_path):
    raw = keys_config(upstream_base, dead_base)
    db = tmp_path / "litellm.db"
    a = await gateway_factory(raw, db_path=db)
    b = await gateway_factory(raw, db_path=db)
    probe = await generate(a, key_alias="probe")
    status, _, headers = await chat(a, probe["key"])
    cost = float(headers["x-litellm-response-cost"])
    status, _, _ = await admin(a, "POST", "/team/new", json={"team_id": "shared", "max_budget": cost * 1.5})
    assert status == 200
    await wait_for(lambda: b.app[ADMIN].registry.teams.get("shared") is not None)
    key_a = await generate(a, team_id="shared")
    status, body, _ = await admin(b, "POST", "/key/generate", json={"team_id": "shared"})  # B knows the team
    assert status == 200, body
    key_b = body["key"]
    assert (await chat(a, key_a["key"]))[0] == 200
    await settle(a)
    await wait_for(lambda: b.app[ADMIN].registry.teams["shared"].spend >= cost * 0.99)
    assert (await chat(b, key_b))[0] == 200  # 1 cost < 1.5: admitted; 2 cost now
    await settle(b)
    await wait_for(lambda: a.app[ADMIN].registry.teams["shared"].spend >= cost * 1.99)
    status, body, _ = await chat(a, key_a["key"])
    assert status == 429 and "Team=shared" in body["error"]["message"]
    with sqlite3.connect(db.with_name("keys.db")) as conn:
        stored = conn.execute("SELECT spend FROM teams WHERE team_id = 'shared'").fetchone()[0]
    assert stored == pytest.approx(2 * cost)
