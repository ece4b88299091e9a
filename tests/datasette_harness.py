"""Drives `make explore` for the Datasette tests: a request log written by the gateway's writer,
the exact command `make -n explore` prints, and that command run as a real process on port 0.
"""

from __future__ import annotations

import json
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
    "latency_percentiles_exact",
    "error_rates",
    "hourly_throughput",
    "top_users_by_cost",
    "most_expensive_requests",
    "request_volume_by_hour",
    "failed_requests",
    "token_efficiency",
    "todays_stats",
    "todays_top_models",
) + ("breakdown", "breakdown_daily_cost")
#: Canned queries over the metadata column, which a log of an older gateway does not have.
NEEDS_METADATA = ("breakdown", "breakdown_daily_cost")
PROJECTS = ("search", "billing", None)  # request i carries PROJECTS[i % 3] (None: no metadata)

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


def request_records(now: float) -> list[RequestRecord]:
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
            metadata=json.dumps({"project": PROJECTS[i % 3], "tags": ["t", f"n{i % 2}"]})
            if PROJECTS[i % 3] else None,
        )
        record.upstream_latency = round(record.latency * 0.9, 4)
        if failed:
            failure = FAILURES[(i // 6) % len(FAILURES)]
            record.status_code, record.error_type, record.response = failure
            record.completion_tokens, record.total_tokens, record.cost = 0, prompt, 0.0
            record.cost_status = "none"
            if record.status_code != 500:  # refused by the gateway itself: never sent upstream
                record.upstream_latency = None
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
        return count_rows(self.path)


def count_rows(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0]


@contextmanager
def running_log(path: Path) -> Iterator[LogDb]:
    """A log written through the gateway's LogWriter, which keeps running (and writable) inside."""
    writer = LogWriter(path)
    writer.start()
    try:
        records = request_records(time.time())
        writer.submit_many(records)
        assert writer.wait_idle()
        yield LogDb(path, writer, records)
    finally:
        writer.stop()


def explore_command(db: Path) -> list[str]:
    """The command `make explore DB=... PORT=0` runs (port 0: the OS picks a free port)."""
    printed = subprocess.run(
        ["make", "-s", "-n", "explore", f"DB={db}", "PORT=0", "HOST=127.0.0.1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    [line] = [line for line in printed.splitlines() if "shin-explore" in line]
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


def rows(client: httpx.Client, path: str, **params) -> list[dict]:
    response = client.get(path, params={**params, "_shape": "array"})
    assert response.status_code == 200, response.text
    return response.json()


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


def run_to_exit(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
