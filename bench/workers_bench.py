"""The workers benchmark: the same load through one gateway process and through `--workers 2`.

Real processes: the fake upstream, the gateway (`python -m proxy serve`, a fresh log each
time) and the load generator (bench/loadgen.py, keep-alive connections, a fresh set per run).
Configurations: one process (the default `serve`), two workers with SO_REUSEPORT (the default
--listen-mode) and two workers accepting on one shared socket. Scenarios: chat completions at
concurrency 10 and 50, and streamed at 50; runs alternate between the configurations, round
after round. For each: requests per second, p50 and p99 latency, and how evenly the workers
shared the work — the busiest worker's share of the workers' CPU time (50 % is even for
two), read from /proc. At the end each gateway gets SIGTERM and its rows are counted against
the requests it was sent (every one exactly once).

  python -m bench workers                  # full run, figures into BENCHMARKS.md
  python -m bench workers --quick --no-write
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .mdsection import replace_section
from .procs import CLOCK_TICKS, BenchError, Service, free_port, start, stop_all, wait_ready
from .proxy_bench import MASTER_KEY, MODEL, PROMPT, LoadGenerator, count_rows, proxy_config
from .proxy_report import machine, percentile

ROOT = Path(__file__).resolve().parent.parent
SECTION = "gateway-workers"
#: (label, --workers, --listen-mode)
CONFIGS = (("1 process", 1, None), ("2 workers, reuseport", 2, "reuseport"),
           ("2 workers, shared socket", 2, "shared"))
SCENARIOS = ((False, 10), (False, 50), (True, 50))  # (stream, concurrency)
REQUESTS = 4000
_WORKER = re.compile(r"worker \d+ started \(pid (\d+)\)")


@dataclass
class Target:
    label: str
    workers: int
    mode: str | None
    service: Service
    url: str
    db: Path
    sent: int = 0
    pids: list[int] = field(default_factory=list)

    def worker_cpu(self) -> list[float]:
        """CPU seconds of each worker so far (the one process when there are no workers)."""
        pids = self.pids or [self.service.pid]
        return [_cpu(pid) for pid in pids]


def _cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def start_target(label: str, workers: int, mode: str | None, upstream_port: int, workdir: Path) -> Target:
    port = free_port()
    name = f"gw{len(list(workdir.glob('gw*.yaml')))}"
    config, db = workdir / f"{name}.yaml", workdir / f"{name}.db"
    config.write_text(proxy_config(upstream_port))
    argv = [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", str(port),
            "--db", str(db), "--log-file", str(workdir / f"{name}.log"), "--workers", str(workers)]
    if mode:
        argv += ["--listen-mode", mode]
    service = start(label, argv, workdir / f"{name}.stderr", cwd=ROOT)
    wait_ready(service, f"http://127.0.0.1:{port}/health")
    target = Target(label, workers, mode, service, f"http://127.0.0.1:{port}/v1/chat/completions", db)
    if workers > 1:
        deadline = time.monotonic() + 30
        while len(target.pids) < workers and time.monotonic() < deadline:
            target.pids = [int(p) for p in _WORKER.findall(service.log_path.read_text(errors="replace"))]
            time.sleep(0.1)
    return target


def run_one(load: LoadGenerator, target: Target, stream: bool, concurrency: int, requests: int) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": PROMPT, **({"stream": True} if stream else {})}
    before = target.worker_cpu()
    result = load.run({"url": target.url, "headers": {"Authorization": f"Bearer {MASTER_KEY}"},
                       "body": body, "stream": stream, "concurrency": concurrency,
                       "requests": requests, "warmup": max(concurrency, 20)})
    cpu = [after - b for after, b in zip(target.worker_cpu(), before, strict=True)]
    target.sent += result["sent"]
    share = max(cpu) / sum(cpu) if target.workers > 1 and sum(cpu) > 0 else None
    run = {"label": target.label, "stream": stream, "concurrency": concurrency,
           "rps": result["timed"] / result["elapsed"], "latencies": result["latencies"],
           "statuses": result["statuses"], "failures": result["failures"], "share": share}
    bad = {k: v for k, v in result["statuses"].items() if k != "200"}
    print(f"  {'stream' if stream else 'json  '} c={concurrency:<3} {target.label:<26} "
          f"{run['rps']:7.0f} req/s  p50 {percentile(result['latencies'], 50) * 1000:6.2f} ms"
          + (f"  busiest worker {share:.0%}" if share is not None else "")
          + (f"  NON-200 {bad}" if bad else "") + (f"  FAILED {result['failures']}" if result["failures"] else ""),
          flush=True)
    return run


def benchmark(requests: int, rounds: int, workdir: Path) -> dict[str, Any]:
    upstream_port = free_port()
    upstream = start("fake upstream", [sys.executable, "-m", "proxy.fake_upstream", "--port", str(upstream_port)],
                     workdir / "upstream.log", cwd=ROOT)
    services: list[Service] = [upstream]
    load: LoadGenerator | None = None
    try:
        wait_ready(upstream, f"http://127.0.0.1:{upstream_port}/v1/models")
        targets = []
        for label, workers, mode in CONFIGS:
            targets.append(start_target(label, workers, mode, upstream_port, workdir))
            services.append(targets[-1].service)
        load = LoadGenerator()
        runs = []
        for stream, concurrency in SCENARIOS:
            for round_no in range(rounds):
                order = targets if round_no % 2 == 0 else targets[::-1]
                for target in order:
                    runs.append(run_one(load, target, stream, concurrency, requests))
        logged = {}
        for target in targets:
            code = target.service.stop(60)
            rows, ok = count_rows(target.db)
            logged[target.label] = {"sent": target.sent, "rows": rows, "ok": ok, "exit_code": code}
        return {"runs": runs, "logged": logged}
    finally:
        if load is not None:
            load.close()
        stop_all(services, 60)


def render(result: dict[str, Any], *, requests: int, rounds: int, quick: bool) -> str:
    lines = ["## Gateway workers (`serve --workers N`)", ""]
    if quick:
        lines += ["Smoke run (--quick) on a shared machine: these figures are not comparable.", ""]
    lines += [f"{requests} requests per run, {rounds} round(s) per scenario, runs alternating; "
              f"{machine()}.", "",
              "| Gateway | Scenario | req/s | p50 ms | p99 ms | busiest worker's CPU share |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    for stream, concurrency in SCENARIOS:
        for label, _, _ in CONFIGS:
            runs = [r for r in result["runs"] if r["label"] == label and r["stream"] == stream
                    and r["concurrency"] == concurrency]
            if not runs:
                continue
            latencies = [x for r in runs for x in r["latencies"]]
            rps = sum(r["rps"] for r in runs) / len(runs)
            shares = [r["share"] for r in runs if r["share"] is not None]
            share = f"{max(shares):.0%} (worst run)" if shares else "—"
            kind = "stream" if stream else "json"
            lines.append(f"| {label} | {kind} c={concurrency} | {rps:.0f} | "
                         f"{percentile(latencies, 50) * 1000:.2f} | {percentile(latencies, 99) * 1000:.2f} | {share} |")
    lines += ["", "Rows logged after SIGTERM (each request exactly once):", ""]
    for label, figures in result["logged"].items():
        verdict = "ok" if figures["rows"] == figures["sent"] and figures["exit_code"] == 0 else "MISMATCH"
        lines.append(f"- {label}: {figures['sent']} sent, {figures['rows']} rows, exit {figures['exit_code']} ({verdict})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench workers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests, one round (smoke run)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per scenario (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    requests = REQUESTS // 10 if args.quick else REQUESTS
    rounds = 1 if args.quick else args.rounds
    workdir = Path(tempfile.mkdtemp(prefix="shin-bench-workers-"))
    try:
        result = benchmark(requests, rounds, workdir)
    except BenchError as exc:
        print(f"bench: {exc}\n(work folder kept: {workdir})", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(result))
    section = render(result, requests=requests, rounds=rounds, quick=args.quick)
    print(section)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, section)
        print(f"wrote the {SECTION} section of {ROOT / 'BENCHMARKS.md'}")
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    mismatched = [k for k, v in result["logged"].items() if v["rows"] != v["sent"] or v["exit_code"] != 0]
    return 1 if mismatched else 0


if __name__ == "__main__":
    raise SystemExit(main())
