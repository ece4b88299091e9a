"""The gateway's own maintenance (retention prunes, WAL checkpoints) and gateway.log rotation."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.logdb.writer import LogWriter
from proxy.logsetup import configure_logging
from proxy.ops.checkpoint import Checkpointer

from .conftest import default_raw_config
from .ops_helpers import all_rows, record_at, write_rows


async def test_retention_task_prunes_on_its_own(gateway_factory, upstream_base, dead_base, tmp_path: Path) -> None:
    db = tmp_path / "litellm.db"
    archive = tmp_path / "archive"
    write_rows(db, [10.0] * 500 + [3.0] * 40 + [0.5] * 20)
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"].update(retention_days=7, retention_interval=0.2,
                                   retention_archive_dir=str(archive), wal_checkpoint_interval=0.1)
    gateway = await gateway_factory(raw, db_path=db)
    deadline = time.monotonic() + 20
    while len(all_rows(db)) > 60 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    reply = await gateway.client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "after retention"}])
    assert reply.choices[0].message.content
    rows = gateway.rows("SELECT timestamp FROM request_log")
    assert len(rows) == 61  # 60 rows inside 7 days + the new request
    archived = list(archive.iterdir())
    assert archived and all(p.name.endswith(".jsonl.gz") for p in archived)


@pytest.mark.parametrize("key,value", [("retention_days", 0), ("retention_interval", 0),
                                       ("wal_checkpoint_interval", -1)])
async def test_bad_retention_settings_stop_start_up(upstream_base, dead_base, tmp_path, key, value) -> None:
    from proxy.server.app import create_app

    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"][key] = value
    with pytest.raises(ConfigError, match=f"general_settings.{key}"):
        create_app(parse_config(raw, env={}), db_path=tmp_path / "x.db")


def test_checkpoint_bounds_the_wal_after_a_long_reader(tmp_path: Path) -> None:
    db = tmp_path / "litellm.db"
    write_rows(db, [1.0])
    reader = sqlite3.connect(db, isolation_level=None)  # like a long Datasette query
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM request_log").fetchone()
    writer = LogWriter(db, batch_size=100)
    writer.start()
    writer.submit_many(record_at(time.time(), i) for i in range(6000))
    assert writer.wait_idle(30)
    checkpointer = Checkpointer(db)
    try:
        pinned = checkpointer.run_once()
        assert pinned.wal_frames > 1000 and not pinned.truncated
        assert pinned.checkpointed < pinned.wal_frames  # the reader's snapshot holds the rest
        grown = checkpointer.wal_bytes()
        assert grown > 4 * 1024 * 1024
        reader.execute("COMMIT")
        freed = checkpointer.run_once()
        assert freed.truncated and freed.wal_bytes == 0 < grown
        writer.submit_many(record_at(time.time(), i) for i in range(10))
        assert writer.wait_idle(10)
    finally:
        writer.stop()
        checkpointer.close()
        reader.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0] == 6011
    conn.close()


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _general(**values):
    config = parse_config({"general_settings": values}, env={})
    return config.general, config.litellm


def test_log_survives_logrotate_rename(tmp_path: Path, restore_logging) -> None:
    log_file = tmp_path / "gateway.log"
    # Unbuffered, so each line is on disk the moment it is logged (the buffered default is
    # tested in test_logging.py).
    configure_logging(*_general(log_file=str(log_file), log_flush_seconds=0))
    log = logging.getLogger("proxy.access")
    log.info("/v1/chat/completions model=gpt-4 status=200 before rotation")
    # logrotate's default (no copytruncate): rename, then the program must reopen by name.
    log_file.rename(tmp_path / "gateway.log.1")
    log.info("/v1/chat/completions model=gpt-4 status=200 after rotation")
    assert "before rotation" in (tmp_path / "gateway.log.1").read_text()
    assert "after rotation" not in (tmp_path / "gateway.log.1").read_text()
    assert "after rotation" in log_file.read_text()
    # Rotation that deletes the old file (rotate 0) also gets a fresh file.
    (tmp_path / "gateway.log.1").unlink()
    log_file.unlink()
    log.warning("auth failed: after delete")
    assert "auth failed: after delete" in log_file.read_text()


def test_size_based_rotation_from_config(tmp_path: Path, restore_logging) -> None:
    log_file = tmp_path / "gateway.log"
    configure_logging(*_general(log_file=str(log_file), log_max_bytes=2000, log_backup_count=3,
                                log_flush_seconds=0))
    log = logging.getLogger("proxy.access")
    for i in range(200):
        log.info("/v1/chat/completions model=gpt-4o status=200 line %04d", i)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["gateway.log", "gateway.log.1", "gateway.log.2", "gateway.log.3"]
    assert all((tmp_path / name).stat().st_size <= 2000 for name in files)
    assert "line 0199" in log_file.read_text()
    assert "line 0000" not in "".join((tmp_path / n).read_text() for n in files)  # oldest dropped
