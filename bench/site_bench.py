"""Site benchmark: `python -m sitegen build` on 1M- and 5M-row, 90-day request logs.

  python -m bench site [--rows 1000000,5000000] [--days 90] [--runs 3] [--no-write] [--quick]
                       [--no-datasette]

For each size (bench/bulk_log.py makes the log once into .bench/, with its rollups; later runs
reuse it), each run copies the log and times three builds on the copy:
- cold: an empty report cache (the build reads the rollups and the raw rows of what the cache
  keeps itself, and fills the cache; the first build on a log, or after deleting the cache);
- warm: the same build again, nothing logged since;
- rebuild: 10,000 new rows logged (one insert each, through the rollup trigger, as the gateway
  writes them) in the ten minutes before a clock ten minutes on, then a build with the cache.
Each build is its own process (`python -m sitegen build`: start-up, imports, queries, charts,
pages, data files, atomic publish): wall and CPU time, peak RSS (ru_maxrss from wait4). The
builds break down by report.breakdowns [project, tags] and read budgets from a keys.db of three
keys, as a team runs it. Then Datasette's canned queries on the largest log
(bench/site_canned.py). --quick: 50,000 rows over 30 days, one run, nothing written.

Targets: a 1M-row build within 10 s (issue 4, kept by issue 15), 5M rows in under 5 s and a
rebuild after 10,000 new rows in under 2 s (issue 13), peak RSS <= 300 MB. Figures: the
"Static site" section of BENCHMARKS.md, written only by a full run without --no-write.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.bulk_log import bulk_log
from bench.mdsection import replace_section
from proxy.logdb.record import utc_timestamp
from proxy.logdb.schema import INSERT_REQUEST_SQL, LOG_COLUMNS, connect_writer

ROOT = Path(__file__).resolve().parent.parent
NOW = 1767225600 - 9 * 3600  # 2025-12-31 15:00 UTC: the logs end here, "today" has traffic
SECTION = "static-site"
BREAKDOWNS = ("project", "tags")
NEW_ROWS = 10_000


def ensure_db(path: Path, rows: int, days: int) -> float | None:
    """A bulk log of exactly `rows` rows with rollups (runs work on copies, so it stays as made;
    a log that grew, e.g. under an older bench that added its new rows in place, is made
    again); seconds taken to make it, None when reused."""
    if path.exists():
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            count = conn.execute("SELECT MAX(id) FROM request_log").fetchone()[0] or 0
            if "rollup_hourly" in tables and count == rows:
                return None
        finally:
            conn.close()
    print(f"making a {rows:,}-row, {days}-day log in {path} (bench/bulk_log.py) ...", flush=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    return bulk_log(path, rows=rows, days=days, now=NOW - 60)


def last_moment(db: Path) -> float:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        last = conn.execute("SELECT MAX(timestamp) FROM request_log").fetchone()[0]
    finally:
        conn.close()
    return datetime.strptime(last, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def log_new_rows(db: Path, until: float, count: int = NEW_ROWS) -> None:
    """`count` rows like the newest ones, logged over the ten minutes before `until`."""
    conn = connect_writer(db)
    try:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute(
            f"SELECT {', '.join(LOG_COLUMNS)} FROM request_log ORDER BY id DESC LIMIT ?", (count,))]
        tag = f"{until:.0f}"
        for i, row in enumerate(rows):
            row["timestamp"] = utc_timestamp(until - 600 + i * 600 / len(rows))
            row["request_id"] = f"bench-new-{tag}-{i}"
        conn.execute("BEGIN")
        conn.executemany(INSERT_REQUEST_SQL, rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


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


def build_once(db: Path, folder: Path, now: float) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one `python -m sitegen build` process,
    with the report cache in folder/cache."""
    config, keys = build_inputs(folder)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(int(now))}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitegen", "build", "--db", str(db), "--out", str(folder / "public"),
         "-q", "--config", str(config), "--keys-db", str(keys), "--cache-dir", str(folder / "cache")],
        cwd=folder, env=env,  # not ROOT: its config.yaml is not this benchmark's
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"build failed with exit code {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def bench_size(base: Path, runs: int) -> dict[str, object]:
    """cold / warm / rebuild timings (each a list over runs) for one log. Each run builds on a
    fresh copy of the log, so every run's rebuild reads the same 10,000 new rows (in place,
    they would pile up run after run in the log's last hours)."""
    found: dict[str, list[tuple[float, float, float]]] = {"cold": [], "warm": [], "rebuild": []}
    with tempfile.TemporaryDirectory(prefix="site-bench-", dir=ROOT / ".bench") as tmp:
        folder = Path(tmp)
        db = folder / "litellm.db"
        for run in range(runs):
            shutil.rmtree(folder / "cache", ignore_errors=True)
            shutil.copyfile(base, db)
            now = max(NOW, last_moment(db) + 60)
            found["cold"].append(build_once(db, folder, now))
            found["warm"].append(build_once(db, folder, now))
            log_new_rows(db, now + 600)
            found["rebuild"].append(build_once(db, folder, now + 600))
            line = ", ".join(f"{k} {v[-1][0]:.2f} s ({v[-1][1]:.2f} s CPU)" for k, v in found.items())
            print(f"  run {run + 1}: {line}", flush=True)
        files = sum(1 for p in (folder / "public").rglob("*") if p.is_file())
        cache_mb = sum(p.stat().st_size for p in (folder / "cache").glob("*")) / 1e6
    return {"found": found, "files": files, "cache_mb": cache_mb}


def _cell(runs: list[tuple[float, float, float]]) -> str:
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    return f"{wall:.2f} s ({cpu:.2f} s CPU)"


def _target(what: str, seconds: float, limit: float) -> str:
    return f"| {what} | {seconds:.2f} s | {'met' if seconds < limit else '**missed**'} |"


def report(sizes: list[tuple[int, float, dict[str, object]]], days: int, runs: int,
           canned: str) -> str:
    lines = [
        "## Static site", "",
        f"`python -m bench site`: `python -m sitegen build` (a fresh process each time: start-up, "
        f"imports, queries, charts, pages, data files, atomic publish) on bench/bulk_log.py logs "
        f"over {days} days (with the gateway's rollups), median of {runs} runs, breaking down by "
        f"report.breakdowns [{', '.join(BREAKDOWNS)}] with budgets from a keys.db. Cold: empty "
        "report cache (it fills it); warm: again, nothing new; rebuild: after "
        f"{NEW_ROWS:,} new rows, the clock ten minutes on.", "",
        "| log | cold build | warm build | rebuild after 10,000 rows | peak RSS | cache | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rows, size_mb, s in sizes:
        found = s["found"]
        peak = max(r[2] for v in found.values() for r in v)  # type: ignore[attr-defined]
        target = ("<= 10 s" if rows <= 1_000_000 else "< 5 s; rebuild < 2 s")
        lines.append(f"| {rows:,} rows ({size_mb:,.0f} MB) | {_cell(found['cold'])} | "  # type: ignore[index]
                     f"{_cell(found['warm'])} | {_cell(found['rebuild'])} | {peak:.0f} MB | "  # type: ignore[index]
                     f"{s['cache_mb']:.0f} MB | {target} |")
    lines += ["", "| target | measured | |", "| --- | --- | --- |"]
    for rows, _, s in sizes:
        found = s["found"]  # type: ignore[assignment]
        cold, warm, rebuild = (statistics.median(r[0] for r in found[k])  # type: ignore[index]
                               for k in ("cold", "warm", "rebuild"))
        if rows <= 1_000_000:
            lines.append(_target(f"{rows:,}-row build <= 10 s (the first, cold)", cold, 10.0))
        else:
            lines.append(_target(f"{rows:,}-row build < 5 s (with the report cache)", warm, 5.0))
            lines.append(_target(f"{rows:,}-row first build (empty cache) < 5 s", cold, 5.0))
            lines.append(_target(f"{rows:,} rows: rebuild after {NEW_ROWS:,} new rows < 2 s",
                                 rebuild, 2.0))
    peak = max(r[2] for _, _, s in sizes for v in s["found"].values() for r in v)  # type: ignore[attr-defined]
    lines.append(f"| peak RSS <= 300 MB | {peak:.0f} MB | {'met' if peak <= 300 else '**missed**'} |")
    lines += ["", f"Files written: {sizes[-1][2]['files']}. Machine: {platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite "
              f"{sqlite3.sqlite_version}; 1-minute load average {os.getloadavg()[0]:.1f} at the end.",
              ""]
    return "\n".join(lines) + canned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,5000000", help="log sizes, comma-separated")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    parser.add_argument("--no-datasette", action="store_true", help="skip the canned queries")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 50,000 rows over 30 days, one run, no BENCHMARKS.md")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.rows.split(",")]
    if args.quick:
        sizes, args.days, args.runs, args.no_write = [50_000], 30, 1, True
    (ROOT / ".bench").mkdir(exist_ok=True)
    results = []
    for rows in sizes:
        db = ROOT / ".bench" / f"bulk-{rows}-{args.days}d.db"
        ensure_db(db, rows, args.days)
        print(f"{rows:,} rows ({db.stat().st_size / 1e6:,.0f} MB):", flush=True)
        results.append((rows, db.stat().st_size / 1e6, bench_size(db, args.runs)))
    canned = ""
    if not args.no_datasette:
        from bench.site_canned import canned_queries

        largest = ROOT / ".bench" / f"bulk-{sizes[-1]}-{args.days}d.db"
        canned = canned_queries(largest, last_moment(largest))
    text = report(results, args.days, args.runs, canned)
    print(text)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, text)
        print("wrote the Static site section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
