"""Request-log rows at chosen ages, written through the gateway's own LogWriter."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

from proxy.logdb.record import RequestRecord, utc_timestamp
from proxy.logdb.writer import LogWriter

DAY = 86400.0


def record_at(epoch: float, i: int = 0) -> RequestRecord:
    prompt, completion = 10 + i % 50, 5 + i % 20
    return RequestRecord(
        timestamp=utc_timestamp(epoch),
        request_id=uuid.uuid4().hex,
        endpoint="/v1/chat/completions",
        model=("gpt-4o-mini", "gpt-4o", "local-llama")[i % 3],
        user_id=("alice", "bob", None)[i % 3],
        messages=f'[{{"role": "user", "content": "question {i} ünïcode <b>"}}]',
        response=f"answer {i}",
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cost=round((prompt + completion) * 1e-6, 10),
        latency=0.1 + (i % 7) / 10,
        status_code=200 if i % 9 else 500,
        key_alias="team-web",
        cost_status="priced",
        metadata='{"tag": "ops"}' if i % 4 == 0 else None,
    )


def write_rows(path: Path, ages_in_days: list[float], now: float | None = None) -> None:
    now = time.time() if now is None else now
    writer = LogWriter(path)
    writer.start()
    try:
        writer.submit_many(record_at(now - age * DAY, i) for i, age in enumerate(ages_in_days))
        assert writer.wait_idle(30)
    finally:
        writer.stop()


def all_rows(path: Path, sql: str = "SELECT * FROM request_log ORDER BY id") -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql)]
    finally:
        conn.close()
