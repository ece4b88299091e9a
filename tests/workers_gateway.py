"""A `serve --workers N` gateway as a real process tree, and HTTP connections pinned to one
worker each (found through /proc), for the test_workers*.py tests."""

from __future__ import annotations

import http.client
import json
import re
import socket
import sqlite3
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .conftest import MASTER_KEY
from .processes import start, stop
from .workers_helpers import serving_pid, wait_for, worker_pids

_RUN_DIR = re.compile(r"run directory (\S+)\)")


def write_config(tmp_path: Path, upstream_url: str, **general: Any) -> Path:
    def model(name: str, upstream: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {"model": upstream, "api_base": upstream_url + "/v1",
                                                        "api_key": "sk-upstream"}}

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_list": [model("gpt-4o-mini", "openai/gpt-4o-mini"), model("slow", "openai/slow-4")],
        "general_settings": {"master_key": MASTER_KEY, "shutdown_grace": 2, **general},
    }))
    return path


@dataclass
class Workers:
    proc: subprocess.Popen
    url: str
    db: Path
    out: Path  # the supervisor's stdout/stderr (every process's console lines)
    log: Path  # gateway.log
    count: int
    conns: list[http.client.HTTPConnection] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def pids(self) -> dict[int, int]:
        return worker_pids(self.out)

    def run_dir(self) -> Path:
        match = _RUN_DIR.search(self.out.read_text(errors="replace"))
        assert match, "the supervisor names its run directory"
        return Path(match.group(1))

    def pinned(self, per_worker: int = 1) -> dict[int, list[http.client.HTTPConnection]]:
        """{pid: connections} with `per_worker` keep-alive connections accepted by each worker."""
        pids = list(self.pids().values())
        found: dict[int, list[http.client.HTTPConnection]] = {pid: [] for pid in pids}
        for _ in range(100 * len(pids) * per_worker):
            if all(len(c) >= per_worker for c in found.values()):
                return found
            sock = socket.create_connection(("127.0.0.1", self.port))
            client_port = sock.getsockname()[1]
            owner = wait_for(lambda p=client_port: serving_pid(pids, self.port, p), timeout=10)
            if len(found[owner]) >= per_worker:
                sock.close()
                continue
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.sock = sock
            found[owner].append(conn)
            self.conns.append(conn)
        raise AssertionError(f"could not reach every worker: {[(p, len(c)) for p, c in found.items()]}")

    def rows(self, sql: str = "SELECT * FROM request_log ORDER BY id", params: Any = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def row_count(self) -> int:
        return self.rows("SELECT count(*) AS n FROM request_log")[0]["n"] if self.db.exists() else 0

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.conns.clear()


def start_workers(tmp_path: Path, upstream_url: str, count: int, *extra: str, **general: Any) -> Workers:
    config = write_config(tmp_path, upstream_url, **general)
    db, log, out = tmp_path / "litellm.db", tmp_path / "gateway.log", tmp_path / "gw.out"
    proc, url = start(["proxy", "serve", "--config", str(config), "--port", "0", "--db", str(db),
                       "--log-file", str(log), "--workers", str(count), *extra], out, timeout=60)
    gateway = Workers(proc, url, db, out, log, count)
    try:
        wait_for(lambda: f"({count} workers, " in out.read_text(errors="replace"), timeout=60)
    except AssertionError:
        stop(proc)
        raise
    return gateway


def post(conn: http.client.HTTPConnection, model: str = "gpt-4o-mini", content: str = "hello", *,
         key: str = MASTER_KEY, send_only: bool = False, **body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    payload = json.dumps({"model": model, "messages": [{"role": "user", "content": content}], **body})
    conn.request("POST", "/v1/chat/completions", payload,
                 {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    if send_only:
        return 0, {}, {}
    return answer(conn)


def answer(conn: http.client.HTTPConnection) -> tuple[int, dict[str, Any], dict[str, str]]:
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, json.loads(data) if data else {}, dict(resp.headers)


def admin(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url + path, json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def scrape(conn: http.client.HTTPConnection) -> str:
    conn.request("GET", "/metrics")
    resp = conn.getresponse()
    assert resp.status == 200
    return resp.read().decode()


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of `name` (all label sets) in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total
