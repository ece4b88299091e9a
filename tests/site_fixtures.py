"""Request-log databases for the site tests, written through the real LogWriter.

`history_db(path)` holds a fixed 35-day history (proxy.history) plus a few hostile rows whose
model, user, key, prompt and error text try to break out of HTML and <script> elements, and a
keys.db beside it (the gateway's KeyStore) with budgets on the history's keys.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from proxy.admin.records import EndUserRecord, KeyRecord, MemberRecord, TeamRecord, UserRecord
from proxy.admin.records.entities import BudgetTier
from proxy.admin.records.key import display_name
from proxy.admin.store.sqlite import KeysDB
from proxy.history import generate_history
from proxy.logdb.record import RequestRecord, utc_timestamp
from proxy.logdb.writer import LogWriter
from proxy.server.auth import hash_key
from sitegen.build import BuildOptions, BuildResult, build_site
from sitegen.data import Clock
from sitegen.progress import Progress
from sitegen.sources import Sources

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


#: The metadata keys the fixture site breaks down by (a scalar key and a list key).
BREAKDOWNS = ("project", "tags")
#: The gateway budget of the fixture site (litellm_settings.max_budget).
GATEWAY_BUDGET = 500.0


def history_db(path: Path) -> Path:
    records = list(generate_history(days=35, rows=3000, seed=11, now=NOW - 600))
    write_records(path, records + hostile_records())
    history_keys_db(path.with_name("keys.db"))
    return path


def keys_db(path: Path, keys: list[dict], global_spend: float | None = None,
            global_reset: float | None = None, others: list[object] = ()) -> Path:
    """keys.db written by the gateway's own KeysDB: each dict holds KeyRecord fields, with
    `raw` the raw key (only its hash and display form are stored); `others` are users, teams,
    members, tiers and end users as records."""
    store = KeysDB(path)
    try:
        for fields in keys:
            fields = dict(fields)
            raw = fields.pop("raw")
            store.insert(KeyRecord(key_hash=hash_key(raw), key_name=display_name(raw),
                                   created_at=NOW - 86400, updated_at=NOW - 86400, **fields))
        for record in others:
            store.insert(record)
        if global_spend is not None:
            store.save_global(global_spend, "30d", global_reset, NOW)
    finally:
        store.close()
    return path


def history_keys_db(path: Path) -> Path:
    """Budgets for the history's keys (their hashes are proxy.history's) and a hostile alias."""
    reset = NOW + 10 * 86400
    return keys_db(path, [
        {"raw": "sk-demo-team-web", "key_alias": "team-web", "max_budget": 50.0,
         "budget_duration": "30d", "budget_reset_at": reset, "spend": 45.0},
        {"raw": "sk-demo-team-data", "key_alias": "team-data", "max_budget": 40.0,
         "budget_duration": "30d", "budget_reset_at": reset, "spend": 41.0},
        {"raw": "sk-demo-ci", "key_alias": "ci", "max_budget": 15.0, "spend": 2.0},
        {"raw": "sk-hostile-key-0000", "key_alias": HOSTILE_ATTR + HOSTILE, "max_budget": 1.0},
        {"raw": "sk-unbudgeted-key-1234", "key_alias": "free"},
    ], global_spend=120.0, global_reset=reset, others=[
        UserRecord(user_id="carol", max_budget=30.0, spend=12.0, budget_duration="30d",
                   budget_reset_at=reset, created_at=NOW, updated_at=NOW),
        UserRecord(user_id="bob", created_at=NOW, updated_at=NOW),  # no budget: not listed
        TeamRecord(team_id="platform", team_alias="Platform", max_budget=200.0, spend=20.0,
                   created_at=NOW, updated_at=NOW),
        MemberRecord(team_id="platform", user_id="alice", max_budget_in_team=5.0, spend=1.0,
                     created_at=NOW),
        BudgetTier(budget_id="tier-small", max_budget=2.0, budget_duration="1d",
                   created_at=NOW, updated_at=NOW),
        EndUserRecord(user_id="dave", budget_id="tier-small", spend=0.5, created_at=NOW,
                      updated_at=NOW),
    ])


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


def build(db: Path, out: Path, *, now: int = NOW, datasette_url: str | None = None,
          breakdowns: tuple[str, ...] = BREAKDOWNS, gateway_budget: float | None = GATEWAY_BUDGET,
          keys: Path | None = None, logs_rows: int = 40) -> BuildResult:
    """Build as `sitegen build` does, with keys.db beside the log unless `keys` says otherwise
    (the Logs page with its newest 40 requests and errors, so golden files stay small)."""
    clock = Clock(datetime.fromtimestamp(now, UTC))
    sources = Sources(keys_db=keys or db.with_name("keys.db"), gateway_max_budget=gateway_budget,
                      gateway_budget_duration="30d", breakdowns=breakdowns, logs_rows=logs_rows)
    options = BuildOptions(db=db, out=out, datasette_url=datasette_url, sources=sources)
    return build_site(options, clock, Progress(quiet=True))


def record(epoch: float, model: str, cost: float, *, status: int = 200, latency: float = 1.0,
           upstream: float | None = None, key_raw: str | None = None, **fields) -> RequestRecord:
    """One plain successful (or failed) request at `epoch`, for the hand-computed fixtures."""
    values = dict(
        timestamp=utc_timestamp(epoch), request_id=f"r-{model}-{epoch:.3f}-{cost}",
        endpoint="/v1/chat/completions", model=model, prompt_tokens=100, completion_tokens=10,
        total_tokens=110, cost=cost, latency=latency, status_code=status,
        upstream_latency=(latency - 0.002 if upstream is None else upstream) if status < 400 else None,
        key_hash=hash_key(key_raw) if key_raw else None, cost_status="priced" if cost else "none",
    )
    return RequestRecord(**{**values, **fields})
