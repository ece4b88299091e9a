"""The report's explanations on hand-made logs whose answers are worked out by hand: the cost
decomposition (exactly additive), streaming speed from known timings, anomalies around planted
spikes, the forecast of a known month and budgets from a keys.db the gateway's KeyStore wrote.
Everything runs through the real build (`sitegen build`'s code path) and reads its JSON.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tests.site_compare import within_one_bucket
from tests.site_fixtures import NOW, build, history_db, keys_db, record, write_records

DAY, HOUR = 86400, 3600


def rows(out: Path, table: str) -> list[dict]:
    return json.loads((out / "data" / f"{table}.json").read_text())["rows"]


def exact(value: object) -> Decimal:
    return Decimal(repr(value))


# -- why cost moved -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def decomposed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Previous 7 days: A 10 x $1, B 10 x $2. Last 7 days: A 20 x $1.50 (and 5 failures at
    $0), C (new) 5 x $3; B gone. N0 = 20, N1 = 25."""
    root = tmp_path_factory.mktemp("decomposed")
    before, after = NOW - 10 * DAY, NOW - 3 * DAY
    records = ([record(before + i * 60, "A", 1.0) for i in range(10)]
               + [record(before + 900 + i * 60, "B", 2.0) for i in range(10)]
               + [record(after + i * 60, "A", 1.5) for i in range(20)]
               + [record(after + 1500 + i * 60, "A", 0.0, status=500) for i in range(5)]
               + [record(after + 2000 + i * 60, "C", 3.0) for i in range(5)])
    write_records(root / "litellm.db", records)
    build(root / "litellm.db", root / "out")
    return root / "out"


def test_volume_mix_and_price_by_hand(decomposed: Path) -> None:
    week = {r["model"]: r for r in rows(decomposed, "cost_change") if r["period"] == "Last 7 days"}
    by_hand = {  # (volume, mix, price) from the formulas on the page
        "A": (2.5, 7.5, 10.0),    # (25-20)*.5*1, 25*(.8-.5)*1, 25*.8*(1.5-1)
        "B": (5.0, -25.0, 0.0),   # (25-20)*.5*2, 25*(0-.5)*2, vanished
        "C": (0.0, 15.0, 0.0),    # new: all of its cost is mix
        None: (7.5, -2.5, 10.0),  # the total
    }
    assert {m: (r["volume"], r["mix"], r["price"]) for m, r in week.items()} == by_hand
    assert (week[None]["previous_cost"], week[None]["cost"], week[None]["change"]) == (30.0, 45.0, 15.0)
    assert (week[None]["previous_requests"], week[None]["requests"]) == (20, 25)  # failures cost $0
    assert week[None]["change_pct"] == 50.0
    # The 30 days hold both weeks, the 30 before nothing: all of it is volume.
    month = [r for r in rows(decomposed, "cost_change") if r["period"] == "Last 30 days"]
    assert {(r["model"], r["volume"], r["mix"], r["price"]) for r in month} == {
        ("A", 40.0, 0.0, 0.0), ("B", 20.0, 0.0, 0.0), ("C", 15.0, 0.0, 0.0), (None, 75.0, 0.0, 0.0)}


def test_the_sentence_names_what_moved(decomposed: Path) -> None:
    html = (decomposed / "index.html").read_text()
    assert ("Last 7 days, cost rose $15.00 (+50.0%) to $45.00 against the 7 days before: "
            "volume +$7.50 (25% more requests), mix −$2.50 (toward C), price +$10.00 (mostly A).") in html
    assert 'id="chart-cost_waterfall"' in html and "How the change is split" in html


@pytest.fixture(scope="module")
def history_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insights")
    build(history_db(root / "litellm.db"), root / "out")
    return root / "out"


def test_decomposition_adds_up_exactly_on_a_real_history(history_site: Path) -> None:
    found = rows(history_site, "cost_change")
    assert {r["period"] for r in found} == {"Today", "Last 7 days", "Last 30 days"}
    for period in ("Today", "Last 7 days", "Last 30 days"):
        mine = [r for r in found if r["period"] == period]
        total = next(r for r in mine if r["level"] == "total")
        for r in mine:  # every row, to the last digit
            assert exact(r["volume"]) + exact(r["mix"]) + exact(r["price"]) == exact(r["change"])
            assert exact(r["cost"]) - exact(r["previous_cost"]) == exact(r["change"])
        for key in ("volume", "mix", "price", "change", "cost", "previous_cost"):
            assert sum(exact(r[key]) for r in mine if r["level"] == "model") == exact(total[key])
    # The totals are the period cards' costs.
    cards = {r["period"]: r["cost"] for r in rows(history_site, "period_summary")}
    for r in found:
        if r["level"] == "total":
            assert round(r["cost"], 4) == round(cards[r["period"]], 4)


# -- streaming speed and the gateway's overhead ------------------------------------------

SPEEDS = (1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50, 64, 80, 100, 125, 160, 200, 250, 400)


def test_tokens_per_second_from_known_timings(tmp_path: Path) -> None:
    """20 streams of 100 output tokens, first token at 0.5 s, then 100/speed seconds."""
    start = NOW - DAY
    records = [record(start + i * 60, "m", 0.01, latency=0.5 + 100 / speed, stream=1,
                      time_to_first_token=0.5, completion_tokens=100, total_tokens=200)
               for i, speed in enumerate(SPEEDS)]
    records.append(record(start + 3000, "m", 0.01, latency=3.0, stream=0))  # not a stream
    write_records(tmp_path / "litellm.db", records)
    build(tmp_path / "litellm.db", tmp_path / "out")
    [speed] = rows(tmp_path / "out", "stream_speed")
    assert speed == {
        "model": "m", "streams": 20,
        "tps_p50": 32.0,   # rank ceil(.5 * 20) = 10 of the ascending speeds
        "tps_p95": 1.0,    # the slow tail: rank ceil(.05 * 20) = 1
        "ttft_p50": 0.5, "ttft_p95": 0.5,
        "tpot_p50": round(2.5 / 99, 6),   # 10th shortest of (100 / speed) / (100 - 1)
        "tpot_p95": round(50 / 99, 6),    # 19th
    }
    [daily] = rows(tmp_path / "out", "daily_stream_speed")
    assert (daily["streams"], daily["tps_p50"], daily["tps_p95"]) == (20, 32.0, 1.0)
    overhead = [r for r in rows(tmp_path / "out", "gateway_overhead") if r["requests"]]
    assert [(r["requests"], r["overhead_p50"], r["overhead_p99"]) for r in overhead] == [
        (21, 0.002, 0.002)]  # record() puts the upstream 2 ms under the latency


# -- anomalies ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """21 days of 20 requests an hour at $0.01, latency about 1 s; then a day at 10x the cost,
    an hour of failures and an hour of slow requests."""
    root = tmp_path_factory.mktemp("planted")
    spike_day = (NOW // DAY - 4) * DAY
    error_hour = (NOW // HOUR - 3) * HOUR
    slow_hour = (NOW // HOUR - 6) * HOUR
    records = []
    moment = (NOW // DAY - 20) * DAY
    while moment < NOW:
        cost = 0.1 if spike_day <= moment < spike_day + DAY else 0.01
        slow = slow_hour <= moment < slow_hour + HOUR
        records.append(record(moment, "m", cost, latency=5.0 if slow else 1.0 + (moment % 7) / 100))
        moment += 180
    records += [record(error_hour + 90 + i * 150, "m", 0.0, status=500, latency=0.3) for i in range(20)]
    write_records(root / "litellm.db", records)
    build(root / "litellm.db", root / "out")
    return root / "out"


def test_planted_spikes_and_nothing_else_are_flagged(planted: Path) -> None:
    from datetime import UTC, datetime

    def day(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")

    def hour(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:00:00")

    found = {(r["when"], r["grain"], r["metric"]) for r in rows(planted, "anomalies")}
    assert found == {
        (day(NOW - 4 * DAY), "day", "Cost"),
        (day(NOW), "day", "Error rate"),       # today carries the failed hour
        (day(NOW), "day", "p95 latency"),      # and the slow one (20 of ~290 requests)
        (hour(NOW - 3 * HOUR), "hour", "Error rate"),
        (hour(NOW - 6 * HOUR), "hour", "p95 latency"),
    }
    spike = next(r for r in rows(planted, "anomalies") if r["metric"] == "Cost")
    assert spike["value"] == pytest.approx(48.0) and spike["median"] == pytest.approx(4.8)
    assert spike["threshold"] == pytest.approx(4.8 * 1.25)  # MAD 0: floored at 5 % of the median
    health = [r for r in rows(planted, "daily_health") if r["anomaly"]]
    assert {(r["date"], r["metric"]) for r in health} == {
        (d, m) for d, g, m in found if g == "day"}
    overview = (planted / "index.html").read_text()
    assert "median + 5 × MAD" in overview
    # marked on the charts: the cost chart's red rules, the hourly chart's
    cost_chart = json.loads((planted / "data" / "chart-daily_cost.vl.json").read_text())
    assert [v["when"] for layer in cost_chart["layer"][1:] for v in layer["data"]["values"]] == [
        day(NOW - 4 * DAY)]
    hourly = json.loads((planted / "data" / "chart-hourly_throughput.vl.json").read_text())
    assert sorted(v["when"] for v in hourly["layer"][1]["data"]["values"]) == [
        hour(NOW - 6 * HOUR), hour(NOW - 3 * HOUR)]


# -- forecast and budgets -----------------------------------------------------------------

MID_DECEMBER = 1765800000  # 2025-12-15 12:00 UTC


@pytest.fixture(scope="module")
def known_month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A request every hour at :30 since November 1: $1 a day in November, $2 a day in
    December, December's alternately on keys A and B ($1 a day each)."""
    root = tmp_path_factory.mktemp("month")
    november, december = 1761957000, 1764549000  # Nov 1 and Dec 1, 00:30 UTC
    records = [record(t, "m", 1 / 24) for t in range(november, december, HOUR)]
    records += [record(t, "m", 2 / 24, key_raw="sk-key-A" if i % 2 else "sk-key-B")
                for i, t in enumerate(range(december, MID_DECEMBER, HOUR))]
    write_records(root / "litellm.db", records)
    keys_db(root / "keys.db", [
        {"raw": "sk-key-A", "key_alias": "A", "max_budget": 100.0, "spend": 90.0},
        {"raw": "sk-key-B", "key_alias": "B", "max_budget": 50.0, "spend": 55.0},
        {"raw": "sk-key-C-never-used", "max_budget": 20.0, "spend": 5.0, "budget_duration": "30d",
         "budget_reset_at": 1766188800},  # 2025-12-20, no requests
    ], global_spend=29.0, global_reset=1767139200)  # resets 2025-12-31
    build(root / "litellm.db", root / "out", now=MID_DECEMBER, gateway_budget=1000.0)
    return root / "out"


def test_month_forecast_of_a_known_month(known_month: Path) -> None:
    [forecast] = rows(known_month, "month_forecast")
    assert forecast == {
        "month": "2025-12", "month_to_date": 29.0,  # 14 days at $2 and half a day
        "days_elapsed": 14.5, "days_in_month": 31,
        "rate_per_day": 2.0,  # $15 since 00:00 on Dec 8, 7.5 days
        "projected": 62.0,  # 29 + 2 * 16.5 days left
        "previous_month": 30.0, "projected_change": 106.7,
    }
    daily = rows(known_month, "month_to_date")
    assert [r["date"] for r in daily] == [f"2025-12-{d:02d}" for d in range(1, 32)]
    assert [r["cumulative"] for r in daily[:15]] == [2.0 * d for d in range(1, 15)] + [29.0]
    assert daily[14]["projected"] == 29.0 and daily[15]["projected"] == 32.0
    assert daily[-1]["projected"] == 62.0 and daily[-1]["cumulative"] is None
    html = (known_month / "cost.html").read_text()
    assert "the month ends near $62.00, against $30.00 last month" in html


def test_budgets_most_urgent_first(known_month: Path) -> None:
    found = rows(known_month, "budgets")
    assert [(r["scope"], r["name"], r["status"], r["runs_out"]) for r in found] == [
        ("key", "B", "spent", None),
        ("key", "A", "runs out", "2025-12-25 12:00"),  # $10 left at $1 a day
        ("gateway", "the gateway", "resets first", "2027-04-15 00:00"),  # $971 at $2: 485.5 days
        ("key", "sk-…used", "no spend in the last 7 days", None),  # no alias: display form
    ]
    a = found[1]
    assert (a["spend"], a["max_budget"], a["left"], a["used_pct"], a["rate_per_day"]) == (
        90.0, 100.0, 10.0, 90.0, 1.0)


def test_no_key_or_hash_reaches_the_site(known_month: Path) -> None:
    from proxy.server.auth import hash_key

    secrets = ["sk-key-A", "sk-key-B", "sk-key-C-never-used"]
    secrets += [hash_key(s) for s in secrets]
    for path in known_month.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".json", ".csv"}:
            text = path.read_text()
            assert not [s for s in secrets if s in text], path


def test_budgets_without_keys_db_say_so(tmp_path: Path) -> None:
    write_records(tmp_path / "litellm.db", [record(NOW - 60, "m", 0.5)])
    build(tmp_path / "litellm.db", tmp_path / "out")
    assert not (tmp_path / "keys.db").exists()  # nothing created beside the log
    html = (tmp_path / "out" / "cost.html").read_text()
    assert "No keys.db beside the log" in html
    assert json.loads((tmp_path / "out" / "data" / "budgets.json").read_text())["unavailable"]
    # A keys.db that is not a database: said so too, and the rest builds.
    (tmp_path / "keys.db").write_bytes(b"not a database" * 100)
    build(tmp_path / "litellm.db", tmp_path / "out2")
    assert "keys.db could not be read" in (tmp_path / "out2" / "cost.html").read_text()


# -- breakdowns ---------------------------------------------------------------------------


def test_breakdowns_by_a_scalar_key_and_a_list_key(history_site: Path, tmp_path: Path) -> None:
    db = history_site.parent / "litellm.db"
    conn = sqlite3.connect(db)
    window = json.loads((history_site / "data" / "by_project.json").read_text())["window"]
    total = conn.execute("SELECT COUNT(*), ROUND(SUM(cost), 6) FROM request_log WHERE timestamp >= ? "
                         "AND timestamp < ?", (window["start"], window["end"])).fetchone()
    project = {r["value"]: r for r in rows(history_site, "by_project")}
    assert set(project) == {"web-app", "analytics", "ci", None}  # None: no metadata (master key)
    assert sum(r["requests"] for r in project.values()) == total[0]  # a scalar: each request once
    assert round(sum(r["cost"] for r in project.values()), 4) == round(total[1], 4)
    tags = {r["value"]: r for r in rows(history_site, "by_tags")}
    assert {"interactive", "batch", "eu"} <= set(tags)
    assert sum(r["requests"] for r in tags.values()) > total[0]  # a list: once per tag
    # p95 of one value, by hand: nearest rank over the last 7 days' requests that reached an upstream
    since = conn.execute("SELECT DATE(?, '-6 days')", (window["end"],)).fetchone()[0]
    latencies = sorted(r[0] for r in conn.execute(
        "SELECT latency FROM request_log WHERE timestamp >= ? AND timestamp < ? "
        "AND upstream_latency IS NOT NULL AND json_extract(metadata, '$.project') = 'analytics'",
        (since, window["end"])))
    # From the hourly histogram: within one bucket of the exact value (tests/site_compare.py).
    exact = round(latencies[-(-len(latencies) * 95 // 100) - 1], 4)
    assert within_one_bucket(project["analytics"]["p95_latency"], exact, 4)
    html = (history_site / "breakdowns.html").read_text()
    assert "(not set)" in html and 'id="chart-by_tags_daily"' in html
    keys = {r["key"] for r in rows(history_site, "metadata_keys")}
    assert {"project", "feature", "environment", "tags"} <= keys


def test_every_kind_of_budget_keys_db_holds(history_site: Path) -> None:
    """Keys, users, teams, team members and end users (through their budget tier), each with
    its own spend rate from the log: carol's is her requests' cost over the last 7 days."""
    found = {(r["scope"], r["name"]): r for r in rows(history_site, "budgets")}
    assert set(found) == {
        ("gateway", "the gateway"), ("key", "team-web"), ("key", "team-data"), ("key", "ci"),
        ("key", '"><img src=x onerror=alert(2)></script><script>alert(1)</script>'),
        ("user", "carol"), ("team", "Platform"), ("member", "alice in Platform"),
        ("end user", "dave"),
    }  # bob has no budget, "free" neither
    conn = sqlite3.connect(history_site.parent / "litellm.db")
    week = conn.execute("SELECT SUM(cost) FROM request_log WHERE user_id = 'carol' AND timestamp >= "
                        "'2025-12-24 14:30:00.000' AND timestamp < '2025-12-31 14:30:00.000'").fetchone()[0]
    assert found[("user", "carol")]["rate_per_day"] == round(week / 7, 6)
    # dave's tier has a 1-day period and none started yet: it resets before it runs out.
    assert found[("end user", "dave")]["status"] == "resets first"
    assert (found[("end user", "dave")]["max_budget"], found[("member", "alice in Platform")]["max_budget"]) == (2.0, 5.0)
