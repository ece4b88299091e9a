"""Rollups and merge benchmark (issue 13).

  python -m bench rollups [--quick] [--rows 1000000,5000000] [--no-write]

1. The rollup trigger's cost on the gateway's writer: the real LogWriter writing the same
   generated rows into a fresh log with the trigger and into one without it (dropped), runs
   alternated; rows per second of each and the cost per row.
2. Merge throughput: two shards (bench/bulk_log.py) merged into a fresh report.db with
   `python -m proxy merge`'s code, then the same merge again (nothing new), then again after
   10,000 new rows on one shard.
3. Datasette's canned `latency_percentiles?days=90` (read from the rollup histogram) at each
   --rows size, through `make explore`'s own command on a free port: median of 5 requests after
   a warm-up; `latency_percentiles_exact` (raw rows) once at the smallest size for comparison.
   Target: under 1 s at 5M rows.

Databases are generated into .bench/ and reused. --quick is a smoke run with small sizes that
never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.bulk_log import bulk_log
from bench.mdsection import replace_section
from bench.procs import free_port, start, wait_ready
from proxy.history import generate_history
from proxy.logdb.record import RequestRecord
from proxy.logdb.writer import LogWriter
from proxy.ops.merge import merge_logs

ROOT = Path(__file__).resolve().parent.parent
SECTION = "rollups"
WORK = ROOT / ".bench"


# -- 1. the trigger's cost on the writer ----------------------------------------------------------


def _write(path: Path, records: list[RequestRecord], *, trigger: bool) -> float:
    """Rows per second of the real LogWriter into a fresh log (with or without the trigger)."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    if not trigger:
        writer = LogWriter(path)
        writer.start()  # creates and migrates the file
        writer.stop()
        conn = sqlite3.connect(path)
        conn.execute("DROP TRIGGER request_log_rollup")
        conn.close()
    writer = LogWriter(path, batch_size=500)
    writer.start()
    started = time.perf_counter()
    writer.submit_many(records)
    if not writer.wait_idle(600):
        raise SystemExit("the writer did not finish")
    seconds = time.perf_counter() - started
    writer.stop()
    return len(records) / seconds


def writer_cost(rows: int, runs: int) -> dict[str, float]:
    records = list(generate_history(days=7, rows=rows, seed=3))
    with_trigger, without = [], []
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        for _ in range(runs):
            without.append(_write(Path(tmp) / "off.db", records, trigger=False))
            with_trigger.append(_write(Path(tmp) / "on.db", records, trigger=True))
    on, off = statistics.median(with_trigger), statistics.median(without)
    return {"rows": rows, "on": on, "off": off, "us_per_row": (1 / on - 1 / off) * 1e6}


# -- 2. merge throughput ----------------------------------------------------------------------------


def merge_throughput(rows: int) -> dict[str, float]:
    shard_a, shard_b = WORK / f"shard-a-{rows}.db", WORK / f"shard-b-{rows}.db"
    bulk_log(shard_a, rows=rows, days=30, seed=4)
    bulk_log(shard_b, rows=rows, days=30, seed=5)
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        report = Path(tmp) / "report.db"
        started = time.perf_counter()
        first = merge_logs(report, [("a", shard_a), ("b", shard_b)])
        full = time.perf_counter() - started
        started = time.perf_counter()
        merge_logs(report, [("a", shard_a), ("b", shard_b)])
        again = time.perf_counter() - started
        extra = Path(tmp) / "a-plus.db"
        subprocess.run(["cp", str(shard_a), str(extra)], check=True)
        writer = LogWriter(extra, batch_size=5000)
        writer.start()
        writer.submit_many(generate_history(days=1, rows=10_000, seed=6))
        writer.wait_idle(300)
        writer.stop()
        started = time.perf_counter()
        more = merge_logs(report, [("a", extra), ("b", shard_b)])
        incremental = time.perf_counter() - started
    return {"rows": first.copied, "full": full, "rate": first.copied / full, "again": again,
            "incremental": incremental, "incremental_rows": more.copied}


# -- 3. Datasette's latency_percentiles over 90 days --------------------------------------------------


def _explore_argv(db: Path, port: int) -> list[str]:
    printed = subprocess.run(["make", "-s", "-n", "explore", f"DB={db}", f"PORT={port}", "HOST=127.0.0.1"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    [line] = [line for line in printed.replace("\\\n", " ").splitlines() if "shin-explore" in line]
    return shlex.split(line)


def _get_seconds(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"{url}: HTTP {response.status}")
    return time.perf_counter() - started


def datasette_percentiles(rows: int, *, exact: bool) -> dict[str, float]:
    folder = WORK / f"rollups-{rows}"
    db = folder / "litellm.db"
    generated = bulk_log(db, rows=rows, days=90, seed=1)
    port = free_port()
    service = start("datasette", _explore_argv(db, port), folder / "datasette.log", cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(service, f"{base}/-/versions.json")
        url = f"{base}/litellm/latency_percentiles.json?days=90&_shape=array"
        _get_seconds(url)
        times = [_get_seconds(url) for _ in range(5)]
        found = {"rows": rows, "generated": generated, "median": statistics.median(times),
                 "max": max(times), "size_mb": db.stat().st_size / 1e6}
        if exact:
            try:
                found["exact"] = _get_seconds(url.replace("latency_percentiles.json", "latency_percentiles_exact.json"))
            except OSError:  # Datasette's 10 s limit: slower than that
                found["exact"] = float("inf")
        return found
    finally:
        service.stop()


def _report(writer: dict, merge: dict, datasette: list[dict]) -> str:
    lines = [
        "## Rollups and merge",
        "",
        "`python -m bench rollups` (issue 13). Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; 1-minute load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| writer, rollup trigger on ({writer['rows']:,} rows, LogWriter) | {writer['on']:,.0f} rows/s | |",
        f"| writer, trigger dropped | {writer['off']:,.0f} rows/s | |",
        f"| trigger cost per row | {writer['us_per_row']:.0f} µs | |",
        f"| merge, 2 shards into a new report.db | {merge['rate']:,.0f} rows/s "
        f"({merge['rows']:,} rows in {merge['full']:.1f} s) | |",
        f"| merge again, nothing new | {merge['again']:.2f} s | |",
        f"| merge after {merge['incremental_rows']:,} new rows | {merge['incremental']:.2f} s | |",
    ]
    for d in datasette:
        lines.append(f"| Datasette latency_percentiles?days=90, {d['rows']:,} rows ({d['size_mb']:,.0f} MB) "
                     f"| {d['median']:.3f} s (max {d['max']:.3f}) | < 1 s at 5M |")
        if "exact" in d:
            lines.append(f"| same, latency_percentiles_exact (raw rows), {d['rows']:,} rows | "
                         f"{d['exact']:.2f} s | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench rollups", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, never writes")
    parser.add_argument("--rows", default="1000000,5000000", help="Datasette log sizes, comma-separated")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)
    WORK.mkdir(exist_ok=True)
    sizes = [20_000] if args.quick else [int(n) for n in args.rows.split(",")]

    writer = writer_cost(5_000 if args.quick else 100_000, 1 if args.quick else 3)
    print(f"writer: {writer['on']:,.0f} rows/s with the trigger, {writer['off']:,.0f} without "
          f"({writer['us_per_row']:.0f} µs per row)", flush=True)
    merge = merge_throughput(5_000 if args.quick else 500_000)
    print(f"merge: {merge['rate']:,.0f} rows/s ({merge['rows']:,} rows in {merge['full']:.1f} s); "
          f"again {merge['again']:.2f} s; +{merge['incremental_rows']:,} rows {merge['incremental']:.2f} s",
          flush=True)
    datasette = []
    for i, rows in enumerate(sizes):
        found = datasette_percentiles(rows, exact=i == 0)
        datasette.append(found)
        print(f"datasette latency_percentiles?days=90 at {rows:,} rows: {found['median']:.3f} s median"
              + (f"; exact from raw rows {found['exact']:.2f} s" if "exact" in found else ""), flush=True)
    text = _report(writer, merge, datasette)
    print(text)
    if not args.quick and not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
