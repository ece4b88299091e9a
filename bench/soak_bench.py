"""The soak benchmark: does every accepted request end up as exactly one row, under load,
through upstream failures, client hang-ups and a SIGTERM at the end?

Real processes: the fake upstream (1 % of answers HTTP 500, streams of 12 chunks), the
gateway (`python -m proxy serve`, a fresh log, gateway.log) and the client (bench/soak_load.py):
50,000 chat completions at concurrency 200, a third streamed, 1 % abandoned by the client.
When all but the last `concurrency` requests are done, the gateway gets SIGTERM (requests are
in flight); it must exit 0 within its grace. Then:
- rows logged = requests the gateway accepted: every answered request has exactly one row
  (matched by its `user` tag), every hang-up the gateway saw has one, none has two;
- unhandled errors in gateway.log (ERROR lines not about a request, tracebacks): 0;
- the gateway's RSS at start, after warm-up (10 % of the requests) and at the end;
- p99 added latency: what the gateway logs as its own time (latency − upstream_latency) for
  answered non-streamed requests, and the client's p50/p99 beside it.

  python -m bench soak                   # 50,000 requests, figures into BENCHMARKS.md
  python -m bench soak --quick --no-write
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .mdsection import replace_section
from .procs import BenchError, Service, free_port, start, stop_all, wait_ready
from .proxy_report import machine, percentile

ROOT = Path(__file__).resolve().parent.parent
SECTION = "gateway-soak"
MODEL = "gpt-4o-mini"
MASTER_KEY = "sk-bench-master"
GRACE = 15.0
FULL = {"requests": 50_000, "concurrency": 200}
QUICK = {"requests": 2_000, "concurrency": 50}
# An ERROR line that is not a request's own access line (those are 5xx answers, by design).
UNHANDLED = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) (?!proxy\.access)|Traceback|Logging error", re.M)


def _config(upstream_port: int) -> str:
    return json.dumps({
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": f"http://127.0.0.1:{upstream_port}/v1",
            "api_key": "sk-fake-upstream"}}],
        "general_settings": {"master_key": MASTER_KEY, "shutdown_grace": GRACE},
    })


def soak(requests: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    upstream_port, port = free_port(), free_port()
    upstream = start("fake upstream", [
        sys.executable, "-m", "proxy.fake_upstream", "--port", str(upstream_port), "--latency", "0.02",
        "--chunk-delay", "0.005", "--stream-chunks", "12", "--error-rate", "0.01",
    ], workdir / "upstream.log", cwd=ROOT)
    services: list[Service] = [upstream]
    try:
        wait_ready(upstream, f"http://127.0.0.1:{upstream_port}/v1/models")
        config, db, log = workdir / "config.yaml", workdir / "litellm.db", workdir / "gateway.log"
        config.write_text(_config(upstream_port))
        gateway = start("gateway", [sys.executable, "-m", "proxy", "serve", "--config", str(config),
                                    "--port", str(port), "--db", str(db), "--log-file", str(log)],
                        workdir / "gateway.stderr", cwd=ROOT)
        services.append(gateway)
        wait_ready(gateway, f"http://127.0.0.1:{port}/health")
        run = _drive(gateway, port, requests, concurrency)
        return {**run, **_rows(db), "unhandled": UNHANDLED.findall(log.read_text(errors="replace")),
                "requests": requests, "concurrency": concurrency}
    finally:
        stop_all(services)


def _drive(gateway: Service, port: int, requests: int, concurrency: int) -> dict[str, Any]:
    job = {"url": f"http://127.0.0.1:{port}/v1/chat/completions", "model": MODEL,
           "headers": {"Authorization": f"Bearer {MASTER_KEY}"}, "requests": requests,
           "concurrency": concurrency, "stream_every": 3, "hangup_every": 100,
           # Several progress lines within the last `concurrency` requests: SIGTERM lands
           # while they are in flight.
           "progress_every": max(1, min(requests // 100, concurrency // 4))}
    client = subprocess.Popen([sys.executable, "-m", "bench.soak_load"], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert client.stdin and client.stdout
    client.stdin.write(json.dumps(job) + "\n")
    client.stdin.close()
    rss = {"start": gateway.rss_bytes()}
    signalled_at: float | None = None
    result: dict[str, Any] | None = None
    for line in client.stdout:
        message = json.loads(line)
        if "progress" not in message:
            result = message
            continue
        done = message["progress"]
        print(f"  {done:>7,} requests done, gateway RSS {gateway.rss_bytes() / 2**20:.0f} MB", flush=True)
        if "warm" not in rss and done >= requests // 10:
            rss["warm"] = gateway.rss_bytes()
        if signalled_at is None and done >= requests - concurrency:
            rss["end"] = gateway.rss_bytes()
            gateway.process.send_signal(signal.SIGTERM)  # the last requests are in flight
            signalled_at = time.monotonic()
    client.wait(60)
    if result is None:
        raise BenchError(f"the soak client exited with {client.returncode} and no result")
    if signalled_at is None:  # fewer progress lines than expected: stop it now
        rss["end"] = gateway.rss_bytes()
        gateway.process.send_signal(signal.SIGTERM)
        signalled_at = time.monotonic()
    try:
        code = gateway.process.wait(GRACE + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the gateway did not exit within {GRACE + 30:g}s of SIGTERM") from None
    return {**result, "rss": rss, "exit_code": code, "shutdown_seconds": time.monotonic() - signalled_at}


def _rows(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        users = Counter(u for (u,) in conn.execute("SELECT user_id FROM request_log"))
        overhead = [v for (v,) in conn.execute(
            "SELECT latency - upstream_latency FROM request_log WHERE status_code = 200 AND stream = 0 "
            "AND upstream_latency IS NOT NULL")]
        statuses = dict(conn.execute("SELECT status_code, COUNT(*) FROM request_log GROUP BY 1"))
    finally:
        conn.close()
    return {"row_users": users, "overhead": overhead, "row_statuses": statuses}


def check(result: dict[str, Any]) -> dict[str, Any]:
    """The invariants, from the client's outcomes and the gateway's rows."""
    outcomes: list[str] = result["outcomes"]
    users: Counter[str] = result["row_users"]
    answered = [i for i, o in enumerate(outcomes) if o.startswith("status:")]
    hangups = [i for i, o in enumerate(outcomes) if o == "hangup"]
    errors = [i for i, o in enumerate(outcomes) if o.startswith("error:")]
    tags = {f"soak-{i}" for i in range(len(outcomes))}
    answered_missing = sum(1 for i in answered if users[f"soak-{i}"] != 1)
    return {
        "answered": len(answered),
        "hangups": len(hangups),
        "hangups_logged": sum(1 for i in hangups if users[f"soak-{i}"] == 1),
        "errors": Counter(outcomes[i] for i in errors),
        "errors_logged": sum(1 for i in errors if users[f"soak-{i}"] == 1),
        "rows": sum(users.values()),
        "answered_missing": answered_missing,
        "duplicates": sum(1 for n in users.values() if n > 1),
        "strangers": sum(n for u, n in users.items() if u not in tags),
        "statuses": Counter(o for o in outcomes if o.startswith("status:")),
    }


def render(result: dict[str, Any], verdict: dict[str, Any], quick: bool) -> tuple[str, bool]:
    accepted = verdict["answered"] + verdict["hangups_logged"] + verdict["errors_logged"]
    rows_ok = (verdict["rows"] == accepted and verdict["answered_missing"] == 0
               and verdict["duplicates"] == 0 and verdict["strangers"] == 0)
    ok = rows_ok and not result["unhandled"] and result["exit_code"] == 0
    mb = {k: f"{v / 2**20:.0f} MB" for k, v in result["rss"].items()}
    latencies = result["latencies"]
    lines = [
        "## Gateway soak", "",
        f"`python -m bench soak{' --quick' if quick else ''}`: {result['requests']:,} chat completions at "
        f"concurrency {result['concurrency']} through the real gateway and fake upstream (a third "
        "streamed, 1 % upstream HTTP 500, 1 % abandoned by the client), SIGTERM with the last "
        f"requests in flight; {result['elapsed']:.0f} s of load.", "",
        "| measure | value | target |", "| --- | --- | --- |",
        f"| rows logged | {verdict['rows']:,} | = accepted |",
        f"| requests accepted (answered + hang-ups and errors the gateway saw) | {accepted:,} | |",
        f"| answered without exactly one row | {verdict['answered_missing']} | 0 |",
        f"| rows logged twice | {verdict['duplicates']} | 0 |",
        f"| client hang-ups (logged) | {verdict['hangups']} ({verdict['hangups_logged']}) | |",
        f"| client errors, e.g. refused after SIGTERM (logged) | {sum(verdict['errors'].values())} "
        f"({verdict['errors_logged']}) | |",
        f"| unhandled errors in gateway.log | {len(result['unhandled'])} | 0 |",
        f"| exit code after SIGTERM, seconds to exit | {result['exit_code']}, {result['shutdown_seconds']:.1f} s "
        f"| 0, <= {GRACE + 10:g} s |",
        f"| gateway RSS: start / after warm-up / end | {mb.get('start')} / {mb.get('warm')} / {mb.get('end')} "
        "| flat after warm-up |",
        f"| added latency p50 / p99 (logged latency − upstream_latency) | "
        f"{percentile(result['overhead'], 50) * 1000:.2f} / {percentile(result['overhead'], 99) * 1000:.2f} ms | |",
        f"| client latency p50 / p99 (non-streamed, upstream 20 ms) | "
        f"{percentile(latencies, 50) * 1000:.1f} / {percentile(latencies, 99) * 1000:.1f} ms | |",
        "",
        f"Answers by status: {dict(sorted(verdict['statuses'].items()))}; rows by status: "
        f"{dict(sorted(result['row_statuses'].items()))}. Machine: {machine()}.",
    ]
    return "\n".join(lines) + "\n", ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['requests']:,} requests at concurrency {QUICK['concurrency']} (smoke run)")
    parser.add_argument("--requests", type=int, help="override the number of requests")
    parser.add_argument("--concurrency", type=int, help="override the concurrency")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, config, DB)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    requests = args.requests or plan["requests"]
    concurrency = args.concurrency or plan["concurrency"]
    workdir = Path(tempfile.mkdtemp(prefix="shin-soak-"))
    try:
        result = soak(requests, concurrency, workdir)
    except BenchError as exc:
        print(f"bench: {exc}\n(work folder kept: {workdir})", file=sys.stderr)
        return 1
    section, ok = render(result, check(result), args.quick)
    print(section)
    if result["unhandled"]:
        print("unhandled errors:\n" + "\n".join(map(str, result["unhandled"][:10])), file=sys.stderr)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, section)
        print(f"wrote the gateway soak section of {ROOT / 'BENCHMARKS.md'}")
    if args.keep or not ok:
        print(f"work folder: {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
