"""The writer's multi-row INSERTs (proxy/logdb/store.py) write every row of any batch once,
count them without the rollup trigger's writes, and still set a refused row aside alone."""

from __future__ import annotations

import sqlite3
import time

from proxy.logdb.record import RequestRecord, utc_timestamp
from proxy.logdb.store import LogStore


def _record(i: int, model: str = "m") -> RequestRecord:
    return RequestRecord(timestamp=utc_timestamp(time.time()), request_id=f"{i:032x}",
                         endpoint="/v1/chat/completions", model=model, cost=0.5, latency=0.25,
                         status_code=200, upstream_latency=0.125)


def test_batches_of_every_size_write_each_row_once(tmp_path):
    store = LogStore(tmp_path / "log.db")
    store.open()
    written = 0
    for size in (1, 2, 63, 64, 65, 127, 128, 200, 500):
        rows = [_record(written + i).as_values() for i in range(size)]
        inserted, refused = store.insert(rows)
        assert (inserted, refused) == (size, [])
        written += size
    store.close()
    conn = sqlite3.connect(tmp_path / "log.db")
    ids = [r[0] for r in conn.execute("SELECT request_id FROM request_log ORDER BY id")]
    assert ids == [f"{i:032x}" for i in range(written)]
    assert conn.execute("SELECT SUM(requests) FROM rollup_hourly").fetchone()[0] == written


def test_a_row_sqlite_refuses_is_set_aside_and_the_rest_of_its_batch_written(tmp_path):
    store = LogStore(tmp_path / "log.db")
    store.open()
    store._connection().execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON request_log WHEN NEW.model = 'bad' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    rows = [_record(i, model="bad" if i == 70 else "m").as_values() for i in range(100)]
    inserted, refused = store.insert(rows)
    assert inserted == 99 and [r[2] for r, _ in refused] == ["bad"]  # LOG_COLUMNS: timestamp, user_id, model
    store.close()
