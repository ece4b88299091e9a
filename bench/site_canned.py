"""Datasette's canned queries (datasette/metadata.yml) on a big log, as `make explore` serves it.

Each query runs through Datasette's JSON API once to warm up, then three times; the median is
reported, or "over the limit" when Datasette stops it (sql_time_limit_ms, 10 s in
sitegen/explore.py). The canned queries count back from SQLite's 'now'; the bench logs end on a
fixed day, so :days is stretched by the days since then (a 7-day query still reads the log's
last 7 days). Queries over "today" (DATE('now')) find no rows in such a log: marked so.
"""

from __future__ import annotations

import json
import re
import shlex
import statistics
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from bench.procs import free_port, start, wait_ready

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DAYS = re.compile(r"NULLIF\(:days, ''\), (\d+)\)")
PARAMS = {"key": "project"}  # the breakdown queries' metadata key


def explore_argv(db: Path, port: int) -> list[str]:
    printed = subprocess.run(["make", "-s", "-n", "explore", f"DB={db}", f"PORT={port}",
                              "HOST=127.0.0.1"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    [line] = [line for line in printed.replace("\\\n", " ").splitlines() if "shin-explore" in line]
    return shlex.split(line)


def _get(url: str) -> float | None:
    """Seconds to answer, or None when Datasette refused (its time limit, an error)."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            json.loads(response.read())
    except urllib.error.HTTPError:
        return None
    return time.perf_counter() - started


def canned_queries(db: Path, data_end: float) -> str:
    """A markdown table: each canned query's median time on `db`, slowest first."""
    queries = yaml.safe_load((ROOT / "datasette" / "metadata.yml").read_text())
    canned = queries["databases"]["litellm"]["queries"]
    shift = max(0.0, (time.time() - data_end) / 86400)
    port = free_port()
    service = start("datasette", explore_argv(db, port), db.parent / "datasette-canned.log", cwd=ROOT)
    results = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(service, f"{base}/-/versions.json")
        for name, query in canned.items():
            params: dict[str, object] = {"_shape": "array"}
            nominal = DEFAULT_DAYS.search(query["sql"])
            if "days" in query.get("params", []) and nominal:
                params["days"] = round(int(nominal.group(1)) + shift, 3)
            for param in query.get("params", []):
                if param in PARAMS:
                    params[param] = PARAMS[param]
            url = f"{base}/{db.stem}/{name}.json?{urllib.parse.urlencode(params)}"
            first = _get(url)
            times = [t for t in (_get(url) for _ in range(3)) if t is not None] if first else []
            today = "DATE('now')" in query["sql"]
            results.append((name, statistics.median(times) if times else None, today))
            print(f"  canned {name}: " + (f"{results[-1][1]:.3f} s" if times else "over the limit"),
                  flush=True)
    finally:
        service.stop()
    lines = ["", f"Datasette's canned queries on the {db.stat().st_size / 1e6:,.0f} MB log "
             "(`make explore`'s command; median of 3 after a warm-up; :days stretched to reach "
             "the log's last days), slowest first:", "", "| canned query | time | note |",
             "| --- | --- | --- |"]
    for name, seconds, today in sorted(results, key=lambda r: -(r[1] or float("inf"))):
        shown = "over the 10 s limit" if seconds is None else f"{seconds:.3f} s"
        note = "today: no rows in this log" if today else ("slow" if seconds is None or seconds > 1 else "")
        lines.append(f"| {name} | {shown} | {note} |")
    return "\n".join(lines) + "\n"
