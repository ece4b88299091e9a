"""Request-log databases for the site tests, written through the real LogWriter.

`history_db(path)` holds a fixed 35-day history (proxy.history) plus a few hostile rows whose
model, user, key, prompt and error text try to break out of HTML and <script> elements.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from proxy.history import generate_history
from proxy.logdb.record import RequestRecord, utc_timestamp
from proxy.logdb.writer import LogWriter
from sitegen.build import BuildOptions, BuildResult, build_site
from sitegen.data import Clock
from sitegen.progress import Progress

#: 2025-12-31 14:30:00 UTC: mid-afternoon, so "today" has traffic.
NOW = 1767191400
HOSTILE = "</script><script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(2)>'


def write_records(path: Path, records) -> None:
    writer = LogWriter(path)
    writer.start()
    try:
        writer.submit_many(records)
        assert writer.wait_idle(60), "fixture rows were not written"
    finally:
        writer.stop()


def hostile_records() -> list[RequestRecord]:
    common = dict(endpoint="/v1/chat/completions", key_alias=HOSTILE_ATTR, stream=1)
    return [
        RequestRecord(
            timestamp=utc_timestamp(NOW - 3600 - i * 60), request_id=f"hostile-{i}",
            model=HOSTILE, user_id=HOSTILE_ATTR + HOSTILE,
            messages=f'[{{"role": "user", "content": "{HOSTILE}"}}]',
            response="ok", prompt_tokens=90_000, completion_tokens=10, total_tokens=90_010,
            cost=9.5 + i, latency=1.5, upstream_latency=1.4, time_to_first_token=0.4, status_code=200,
            cost_status="unpriced" if i == 2 else "priced", **common,
        )
        for i in range(3)
    ] + [
        RequestRecord(
            timestamp=utc_timestamp(NOW - 1800), request_id="hostile-err", model=HOSTILE,
            user_id=HOSTILE, response=HOSTILE + " =cmd|' /C calc'!A0", status_code=500,
            error_type=HOSTILE, latency=0.2, cost_status="none", **common,
        )
    ]


def history_db(path: Path) -> Path:
    records = list(generate_history(days=35, rows=3000, seed=11, now=NOW - 600))
    write_records(path, records + hostile_records())
    return path


def empty_db(path: Path) -> Path:
    write_records(path, [])
    return path


def guide_only_db(path: Path) -> Path:
    """A database as an older gateway wrote it: the guide's table and nothing else."""
    conn = sqlite3.connect(path)
    conn.execute(
        """CREATE TABLE request_log (id INTEGER PRIMARY KEY, timestamp DATETIME, user_id TEXT,
        model TEXT, messages TEXT, response TEXT, prompt_tokens INTEGER,
        completion_tokens INTEGER, total_tokens INTEGER, cost REAL, latency REAL,
        status_code INTEGER)"""
    )
    rows = [
        (r.timestamp, r.user_id, r.model, r.messages, r.response, r.prompt_tokens,
         r.completion_tokens, r.total_tokens, r.cost, r.latency, r.status_code)
        for r in generate_history(days=10, rows=400, seed=3, now=NOW - 600)
    ]
    conn.executemany("INSERT INTO request_log (timestamp, user_id, model, messages, response, "
                     "prompt_tokens, completion_tokens, total_tokens, cost, latency, status_code)"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    return path


def build(db: Path, out: Path, *, now: int = NOW, datasette_url: str | None = None) -> BuildResult:
    clock = Clock(datetime.fromtimestamp(now, UTC))
    options = BuildOptions(db=db, out=out, datasette_url=datasette_url)
    return build_site(options, clock, Progress(quiet=True))
