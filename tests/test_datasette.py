"""`make explore`: the real Datasette command from the Makefile, on a log the gateway's writer is
still writing. One Datasette process per configuration, started on port 0 with the command
`make -n explore` prints (see datasette_harness); the login configuration is in
test_datasette_login.py.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml

from proxy.logdb.record import RequestRecord, utc_timestamp
from tests.datasette_harness import (
    CANNED_QUERIES,
    METADATA,
    MODELS,
    NEEDS_METADATA,
    PROJECTS,
    REPO,
    USERS,
    LogDb,
    clean_env,
    explore_command,
    rows,
    run_to_exit,
    running_log,
    start,
    stop,
)


@pytest.fixture(scope="module")
def log_db(tmp_path_factory) -> Iterator[LogDb]:
    folder = tmp_path_factory.mktemp("explore")
    # The gateway's second file, beside the log as in production: it must never be served.
    with sqlite3.connect(folder / "keys.db") as keys:
        keys.execute("CREATE TABLE keys (key_hash TEXT PRIMARY KEY, user_id TEXT, spend REAL)")
        keys.execute("INSERT INTO keys VALUES ('ab' || hex(randomblob(31)), 'alice', 1.5)")
    # The writer stays up all module: Datasette reads while it writes.
    with running_log(folder / "litellm.db") as log:
        yield log


@pytest.fixture(scope="module")
def explore(log_db, tmp_path_factory) -> Iterator[httpx.Client]:
    log = tmp_path_factory.mktemp("explore-log") / "datasette.log"
    server = start(explore_command(log_db.path), clean_env(), log)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    stop(server)


# -- the open configuration -------------------------------------------------------------------


def test_metadata_names_exactly_the_linked_canned_queries():
    metadata = yaml.safe_load(METADATA.read_text())
    queries = metadata["databases"]["litellm"]["queries"]
    assert sorted(queries) == sorted(CANNED_QUERIES)
    for name, query in queries.items():
        assert query["title"] and query["description"], name
        assert not query.get("write"), f"{name} must not be a write query"


def test_every_request_log_column_is_described(log_db):
    table = yaml.safe_load(METADATA.read_text())["databases"]["litellm"]["tables"]["request_log"]
    with sqlite3.connect(log_db.path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(request_log)")}
    assert columns - set(table["columns"]) == set()
    assert table["units"] == {
        "cost": "USD",
        "latency": "s",
        "time_to_first_token": "s",
        "upstream_latency": "s",
    }


def test_serves_the_log_only_with_the_settings_for_a_big_live_table(explore):
    databases = explore.get("/-/databases.json").json()
    assert [(db["name"], db["is_mutable"]) for db in databases] == [("litellm", True)]
    settings = explore.get("/-/settings.json").json()
    assert settings["suggest_facets"] is False
    assert settings["allow_download"] is False
    assert settings["sql_time_limit_ms"] == 10000
    assert settings["max_returned_rows"] == 1000
    plugins = {p["name"] for p in explore.get("/-/plugins.json").json()}
    assert {"shin_readonly.py", "shin_access.py", "datasette-auth-passwords"} <= plugins


@pytest.mark.parametrize("name", CANNED_QUERIES)
def test_every_canned_query_returns_rows(explore, name):
    assert rows(explore, f"/litellm/{name}.json", days=30)


def test_canned_queries_count_what_was_written(explore, log_db):
    month = log_db.within(30)
    by_model = rows(explore, "/litellm/usage_by_model.json", days=30)
    assert sum(r["requests"] for r in by_model) == len(month)
    assert {r["model"] for r in by_model} == set(MODELS)
    by_user = {r["user_id"]: r["requests"] for r in rows(explore, "/litellm/usage_by_user.json")}
    assert by_user == {u: sum(r.user_id == u for r in month) for u in USERS}  # default: 30 days
    errors = {r["model"]: r["errors"] for r in rows(explore, "/litellm/error_rates.json", days=30)}
    assert errors == {m: sum(r.model == m and r.status_code >= 400 for r in month) for m in MODELS}
    [today] = rows(explore, "/litellm/todays_stats.json")
    assert today["requests"] == len(log_db.today())
    assert today["errors"] == sum(r.status_code >= 400 for r in log_db.today())
    failed = rows(explore, "/litellm/failed_requests.json")
    assert failed and all(r["status_code"] >= 400 for r in failed)
    assert len(failed) == sum(r.status_code >= 400 for r in log_db.records)


def test_latency_percentiles_count_requests_that_reached_an_upstream(explore, log_db):
    """From the rollups: within one 10 % bucket of the exact nearest-rank value, never below it;
    latency_percentiles_exact reads the raw rows and is exact."""
    from tests.rollup_helpers import assert_within_one_bucket, exact_percentiles

    week = [r for r in log_db.within(7) if r.upstream_latency is not None]
    assert 0 < len(week) < len(log_db.within(7))  # the gateway's refusals are left out
    fast = {r["model"]: r for r in rows(explore, "/litellm/latency_percentiles.json")}
    exact = {r["model"]: r for r in rows(explore, "/litellm/latency_percentiles_exact.json")}
    assert set(fast) == set(exact) == {r.model for r in week}
    for model, row in exact.items():
        latencies = [r.latency for r in week if r.model == model]
        expected = exact_percentiles(latencies)
        assert row["requests"] == fast[model]["requests"] == len(latencies)
        assert row["max_latency"] == fast[model]["max_latency"] == max(latencies)
        for percent in (50, 95, 99):
            column = f"p{percent}_latency"
            assert row[column] == expected[percent]
            assert_within_one_bucket(fast[model][column], expected[percent])


@pytest.mark.parametrize(
    ("days", "window"), [("1", 1), ("7", 7), ("", 7), ("-30", 30), ("2.5", 2.5), ("abc", 0)]
)
def test_days_parameter_sets_the_window(explore, log_db, days, window):
    found = rows(explore, "/litellm/usage_by_model.json", days=days)
    assert sum(r["requests"] for r in found) == len(log_db.within(window))


def test_adhoc_select_works(explore, log_db):
    found = rows(
        explore,
        "/litellm.json",
        sql="SELECT user_id, COUNT(*) AS n FROM request_log WHERE status_code >= :s GROUP BY user_id",
        s="400",
    )
    assert sum(r["n"] for r in found) == sum(r.status_code >= 400 for r in log_db.records)


WRITES = [
    "UPDATE request_log SET cost = 0",
    "INSERT INTO request_log (timestamp, model) VALUES ('2020-01-01 00:00:00.000', 'x')",
    "DELETE FROM request_log",
    "DROP TABLE request_log",
    "ATTACH DATABASE 'keys.db' AS keys",
    "PRAGMA query_only = 0",
    "PRAGMA user_version = 99",
    "select 1; DELETE FROM request_log",
    # Passes Datasette's "must be a SELECT" check: only SQLite itself stops this one.
    "WITH doomed AS (SELECT id FROM request_log) DELETE FROM request_log WHERE id IN doomed",
    "WITH x AS (SELECT 1) INSERT INTO request_log (timestamp) SELECT '2020-01-01' FROM x",
]


@pytest.mark.parametrize("sql", WRITES)
def test_adhoc_writes_are_refused(explore, log_db, sql):
    before = log_db.count()
    response = explore.get("/litellm.json", params={"sql": sql})
    assert response.status_code in (400, 403), response.text
    assert response.json()["ok"] is False
    assert log_db.count() == before


def test_posting_writes_is_refused(explore, log_db):
    before = log_db.count()
    for path in ("/litellm", "/litellm/recent_requests", "/litellm/request_log", "/litellm.json"):
        response = explore.post(path, data={"sql": "DELETE FROM request_log"})
        # Datasette 0.65 answers a POST to a read-only canned query with a 500 (its own bug);
        # what matters is that no route accepts it.
        assert response.status_code >= 400, (path, response.status_code)
    insert = explore.post("/litellm/request_log/-/insert", json={"row": {"model": "x"}})
    assert insert.status_code >= 400
    assert log_db.count() == before


def test_keys_db_is_not_served(explore):
    assert explore.get("/keys").status_code == 404
    assert explore.get("/keys.json", params={"sql": "SELECT * FROM keys"}).status_code == 404
    assert explore.get("/keys.db").status_code == 404


def test_database_file_is_not_downloadable(explore):
    response = explore.get("/litellm.db")
    assert response.status_code == 403
    assert b"SQLite format" not in response.content


def test_links_back_to_the_report_by_default(explore):
    assert 'href="http://127.0.0.1:4000/ui"' in explore.get("/").text


def test_rows_written_after_start_are_visible(explore, log_db):
    user = f"late-{uuid.uuid4().hex[:8]}"
    sql = "SELECT COUNT(*) AS n FROM request_log WHERE user_id = :u"
    assert rows(explore, "/litellm.json", sql=sql, u=user) == [{"n": 0}]
    late = RequestRecord(
        timestamp=utc_timestamp(),
        request_id=str(uuid.uuid4()),
        endpoint="/v1/chat/completions",
        model="gpt-4o",
        user_id=user,
        status_code=200,
        total_tokens=5,
        cost=0.01,
        latency=0.2,
    )
    log_db.writer.submit(late)
    assert log_db.writer.wait_idle()
    log_db.records.append(late)
    assert rows(explore, "/litellm.json", sql=sql, u=user) == [{"n": 1}]
    assert [r["user_id"] for r in rows(explore, "/litellm/request_log.json", user_id=user)] == [
        user
    ]
    assert user in {r["user_id"] for r in rows(explore, "/litellm/usage_by_user.json", days=1)}


# -- refusals at start-up ---------------------------------------------------------------------


def test_refuses_to_serve_keys_db(log_db):
    result = run_to_exit(explore_command(log_db.path.with_name("keys.db")), clean_env())
    assert result.returncode != 0
    assert "never keys.db" in result.stderr


# -- a log written by an older gateway: the guide's columns only -------------------------------


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("legacy")
    path = folder / "litellm.db"
    guide_table = (REPO / "proxy/logdb/migrations/0001_request_log.sql").read_text()
    with sqlite3.connect(path) as conn:
        conn.executescript(guide_table)
        conn.executemany(
            "INSERT INTO request_log (timestamp, user_id, model, messages, response, prompt_tokens,"
            " completion_tokens, total_tokens, cost, latency, status_code)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (utc_timestamp(), "dana", "gpt-4", "[]", "hi", 10, 5, 15, 0.002, 1.5, 200),
                (utc_timestamp(), None, "gpt-4", "[]", "Bad gateway", 10, 0, 10, 0.0, 0.2, 502),
            ],
        )
    server = start(explore_command(path), clean_env(), folder / "datasette.log")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    stop(server)


@pytest.mark.parametrize("name", [q for q in CANNED_QUERIES if q not in NEEDS_METADATA])
def test_canned_queries_run_on_a_guide_only_log(legacy, name):
    assert rows(legacy, f"/litellm/{name}.json", days=30)


def test_breakdowns_by_any_metadata_key(explore, log_db):
    month = log_db.within(30)
    by_project = {r["value"]: r for r in rows(explore, "/litellm/breakdown.json", key="project", days=30)}
    def project(r):
        return json.loads(r.metadata)["project"] if r.metadata else None

    expected = {p or "(not set)": [r for r in month if project(r) == p] for p in PROJECTS}
    assert {v: r["requests"] for v, r in by_project.items()} == {
        v: len(found) for v, found in expected.items() if found}
    assert by_project["search"]["errors"] == sum(r.status_code >= 400 for r in expected["search"])
    # p95 over the requests that reached an upstream (upstream_latency recorded)
    latencies = sorted(r.latency for r in expected["search"] if r.upstream_latency is not None)
    assert by_project["search"]["p95_latency"] == (
        latencies[-(-len(latencies) * 95 // 100) - 1] if latencies else None)
    tags = {r["value"]: r["requests"] for r in rows(explore, "/litellm/breakdown.json", key="tags")}
    assert tags["t"] == len(expected["search"]) + len(expected["billing"])  # one per list item
    assert tags["n0"] + tags["n1"] == tags["t"]
    daily = rows(explore, "/litellm/breakdown_daily_cost.json", key="project", days=30)
    assert sum(r["requests"] for r in daily) == len(month)


def test_every_report_link_opens_in_datasette_with_the_same_rows(explore, log_db, tmp_path):
    """Build the report against this Datasette: every table's link answers, and a table without
    a canned query gets exactly its own rows back (same SQL, same window)."""
    import html
    import json
    import re
    import time
    from urllib.parse import parse_qs, urlsplit

    from sitegen.plan import site_plan
    from tests.site_fixtures import BREAKDOWNS, build

    out = tmp_path / "public"
    base = str(explore.base_url).rstrip("/")
    build(log_db.path, out, now=int(time.time()), datasette_url=base)
    by_sql = {t.sql.strip(): t.name for t in site_plan(BREAKDOWNS).tables if t.compute is None}
    hrefs = {html.unescape(h) for page in out.glob("*.html")
             for h in re.findall(rf'href="({re.escape(base)}/litellm[^"]*)"', page.read_text())}
    adhoc = 0
    for href in sorted(hrefs):
        parts = urlsplit(href)
        answer = explore.get(f"{parts.path}.json?{parts.query}")
        assert answer.status_code == 200, (href, answer.text[:300])
        if parts.path.endswith("/litellm"):
            table = by_sql[parse_qs(parts.query)["sql"][0]]
            expected = json.loads((out / "data" / f"{table}.json").read_text())["rows"]
            assert len(answer.json()["rows"]) == len(expected), table
            adhoc += 1
    assert adhoc >= 10 and len(hrefs) >= 25
