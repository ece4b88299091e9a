"""One latency-percentile definition: the requests that reached an upstream provider
(`upstream_latency IS NOT NULL`), shared by the report, Datasette's canned query and the p95
alert; every request on a log without that column. The gateway sets upstream_latency exactly
for the requests it sent upstream."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import aiohttp
import openai
import pytest
import yaml

from proxy.logdb.record import utc_timestamp
from sitegen import queries as q
from sitegen.alerts.rules import MODEL_P95_SQL

from .conftest import MASTER_KEY
from .rollup_helpers import assert_within_one_bucket

METADATA = Path(__file__).parents[1] / "datasette" / "metadata.yml"
PROMPT = [{"role": "user", "content": "hello"}]
GUIDE_COLUMNS = ("timestamp", "user_id", "model", "messages", "response", "prompt_tokens",
                 "completion_tokens", "total_tokens", "cost", "latency", "status_code")


async def mixed_traffic(gw) -> None:
    """Successes, upstream failures, and requests the gateway refuses itself."""
    for _ in range(3):
        await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    for model in ("broken", "bad-request", "slow", "down", "no-such-model"):
        with pytest.raises(openai.APIStatusError):
            await gw.client.chat.completions.create(model=model, messages=PROMPT)
    async with aiohttp.ClientSession() as http:
        for headers, body in [
            ({"Authorization": f"Bearer {MASTER_KEY}"}, {"model": "gpt-4o-mini", "messages": "hi"}),
            ({"Authorization": f"Bearer {MASTER_KEY}"}, {"model": "broken", "messages": PROMPT, "stream": "yes"}),
            ({"Authorization": "Bearer sk-wrong"}, {"model": "gpt-4o-mini", "messages": PROMPT}),
        ]:
            async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers) as resp:
                assert resp.status in (400, 401)


def nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[-(-len(ordered) * int(share * 100) // 100) - 1]


def expected_p95(conn: sqlite3.Connection, counted: str) -> dict[str, tuple[int, float]]:
    latencies: dict[str, list[float]] = {}
    for model, latency in conn.execute(f"SELECT model, latency FROM request_log WHERE {counted}"):
        latencies.setdefault(model, []).append(latency)
    return {m: (len(v), nearest_rank(v, 0.95)) for m, v in latencies.items()}


def three_p95s(conn: sqlite3.Connection) -> tuple[dict, dict, dict]:
    """p95 per model as the report, Datasette's latency_percentiles_exact and the p95 alert compute it."""
    now = time.time()
    window = {"start": utc_timestamp(now - 7 * 86400), "end": utc_timestamp(now + 60)}
    report = {r[0]: (r[1], r[3]) for r in conn.execute(q.LATENCY_PERCENTILES, window)}
    datasette = canned_p95(conn, "latency_percentiles_exact")
    alert = {r[0]: (r[1], r[2]) for r in conn.execute(
        MODEL_P95_SQL, {"since": utc_timestamp(now - 3600), "min_requests": 1})}
    return report, datasette, alert


def canned_p95(conn: sqlite3.Connection, name: str) -> dict[str, tuple[int, float]]:
    canned = yaml.safe_load(METADATA.read_text())["databases"]["litellm"]["queries"][name]
    return {r[0]: (r[1], r[3]) for r in conn.execute(canned["sql"], {"days": "7"})}


def assert_agree(report: dict, datasette: dict, alert: dict, expected: dict) -> None:
    assert datasette == alert == expected
    # The report rounds to 4 places in SQL; SQLite and Python may round a half differently.
    assert report.keys() == expected.keys()
    for model, (n, p) in expected.items():
        assert report[model][0] == n and report[model][1] == pytest.approx(p, abs=0.00005 + 1e-12)


async def test_upstream_latency_marks_exactly_the_requests_sent_upstream(gateway):
    await mixed_traffic(gateway)
    rows = gateway.rows()
    reached = sorted((r["model"], r["status_code"]) for r in rows if r["upstream_latency"] is not None)
    refused = sorted((r["model"], r["status_code"]) for r in rows if r["upstream_latency"] is None)
    assert reached == [("bad-request", 400), ("broken", 503), ("gpt-4o-mini", 200), ("gpt-4o-mini", 200),
                       ("gpt-4o-mini", 200), ("slow", 504)]
    assert refused == [("broken", 400), ("down", 502), ("gpt-4o-mini", 400), ("gpt-4o-mini", 401),
                       ("no-such-model", 404)]


async def test_report_datasette_and_alert_share_one_definition(gateway, tmp_path):
    await mixed_traffic(gateway)
    gateway.flush()
    conn = sqlite3.connect(gateway.db_path)
    expected = expected_p95(conn, "upstream_latency IS NOT NULL")
    assert expected["gpt-4o-mini"][0] == 3  # its 400 and 401 are not counted
    assert "down" not in expected and "no-such-model" not in expected
    assert_agree(*three_p95s(conn), expected)
    # latency_percentiles reads the hourly rollups: the same requests, p95 within one bucket.
    fast = canned_p95(conn, "latency_percentiles")
    assert {m: n for m, (n, _) in fast.items()} == {m: n for m, (n, _) in expected.items()}
    for model, (_, p95) in expected.items():
        assert_within_one_bucket(fast[model][1], p95)
    conn.close()

    # A log an older gateway wrote (the guide's columns only) counts every request.
    guide = sqlite3.connect(tmp_path / "guide.db")
    guide.execute(f"CREATE TABLE request_log (id INTEGER PRIMARY KEY, {', '.join(GUIDE_COLUMNS)})")
    guide.execute(f"ATTACH DATABASE '{gateway.db_path}' AS live")
    guide.execute(f"INSERT INTO request_log ({', '.join(GUIDE_COLUMNS)}) "
                  f"SELECT {', '.join(GUIDE_COLUMNS)} FROM live.request_log")
    guide.commit()
    guide.execute("DETACH DATABASE live")
    everything = expected_p95(guide, "1")
    assert everything["gpt-4o-mini"][0] == 5 and "no-such-model" in everything
    assert_agree(*three_p95s(guide), everything)
    guide.close()
