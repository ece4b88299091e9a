"""Site benchmark: `python -m sitegen build` on a 1,000,000-row, 90-day request log.

  python -m bench site [--rows 1000000] [--days 90] [--runs 3] [--no-write] [--quick]

The build runs with a config.yaml breaking down by two metadata keys (report.breakdowns:
project, tags) and a keys.db with budgets on the history's keys, as a team would run it.
--quick is the smoke run (50,000 rows, one build, nothing written to BENCHMARKS.md).

The database is generated once (proxy.history through the real LogWriter) into .bench/ and
reused. Each build runs as its own process (`python -m sitegen build`), so its wall time
includes interpreter start-up and imports, and its peak RSS (ru_maxrss from wait4) is the
build's alone. In the same run the bench times the bare SQL of every table (the same queries,
no rendering), for the ratio of build time to query time. Figures: the "Static site" section
of BENCHMARKS.md. Targets (issue 4): build <= 10 s, peak RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.mdsection import replace_section
from proxy.history import generate_history
from proxy.logdb.writer import LogWriter
from sitegen.data import Clock, Reader, open_readonly
from sitegen.plan import site_plan
from sitegen.sources import Sources

ROOT = Path(__file__).resolve().parent.parent
NOW = 1767225600 - 9 * 3600  # 2025-12-31 15:00 UTC: "today" has traffic
SECTION = "static-site"
BREAKDOWNS = ("project", "tags")
TABLES = site_plan(BREAKDOWNS).tables


def ensure_db(path: Path, rows: int, days: int) -> float | None:
    """Generate the database unless it exists with the right row count (and the history's
    request metadata, which older generators did not write); seconds taken."""
    if path.exists():
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            count, tagged = conn.execute(
                "SELECT COUNT(*), (SELECT COUNT(*) FROM (SELECT 1 FROM request_log "
                "WHERE metadata IS NOT NULL LIMIT 1)) FROM request_log").fetchone()
            if count == rows and (tagged or not rows):
                return None
        finally:
            conn.close()
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {rows:,} rows over {days} days into {path} ...", flush=True)
    started = time.perf_counter()
    writer = LogWriter(path, batch_size=5000, max_latency=0.5)
    writer.start()
    for i, record in enumerate(generate_history(days=days, rows=rows, seed=1, now=NOW - 60)):
        writer.submit(record)
        if i % 50_000 == 49_999:
            writer.wait_idle(120)  # bound the queue's memory
    writer.wait_idle(600)
    writer.stop()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")  # as a long-running gateway's optimize would have
    conn.close()
    return time.perf_counter() - started


def build_inputs(folder: Path) -> tuple[Path, Path]:
    """The config.yaml (breakdowns) and keys.db (budgets on the history's keys) builds use."""
    from proxy.admin.records import KeyRecord
    from proxy.admin.records.key import display_name
    from proxy.admin.store.sqlite import KeysDB
    from proxy.server.auth import hash_key

    config = folder / "config.yaml"
    config.write_text(f"report:\n  breakdowns: [{', '.join(BREAKDOWNS)}]\n"
                      "litellm_settings:\n  max_budget: 5000\n  budget_duration: 30d\n")
    keys = folder / "keys.db"
    if not keys.exists():
        store = KeysDB(keys)
        for alias in ("team-web", "team-data", "ci"):
            raw = f"sk-demo-{alias}"  # proxy.history's key hashes
            store.insert(KeyRecord(key_hash=hash_key(raw), key_name=display_name(raw),
                                   key_alias=alias, max_budget=1000.0, spend=100.0))
        store.close()
    return config, keys


def build_once(db: Path, out: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one `python -m sitegen build` process."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(NOW)}
    config, keys = build_inputs(out.parent)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitegen", "build", "--db", str(db), "--out", str(out), "-q",
         "--config", str(config), "--keys-db", str(keys)],
        cwd=out.parent, env=env,  # not ROOT: its config.yaml is not this benchmark's
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"build failed with exit code {proc.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def bare_sql(db: Path, keys: Path | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds to run every table's queries (and analyses), nothing else."""
    conn = open_readonly(db)
    try:
        sources = Sources(keys_db=keys, gateway_max_budget=5000.0, gateway_budget_duration="30d",
                          breakdowns=BREAKDOWNS)
        reader = Reader(conn, Clock(datetime.fromtimestamp(NOW, UTC)), sources=sources)
        started, cpu = time.perf_counter(), time.process_time()
        reader.extent()
        for spec in TABLES:
            reader.table(spec)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None, help="default: .bench/site-<rows>.db")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 50,000 rows over 30 days, one build, no BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.days, args.runs, args.no_write = 50_000, 30, 1, True

    db = args.db or ROOT / ".bench" / f"site-{args.rows}-{args.days}d.db"
    generated = ensure_db(db, args.rows, args.days)
    size_mb = db.stat().st_size / 1e6
    bare_sql(db)  # warm the page cache so builds and bare SQL see the same disk state

    builds, cpus, peaks, sqls, sql_cpus = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="site-bench-", dir=ROOT / ".bench") as tmp:
        for run in range(args.runs):
            seconds, cpu, peak = build_once(db, Path(tmp) / "public")
            sql, sql_cpu = bare_sql(db, Path(tmp) / "keys.db")
            builds.append(seconds)
            cpus.append(cpu)
            peaks.append(peak)
            sqls.append(sql)
            sql_cpus.append(sql_cpu)
            print(f"run {run + 1}: build {seconds:.2f} s ({cpu:.2f} s CPU), peak RSS "
                  f"{peak:.0f} MB, bare SQL {sql:.2f} s ({sql_cpu:.2f} s CPU)", flush=True)
        files = sum(1 for p in (Path(tmp) / "public").rglob("*") if p.is_file())

    build_s, sql_s, peak_mb = statistics.median(builds), statistics.median(sqls), max(peaks)
    build_cpu, sql_cpu = statistics.median(cpus), statistics.median(sql_cpus)
    load = os.getloadavg()[0]
    text = f"""## Static site

`python -m bench site`: `python -m sitegen build` (a fresh process each run: start-up,
imports, queries, charts, pages, data files, atomic publish) on a generated
{args.rows:,}-row, {args.days}-day request log ({size_mb:.0f} MB, proxy.history, seed 1),
median of {args.runs} runs; peak RSS is the build process's ru_maxrss. The build breaks down
by report.breakdowns [{", ".join(BREAKDOWNS)}] and reads budgets from a keys.db of three keys.
The bare SQL time runs the same {len(TABLES)} tables' queries and analyses in the same run,
with nothing else.

| measure | value | target |
| --- | --- | --- |
| build (wall) | {build_s:.2f} s | <= 10 s |
| build (CPU, user + system) | {build_cpu:.2f} s | |
| peak RSS | {peak_mb:.0f} MB | <= 300 MB |
| bare SQL aggregates (wall) | {sql_s:.2f} s | |
| bare SQL aggregates (CPU) | {sql_cpu:.2f} s | |
| build / bare SQL (wall) | {build_s / sql_s:.2f}x | |
| files written | {files} | |

Runs: {", ".join(f"{b:.2f} s" for b in builds)}. Machine: {platform.machine()}, \
{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version};
1-minute load average {load:.1f} at the end (other work on the machine inflates wall times).
{"Database generated in " + f"{generated:.0f} s this run." if generated else "Database reused from .bench/."}
"""
    print(text)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, text)
        print("wrote the Static site section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
