"""`shin-proxy backup`: consistent copies while the gateway's writer keeps committing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from proxy.errors import OperationError
from proxy.logdb.writer import LogWriter
from proxy.ops.backup import backup_databases, backups_of, stamp

from .ops_helpers import all_rows, record_at, write_rows

ROOT = Path(__file__).resolve().parent.parent


def _keys_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE budgets (key_hash TEXT PRIMARY KEY, spend REAL NOT NULL)")
        conn.executemany("INSERT INTO budgets VALUES (?, ?)", [(f"{i:064x}", i * 0.5) for i in range(50)])
    conn.close()


def test_backup_while_writing_is_consistent_and_complete(tmp_path: Path) -> None:
    db, keys, dest = tmp_path / "litellm.db", tmp_path / "keys.db", tmp_path / "backups"
    _keys_db(keys)
    writer = LogWriter(db, batch_size=50, max_latency=0.001)
    writer.start()
    done = threading.Event()

    def produce() -> None:
        i = 0
        while not done.is_set():
            writer.submit(record_at(time.time(), i))
            i += 1
            if i % 50 == 0:
                time.sleep(0.001)  # let the writer commit many small transactions

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        while writer.rows_written < 500:
            time.sleep(0.01)
        for n in range(3):
            with sqlite3.connect(db) as probe:  # everything committed before the backup starts
                committed = probe.execute("SELECT MAX(id) FROM request_log").fetchone()[0]
            probe.close()
            result = backup_databases(db, keys, dest, keep=5, now=1_700_000_000 + n)
            copy, keys_copy = result.written
            with sqlite3.connect(copy) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
                count, low, high = conn.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM request_log").fetchone()
            conn.close()
            # One snapshot: every committed row, no gaps, nothing torn.
            assert low == 1 and high >= committed and count == high
            with sqlite3.connect(keys_copy) as conn:
                assert conn.execute("SELECT COUNT(*), SUM(spend) FROM budgets").fetchone() == (50, sum(i * 0.5 for i in range(50)))
            conn.close()
    finally:
        done.set()
        producer.join()
        assert writer.wait_idle(30)
        writer.stop()
    # The copy's rows are the live rows, column for column.
    live = {row["id"]: row for row in all_rows(db)}
    for row in all_rows(result.written[0]):
        assert live[row["id"]] == row
    assert writer.rows_written > high  # the writer really was writing during the backups


def test_keep_last_n_only_touches_backup_names(tmp_path: Path) -> None:
    db = tmp_path / "litellm.db"
    write_rows(db, [1, 2, 3])
    dest = tmp_path / "backups"
    dest.mkdir()
    (dest / "notes.txt").write_text("not a backup")
    (dest / "litellm-final.db").write_bytes(b"mine")
    base = 1_700_000_000
    for n in range(6):
        result = backup_databases(db, tmp_path / "keys.db", dest, keep=3, now=base + n * 86400)
        assert result.skipped and "keys.db" in result.skipped[0]
    kept = [p.name for p in backups_of(dest, "litellm")]
    assert kept == [f"litellm-{stamp(base + n * 86400)}.db" for n in (3, 4, 5)]
    assert (dest / "notes.txt").exists() and (dest / "litellm-final.db").exists()
    assert not list(dest.glob("*.partial"))
    with pytest.raises(OperationError):
        backup_databases(db, None, dest, keep=0)


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OperationError, match="no such database"):
        backup_databases(tmp_path / "nope.db", None, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_backup_command_line(tmp_path: Path) -> None:
    db = tmp_path / "data" / "litellm.db"
    db.parent.mkdir()
    write_rows(db, [0.5, 1.5])
    _keys_db(db.with_name("keys.db"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "proxy", "backup", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)

    # As `make backup` calls it: --config config.yaml, which this folder does not have.
    ok = cli("--config", "config.yaml", "--db", str(db), "--keep", "2")
    assert ok.returncode == 0, ok.stderr
    written = sorted((tmp_path / "backups").iterdir())
    assert [p.name.split("-")[0] for p in written] == ["keys", "litellm"]
    assert len(all_rows(written[1])) == 2
    missing = cli("--config", "other.yaml", "--db", str(db))
    assert missing.returncode == 2 and "other.yaml: file not found" in missing.stderr
    bad = cli("--db", str(tmp_path / "absent.db"))
    assert bad.returncode == 1 and "absent.db: no such database" in bad.stderr
    assert "Traceback" not in bad.stderr
