"""The demo from start to finish; `python -m proxy.demo --help` for the options."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import OperationError
from . import scenario
from .processes import Processes, free_port
from .traffic import run_traffic

#: What a previous run left in the demo folder (and nothing else is ever deleted).
OWN_FILES = ("config.yaml", "gateway.log", "upstream.out", "gateway.out")


@dataclass(frozen=True)
class DemoOptions:
    folder: Path = Path("demo")
    db: Path | None = None  # default: <folder>/litellm.db
    days: int = 30
    rows: int = 20_000
    requests: int = 300
    concurrency: int = 8
    host: str = "127.0.0.1"

    @property
    def db_path(self) -> Path:
        return self.db or self.folder / "litellm.db"


def say(message: str) -> None:
    print(message, flush=True)


def run_demo(options: DemoOptions) -> dict[str, object]:
    started = time.monotonic()
    folder, db = options.folder, options.db_path
    keys_db, log_file = folder / "keys.db", folder / "gateway.log"
    _reset(folder, db)
    history = scenario.history(options.days, options.rows, time.time())
    master_key = scenario.new_master_key()

    with Processes(folder) as children:
        upstream_port, gateway_port = free_port(options.host), free_port(options.host)
        upstream = f"http://{options.host}:{upstream_port}"
        children.start("upstream", ["proxy.fake_upstream", "--host", options.host, "--port", str(upstream_port),
                                    "--latency", "0.02", "--chunk-delay", "0.003", "--error-rate", "0.01"],
                       upstream, "/v1/models")
        say(f"fake upstream   {upstream}")
        config_path = folder / "config.yaml"
        scenario.write_config(config_path, scenario.demo_config(upstream + "/v1", db, keys_db, log_file, master_key))
        gateway = f"http://{options.host}:{gateway_port}"
        children.start("gateway", ["proxy", "serve", "--config", str(config_path), "--host", options.host,
                                   "--port", str(gateway_port), "--db", str(db), "--keys-db", str(keys_db)],
                       gateway, "/health")
        say(f"gateway         {gateway}  (log: {log_file})")

        raw_keys = scenario.create_keys(gateway, master_key, scenario.spend_by_alias(history))
        if raw_keys is None:
            say("virtual keys    skipped: this gateway has no POST /key/generate; traffic uses the master key")
        else:
            say(f"virtual keys    {', '.join(raw_keys)} (POST /key/generate; stored hashed in {keys_db})")

        written = scenario.write_history(db, history, raw_keys)
        say(f"history         {written:,} rows over {options.days} days (through LogWriter)")

        outcomes = asyncio.run(run_traffic(gateway, master_key, raw_keys, options.requests,
                                           concurrency=options.concurrency))
        say(f"live traffic    {options.requests} requests with the openai SDK: {_outcomes(outcomes)}")
        health = _get_json(gateway + "/health")
        spend = _get_json(gateway + "/spend/info", master_key)
    # Every child has stopped here; the gateway flushed its rows on SIGTERM.
    summary = _summary(db)
    summary.update(health_status=health.get("status") if health else None,
                   spend_info=spend, outcomes=dict(outcomes), seconds=round(time.monotonic() - started, 1),
                   gateway=gateway, upstream=upstream, keys=sorted(raw_keys or {}))
    say(f"request log     {db}: {summary['rows']:,} rows, ${summary['cost']:.2f}, "
        f"{summary['failed']:,} failed, {summary['today']:,} today")
    say(f"done in {summary['seconds']}s; every process the demo started has stopped")
    return summary


def _reset(folder: Path, db: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    inside = db.resolve().parent == folder.resolve()
    if db.exists() and not inside:
        raise OperationError(f"{db} exists outside the demo folder {folder}; the demo will not replace it "
                             "(delete it yourself or choose another --db)")
    for name in OWN_FILES:
        (folder / name).unlink(missing_ok=True)
    for base in (db, folder / "keys.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{base}{suffix}").unlink(missing_ok=True)
    for rotated in folder.glob("gateway.log.*"):
        rotated.unlink()


def _outcomes(outcomes: Counter[str]) -> str:
    return ", ".join(f"{count} × {status}" for status, count in sorted(outcomes.items()))


def _get_json(url: str, key: str | None = None) -> dict[str, object] | None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def _summary(db: Path) -> dict[str, object]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows, cost, failed, today = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(cost), 0), SUM(status_code >= 400), "
            "SUM(DATE(timestamp) = DATE('now')) FROM request_log").fetchone()
    finally:
        conn.close()
    return {"rows": rows, "cost": cost, "failed": failed or 0, "today": today or 0}
