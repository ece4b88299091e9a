"""`shin-proxy prune`: exactly the window is kept, archives round-trip, the gateway keeps serving."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxy.errors import OperationError
from proxy.logdb.record import utc_timestamp
from proxy.ops.prune import prune_request_log, read_archive
from proxy.state import KEYS_DB_PATH

from .ops_helpers import DAY, all_rows, write_rows

# Clear of the 30-day edge so the expected set is exact whatever the clock does meanwhile.
AGES = [0.01, 0.5, 3, 7.5, 13, 29.5, 30.5, 31, 44, 59, 61, 75, 89.9, 120]


def _expected_kept(rows: list[dict], days: float, now: float) -> list[int]:
    cutoff = utc_timestamp(now - days * DAY)
    return [r["id"] for r in rows if r["timestamp"] >= cutoff]


def test_prune_keeps_exactly_the_window(tmp_path: Path) -> None:
    db = tmp_path / "litellm.db"
    now = time.time()
    write_rows(db, AGES * 20, now=now)
    before = all_rows(db)
    result = prune_request_log(db, 30, batch_size=7, now=now)
    after = all_rows(db)
    kept = _expected_kept(before, 30, now)
    assert [r["id"] for r in after] == kept
    assert len(kept) == 20 * sum(a < 30 for a in AGES)
    assert result.deleted == len(before) - len(kept)
    assert result.archived == {} and result.vacuumed is None
    # Idempotent: nothing more to delete.
    assert prune_request_log(db, 30, now=now).deleted == 0


@pytest.mark.parametrize("archive_format", ["jsonl", "sqlite"])
def test_archive_round_trips_every_column(tmp_path: Path, archive_format: str) -> None:
    db = tmp_path / "litellm.db"
    now = 1_717_243_200.0  # 2024-06-01 12:00 UTC: old rows span April and May
    write_rows(db, [1, 2, 20, 30.6, 31, 35, 40, 50, 60] * 5, now=now)
    before = {r["id"]: r for r in all_rows(db)}
    archive = tmp_path / "archive"
    result = prune_request_log(db, 30, archive_dir=archive, archive_format=archive_format,
                               batch_size=6, now=now)
    suffix = ".jsonl.gz" if archive_format == "jsonl" else ".db"
    assert sorted(Path(p).name for p in result.archived) == [
        f"request_log-2024-04{suffix}", f"request_log-2024-05{suffix}"]
    archived = []
    for path, count in result.archived.items():
        rows = read_archive(path)
        assert len(rows) == count
        assert {row["timestamp"][:7] for row in rows} == {Path(path).name[12:19]}  # one month each
        archived.extend(rows)
    remaining = {r["id"] for r in all_rows(db)}
    gone = sorted(set(before) - remaining)
    assert sorted(r["id"] for r in archived) == gone and len(gone) == result.deleted == 30
    for row in archived:
        assert row == before[row["id"]]  # every column, types included
    # A second prune with the same archive appends nothing and deletes nothing.
    again = prune_request_log(db, 30, archive_dir=archive, archive_format=archive_format, now=now)
    assert again.deleted == 0 and again.archived == {}


def test_vacuum_shrinks_the_file_and_keys_db_is_untouched(tmp_path: Path) -> None:
    db, keys = tmp_path / "litellm.db", tmp_path / "keys.db"
    with sqlite3.connect(keys) as conn:
        conn.execute("CREATE TABLE budgets (key_hash TEXT PRIMARY KEY, spend REAL)")
        conn.execute("INSERT INTO budgets VALUES ('abc', 12.5)")
    conn.close()
    keys_digest = hashlib.sha256(keys.read_bytes()).hexdigest()
    write_rows(db, [40.0] * 3000 + [1.0] * 10)
    result = prune_request_log(db, 30, vacuum=True)
    assert result.deleted == 3000 and result.vacuumed == "full"
    assert result.size_after < result.size_before / 4
    assert len(all_rows(db)) == 10
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert hashlib.sha256(keys.read_bytes()).hexdigest() == keys_digest


def test_incremental_vacuum_when_the_database_allows_it(tmp_path: Path) -> None:
    db = tmp_path / "litellm.db"
    write_rows(db, [40.0] * 2000 + [1.0] * 5)
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")  # changing auto_vacuum on an existing file needs one VACUUM
    conn.close()
    result = prune_request_log(db, 30)
    assert result.vacuumed == "incremental" and result.size_after < result.size_before / 4
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    conn.close()


def test_bad_input_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "litellm.db"
    write_rows(db, [40.0, 1.0])
    with pytest.raises(OperationError, match="at least 1"):
        prune_request_log(db, 0)
    with pytest.raises(OperationError, match="no such database"):
        prune_request_log(tmp_path / "missing.db", 30)
    keys = tmp_path / "keys.db"
    sqlite3.connect(keys).execute("CREATE TABLE budgets (x)").connection.close()
    with pytest.raises(OperationError, match="no request_log table"):
        prune_request_log(keys, 30)
    with pytest.raises(OperationError, match="archive format"):
        prune_request_log(db, 30, archive_dir=tmp_path / "a", archive_format="csv")
    assert len(all_rows(db)) == 2


def test_prune_command_line(tmp_path: Path) -> None:
    db = tmp_path / "litellm.db"
    write_rows(db, [1, 2, 100, 200])

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "proxy", "prune", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)

    dry = cli("--db", str(db), "--days", "90", "--dry-run")
    assert dry.returncode == 0 and "2 rows older than 90 days" in dry.stdout
    assert len(all_rows(db)) == 4
    assert cli("--db", str(db)).returncode == 2  # no --days and no retention_days
    assert cli("--db", str(db), "--days", "0").returncode == 2  # argparse refuses
    # A cron job has no provider keys in its environment: only the paths are read.
    (tmp_path / "ops.yaml").write_text(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n"
        "      api_key: os.environ/SHIN_OPS_TEST_UNSET\n"
        f"general_settings:\n  master_key: os.environ/SHIN_OPS_TEST_UNSET\n  database_path: {db}\n"
        "  retention_days: 90\n")
    run = cli("--config", "ops.yaml", "--archive", "arch")
    assert run.returncode == 0, run.stderr
    assert "deleted 2 rows older than 90 days" in run.stdout
    assert len(all_rows(db)) == 2 and len(list((tmp_path / "arch").iterdir())) >= 1


async def test_gateway_keeps_serving_while_prune_runs(gateway_factory, tmp_path: Path) -> None:
    db = tmp_path / "litellm.db"
    write_rows(db, [45.0] * 6000 + [2.0] * 30)
    gateway = await gateway_factory(db_path=db)
    task = asyncio.create_task(asyncio.to_thread(prune_request_log, db, 30, batch_size=100))
    served: list[str] = []
    while not task.done() or len(served) < 10:
        reply = await gateway.client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"during prune {len(served)}"}],
            user="ops-test")
        served.append(reply.id)
    result = await task
    assert result.deleted == 6000
    rows = gateway.rows("SELECT user_id, status_code, timestamp FROM request_log")
    live = [r for r in rows if r["user_id"] == "ops-test"]
    assert len(live) == len(served) and {r["status_code"] for r in live} == {200}
    assert len(rows) == 30 + len(served)  # the 30 recent history rows, and every live one


async def test_budget_state_survives_pruning_every_row(gateway_factory, upstream_base, dead_base) -> None:
    from .keys_helpers import PRICED, chat, generate, key_info, keys_config, settle

    gateway = await gateway_factory(keys_config(upstream_base, dead_base))
    raw = (await generate(gateway, key_alias="pruned", max_budget=1.0, budget_duration="30d"))["key"]
    for _ in range(4):
        assert (await chat(gateway, raw, PRICED))[0] == 200
    await settle(gateway)
    spent = (await key_info(gateway, raw))["spend"]
    assert spent > 0
    # Ten days from now with a one-day window: every row of the log goes.
    result = await asyncio.to_thread(prune_request_log, gateway.db_path, 1, now=time.time() + 10 * DAY)
    assert result.deleted == 4 and gateway.rows() == []
    assert (await key_info(gateway, raw))["spend"] == spent
    keys = sqlite3.connect(gateway.app[KEYS_DB_PATH])
    try:
        stored = keys.execute("SELECT spend FROM keys WHERE key_alias = 'pruned'").fetchone()[0]
    finally:
        keys.close()
    assert stored == pytest.approx(spent)
    assert (await chat(gateway, raw, PRICED))[0] == 200  # the key keeps working and counting
    await settle(gateway)
    assert (await key_info(gateway, raw))["spend"] > spent
