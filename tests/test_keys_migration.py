"""keys.db written by the gateway before users and teams (schema version 1) upgrades in place:
its keys, spend and gateway budget carry over, and its user_ids and team_ids become users and
teams."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proxy.admin.routes import ADMIN
from proxy.admin.store.sqlite import KeysDB
from proxy.migrations import load

from .keys_helpers import PRICED, admin, chat, key_info, keys_config, ok

FIXTURE = Path(__file__).parent / "fixtures" / "keys_db_v1.sql"
V1_KEY = "sk-v1-fixture-key-0001"  # alias old-team, team research, spend 0.25
CI_BOT_HASH = "458f12804a958037069c8457922dcf6e97daf7eefb38edbd4b04edd0a5d4cc2a"


def v1_keys_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(FIXTURE.read_text())
        conn.execute("PRAGMA user_version=1")
    finally:
        conn.close()
    return path


async def test_a_version_1_keys_db_upgrades_in_place(gateway_factory, upstream_base, dead_base, tmp_path):
    keys_db = v1_keys_db(tmp_path / "keys.db")
    raw = keys_config(upstream_base, dead_base, max_budget=100.0, budget_duration="30d")
    gw = await gateway_factory(raw, keys_db_path=keys_db)
    latest = max(number for number, _name, _sql in load("proxy.admin"))
    with sqlite3.connect(keys_db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == latest
    assert gw.app[ADMIN].global_snapshot() == (1.5, 100.0)  # the gateway budget's period carries on

    info = await key_info(gw, V1_KEY)
    assert (info["key_alias"], info["team_id"], info["spend"], info["aliases"]) == ("old-team", "research", 0.25, {})
    assert (await chat(gw, V1_KEY))[0] == 200
    ci_bot = await key_info(gw, CI_BOT_HASH)
    assert (ci_bot["models"], ci_bot["max_budget"], ci_bot["budget_reset_at"]) == ([PRICED], 5.0, "2099-01-28T09:20:00.000Z")
    assert ci_bot["metadata"] == {"purpose": "nightly"}

    users = await ok(gw, "GET", "/user/list")
    assert sorted(u["user_id"] for u in users["users"]) == ["alice@example.com", "ci"]
    team = await ok(gw, "GET", "/team/info", params={"team_id": "research"})
    assert sorted(k["key_alias"] for k in team["keys"]) == ["ci-bot", "old-team"]
    # The new fields work on old keys.
    await ok(gw, "POST", "/key/update", json={"key": V1_KEY, "aliases": {"fast": PRICED}})
    assert (await chat(gw, V1_KEY, "fast"))[0] == 200
    status, _, _ = await admin(gw, "POST", "/team/update", json={"team_id": "research", "models": ["gpt-4o-mini"]})
    assert status == 200 and (await chat(gw, V1_KEY))[0] == 401  # now bound by its team


def test_upgrading_twice_changes_nothing_and_old_readers_still_read(tmp_path):
    keys_db = v1_keys_db(tmp_path / "keys.db")
    KeysDB(keys_db).close()
    with sqlite3.connect(keys_db) as conn:
        first = list(conn.iterdump())
    KeysDB(keys_db).close()
    with sqlite3.connect(keys_db) as conn:
        assert list(conn.iterdump()) == first
        # What the report reads stays where it was: keys' columns and the 'global' budget row.
        row = conn.execute("SELECT key_alias, spend, max_budget, budget_duration FROM keys WHERE key_alias = 'ci-bot'").fetchone()
        assert row == ("ci-bot", 0.0, 5.0, "30d")
        assert conn.execute("SELECT spend FROM budgets WHERE name = 'global'").fetchone() == (1.5,)


def test_a_failed_upgrade_leaves_version_1(tmp_path):
    keys_db = v1_keys_db(tmp_path / "keys.db")
    with sqlite3.connect(keys_db) as conn:  # a column in the way of the migration's ALTER TABLE
        conn.execute("ALTER TABLE keys ADD COLUMN extras TEXT")
    with pytest.raises(sqlite3.Error):
        KeysDB(keys_db)
    with sqlite3.connect(keys_db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(keys)")]
        assert "aliases" not in columns and conn.execute("SELECT COUNT(*) FROM keys").fetchone()[0] == 3
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'users'").fetchone() is None
