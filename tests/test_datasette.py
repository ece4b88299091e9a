"""`make explore`: the real Datasette command from the Makefile, on a log the gateway's writer wrote.

One Datasette process per configuration (open; login + a planted write query; refusals that
exit at start-up), all started on port 0 with the command `make -n explore` prints.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from proxy.logdb.record import RequestRecord, utc_timestamp
from proxy.logdb.writer import LogWriter

REPO = Path(__file__).resolve().parents[1]
METADATA = REPO / "datasette" / "metadata.yml"
DAY = 86400.0

# The static report links to these by name: the set is a contract.
CANNED_QUERIES = (
    "recent_requests",
    "usage_by_model",
    "usage_by_user",
    "cost_by_model",
    "daily_cost_trend",
    "latency_by_model",
    "latency_percentiles",
    "error_rates",
    "hourly_throughput",
    "top_users_by_cost",
    "most_expensive_requests",
    "request_volume_by_hour",
    "failed_requests",
    "token_efficiency",
    "todays_stats",
    "todays_top_models",
)

MODELS = {  # name: (typical latency in seconds, USD per token)
    "gpt-4o": (1.8, 6e-6),
    "gpt-4o-mini": (0.6, 4e-7),
    "claude-3-5-sonnet": (2.4, 9e-6),
    "text-embedding-3-small": (0.15, 2e-8),
}
USERS = ("alice", "bob", "carol", None)
# Ages in days, kept clear of the 1/7/30-day window edges so expected counts are exact.
AGES = (0.3, 2, 3.5, 6, 12, 25, 45)
FAILURES = (
    (429, "rate_limit_error", "Rate limit reached for gpt-4o"),
    (500, "api_error", "upstream returned 500"),
    (401, "authentication_error", "Invalid API key <script>alert(1)</script>"),
)

PASSWORD = "correct horse battery staple"


def _records(now: float) -> list[RequestRecord]:
    rng = random.Random(5)
    since_midnight = now % DAY
    records = []
    for i in range(90):
        model = list(MODELS)[i % len(MODELS)]
        if i < 24:  # every model has traffic and failures today
            age = rng.uniform(0, min(3600.0, since_midnight * 0.9))
        else:
            age = rng.choice(AGES) * DAY + rng.uniform(0, 3600)
        typical_latency, price = MODELS[model]
        failed = i % 6 == 5
        prompt, completion = rng.randint(20, 3000), rng.randint(0, 800)
        record = RequestRecord(
            timestamp=utc_timestamp(now - age),
            request_id=str(uuid.UUID(int=rng.getrandbits(128))),
            endpoint="/v1/embeddings" if model.startswith("text-") else "/v1/chat/completions",
            model=model,
            user_id=USERS[i % len(USERS)],
            messages=f'[{{"role": "user", "content": "question {i} <b>bold</b>"}}]',
            response=f"answer {i}",
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cost=round((prompt + completion) * price, 8),
            latency=round(typical_latency * rng.uniform(0.5, 2.5), 4),
            status_code=200,
            key_hash=f"{i % 3:064x}",
            key_alias=f"team-{i % 3}",
            provider="anthropic" if model.startswith("claude") else "openai",
            upstream_model=f"openai/{model}",
            cost_status="priced",
            client_ip="127.0.0.1",
        )
        if failed:
            record.status_code, record.error_type, record.response = FAILURES[i % len(FAILURES)]
            record.completion_tokens, record.total_tokens, record.cost = 0, prompt, 0.0
            record.cost_status = "none"
        records.append(record)
    return records


@dataclass
class LogDb:
    path: Path
    writer: LogWriter
    records: list[RequestRecord]

    def within(self, days: float) -> list[RequestRecord]:
        cutoff = utc_timestamp(time.time() - days * DAY)
        return [r for r in self.records if r.timestamp > cutoff]

    def today(self) -> list[RequestRecord]:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        return [r for r in self.records if r.timestamp.startswith(day)]

    def count(self) -> int:
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0]


@pytest.fixture(scope="module")
def log_db(tmp_path_factory) -> Iterator[LogDb]:
    folder = tmp_path_factory.mktemp("explore")
    path = folder / "litellm.db"
    writer = LogWriter(path)
    writer.start()
    records = _records(time.time())
    writer.write_now(records)
    assert writer.wait_idle()
    # The gateway's second file, beside the log as in production: it must never be served.
    with sqlite3.connect(folder / "keys.db") as keys:
        keys.execute("CREATE TABLE keys (key_hash TEXT PRIMARY KEY, user_id TEXT, spend REAL)")
        keys.execute("INSERT INTO keys VALUES ('ab' || hex(randomblob(31)), 'alice', 1.5)")
    yield LogDb(path, writer, records)
    writer.stop()  # the writer stays up all module: Datasette reads while it writes


def explore_command(db: Path) -> list[str]:
    """The command `make explore DB=... PORT=0` runs (port 0: the OS picks a free port)."""
    printed = subprocess.run(
        ["make", "-s", "-n", "explore", f"DB={db}", "PORT=0", "HOST=127.0.0.1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    [line] = [line for line in printed.splitlines() if "-m datasette serve" in line]
    return shlex.split(line)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASETTE_")}
    env.update(extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path
    db: Path | None = None


def start(command: list[str], env: dict[str, str], log: Path) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", log.read_text())
        if found:
            return Server(process, found.group(1), log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail(f"Datasette did not start: {log.read_text()}")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def explore(log_db, tmp_path_factory) -> Iterator[httpx.Client]:
    log = tmp_path_factory.mktemp("explore-log") / "datasette.log"
    server = start(explore_command(log_db.path), clean_env(), log)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    stop(server)


def rows(client: httpx.Client, path: str, **params) -> list[dict]:
    response = client.get(path, params={**params, "_shape": "array"})
    assert response.status_code == 200, response.text
    return response.json()


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


def test_latency_percentiles_are_nearest_rank(explore, log_db):
    week = log_db.within(7)
    for row in rows(explore, "/litellm/latency_percentiles.json"):
        latencies = sorted(r.latency for r in week if r.model == row["model"])
        assert row["requests"] == len(latencies)
        for share, column in ((0.5, "p50_latency"), (0.95, "p95_latency"), (0.99, "p99_latency")):
            rank = -(-len(latencies) * share // 1)  # ceil
            assert row[column] == latencies[int(rank) - 1]


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
    log_db.writer.submit(
        RequestRecord(
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
    )
    assert log_db.writer.wait_idle()
    assert rows(explore, "/litellm.json", sql=sql, u=user) == [{"n": 1}]
    assert [r["user_id"] for r in rows(explore, "/litellm/request_log.json", user_id=user)] == [
        user
    ]
    assert user in {r["user_id"] for r in rows(explore, "/litellm/usage_by_user.json", days=1)}


# -- refusals at start-up ---------------------------------------------------------------------


def run_to_exit(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_refuses_to_serve_keys_db(log_db):
    result = run_to_exit(explore_command(log_db.path.with_name("keys.db")), clean_env())
    assert result.returncode != 0
    assert "never keys.db" in result.stderr


def test_refuses_a_plain_text_password(log_db):
    env = clean_env(DATASETTE_PASSWORD_HASH=PASSWORD)
    result = run_to_exit(explore_command(log_db.path), env)
    assert result.returncode != 0
    assert "datasette hash-password" in result.stderr
    assert PASSWORD not in result.stderr


# -- login configured (and a write query planted, as a careless edit or plugin could) --------


@pytest.fixture(scope="module")
def guarded(log_db, tmp_path_factory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("guarded")
    # Served under another name, as `make explore DB=backups/litellm-20240101.db` would.
    backup = folder / "litellm-20240101.db"
    with sqlite3.connect(log_db.path) as source, sqlite3.connect(backup) as target:
        source.backup(target)
    metadata = yaml.safe_load(METADATA.read_text())
    metadata["databases"]["litellm"]["queries"]["planted_delete"] = {
        "sql": "DELETE FROM request_log",
        "write": True,
    }
    planted = folder / "metadata.yml"
    planted.write_text(yaml.safe_dump(metadata))
    command = explore_command(backup)
    command[command.index("--metadata") + 1] = str(planted)
    password_hash = subprocess.run(
        [str(REPO / ".venv/bin/datasette"), "hash-password", "--no-confirm"],
        input=PASSWORD,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = clean_env(
        DATASETTE_PASSWORD_HASH=password_hash,
        DATASETTE_USERNAME="ops",
        DATASETTE_REPORT_URL="https://reports.example/shin/",
    )
    server = start(command, env, folder / "datasette.log")
    server.db = backup
    yield server
    stop(server)


@contextmanager
def log_in(url: str, username: str, password: str) -> Iterator[httpx.Client]:
    """A client that submitted datasette-auth-passwords' /-/login form, as a browser does."""
    with httpx.Client(base_url=url, timeout=30) as client:
        form = client.get("/-/login")
        token = re.search(r'name="csrftoken" value="([^"]+)"', form.text).group(1)
        client.post(
            "/-/login", data={"username": username, "password": password, "csrftoken": token}
        )
        yield client


GUARDED_PATHS = (
    "/",
    "/litellm-20240101",
    "/litellm-20240101.json",
    "/litellm-20240101/request_log.json",
    "/litellm-20240101/usage_by_model.json?days=30",
    "/litellm-20240101.json?sql=select+1",
    "/litellm-20240101.db",
    "/-/metadata.json",
    "/-/databases.json",
)


@pytest.mark.parametrize("path", GUARDED_PATHS)
def test_login_is_required_everywhere(guarded, path):
    response = httpx.get(guarded.url + path, follow_redirects=False)
    if path.endswith(".json") or ".json?" in path:
        assert response.status_code == 403
    else:  # a browser is sent to the login form
        assert response.status_code == 302
        assert response.headers["location"] == "/-/login"


def test_wrong_password_is_refused(guarded):
    with log_in(guarded.url, "ops", "not the password") as client:
        assert "ds_actor" not in client.cookies
        assert client.get("/litellm-20240101.json").status_code == 403


def test_logged_in_user_gets_everything(guarded, log_db):
    with log_in(guarded.url, "ops", PASSWORD) as client:
        assert "ds_actor" in client.cookies
        # The canned queries follow the log to its other name.
        assert rows(client, "/litellm-20240101/usage_by_model.json", days=30)
        assert rows(client, "/litellm-20240101/todays_stats.json")
        assert 'href="https://reports.example/shin/"' in client.get("/").text
        metadata = client.get("/-/metadata.json").text
        assert "pbkdf2_sha256" not in metadata and "DATASETTE_PASSWORD_HASH" in metadata
        assert client.get("/litellm-20240101.db").status_code == 403


def test_query_only_stops_a_planted_write_query(guarded):
    def count() -> int:
        with sqlite3.connect(f"file:{guarded.db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0]

    before = count()
    with log_in(guarded.url, "ops", PASSWORD) as client:
        page = client.get("/litellm-20240101/planted_delete")
        assert page.status_code == 200
        token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/litellm-20240101/planted_delete",
            data={"csrftoken": token, "_json": "1"},
        )
    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert "readonly" in response.json()["message"]
    assert count() == before > 0


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


@pytest.mark.parametrize("name", CANNED_QUERIES)
def test_canned_queries_run_on_a_guide_only_log(legacy, name):
    assert rows(legacy, f"/litellm/{name}.json", days=30)
