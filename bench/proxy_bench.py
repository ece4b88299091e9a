"""The gateway proxy benchmark: the same load straight to the fake upstream and through the proxy.

Three separate processes share the machine's cores as they are (no pinning): the fake
upstream (`python -m proxy.fake_upstream`), the real gateway (`python -m proxy serve` with a
generated config, a fresh SQLite log and a log file) and the load generator (bench/loadgen.py,
aiohttp with keep-alive). For every scenario — non-streaming and streaming chat completions
at concurrency 1, 10 and 50 — the runs alternate direct / proxy, round after round, so drift
on the machine hits both sides alike. The gateway's CPU time is read from /proc around each
of its runs; at the end it gets SIGTERM (which must flush the request log) and its rows are
counted against the requests sent.

  python -m bench proxy                 # the full run, figures into BENCHMARKS.md
  python -m bench proxy --quick --no-write
  python -m bench proxy --no-litellm    # skip LiteLLM even when .bench/litellm-venv exists

LiteLLM's proxy joins the run when `.bench/litellm-venv` holds `litellm[proxy]` (or with
--litellm VENV), with a tenth of the requests per run: it serves ~100 req/s here.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import proxy_report
from .procs import BenchError, Service, free_port, start, wait_ready

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-4o-mini"  # priced by genai-prices, so the cost path runs as in production
MASTER_KEY = "sk-bench-master"
CONCURRENCIES = (1, 10, 50)
# Timed requests per run at each concurrency (the default full run); --quick divides by 10.
REQUESTS = {1: 1500, 10: 3000, 50: 4000}
RSS_AFTER = 10_000
# Where `make bench` looks for the LiteLLM proxy to compare with (never installed implicitly:
#   python3 -m venv .bench/litellm-venv && .bench/litellm-venv/bin/pip install 'litellm[proxy]').
LITELLM_VENV = ROOT / ".bench" / "litellm-venv"
LITELLM_SCALE = 0.1

PROMPT = [
    {"role": "system", "content": "You are a concise assistant for an engineering team."},
    {"role": "user", "content": "Summarise why request logging must never slow down a gateway."},
]


@dataclass
class Gateway:
    """A target of the load: the fake upstream itself (direct) or a proxy in front of it."""

    name: str
    url: str
    service: Service | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    rss_at: tuple[int, int] | None = None  # (requests sent so far, RSS bytes) once >= RSS_AFTER
    version: str = ""
    scale: float = 1.0  # share of each run's requests (LiteLLM is ~50x slower: keep it bounded)


@dataclass
class Run:
    gateway: str
    stream: bool
    concurrency: int
    timed: int
    sent: int
    elapsed: float
    latencies: list[float]
    ttfbs: list[float]
    statuses: dict[str, int]
    failures: dict[str, int]
    cpu: float | None  # seconds of the gateway process during the run (warm-up included)


def proxy_config(upstream_port: int) -> str:
    return json.dumps(
        {  # JSON is YAML: no templating of a YAML file by hand
            "model_list": [
                {
                    "model_name": MODEL,
                    "litellm_params": {
                        "model": f"openai/{MODEL}",
                        "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                        "api_key": "sk-fake-upstream",
                    },
                }
            ],
            "general_settings": {"master_key": MASTER_KEY, "log_level": "INFO"},
        },
        indent=2,
    )


class LoadGenerator:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"load generator exited with {self.process.wait()}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(10)


def run_one(load: LoadGenerator, gw: Gateway, stream: bool, concurrency: int, requests: int) -> Run:
    body: dict[str, Any] = {"model": MODEL, "messages": PROMPT}
    if stream:
        body["stream"] = True
    job = {
        "url": gw.url, "headers": gw.headers, "body": body, "stream": stream,
        "concurrency": concurrency, "requests": requests, "warmup": max(concurrency, 20),
    }
    cpu_before = gw.service.cpu_seconds() if gw.service else None
    result = load.run(job)
    cpu = gw.service.cpu_seconds() - cpu_before if gw.service and cpu_before is not None else None
    gw.sent += result["sent"]
    if gw.service and gw.rss_at is None and gw.sent >= RSS_AFTER:
        gw.rss_at = (gw.sent, gw.service.rss_bytes())
    return Run(gw.name, stream, concurrency, result["timed"], result["sent"], result["elapsed"],
               result["latencies"], result["ttfbs"], result["statuses"], result["failures"], cpu)


def _loadavg() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def count_rows(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        total, ok = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(status_code = 200), 0) FROM request_log"
        ).fetchone()
    finally:
        conn.close()
    return int(total), int(ok)


def start_litellm(venv: Path, upstream_port: int, workdir: Path) -> Gateway:
    port = free_port()
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    config = workdir / "litellm.yaml"
    config.write_text(json.dumps({
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": f"http://127.0.0.1:{upstream_port}/v1",
            "api_key": "sk-fake-upstream"}}],
        "general_settings": {"master_key": MASTER_KEY},
    }))
    service = start("litellm", [str(venv / "bin" / "litellm"), "--config", str(config),
                                "--port", str(port), "--host", "127.0.0.1", "--num_workers", "1"],
                    workdir / "litellm.log")
    wait_ready(service, f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
    return Gateway("litellm", f"http://127.0.0.1:{port}/v1/chat/completions", service,
                   {"Authorization": f"Bearer {MASTER_KEY}"}, version=version, scale=LITELLM_SCALE)


def start_passthrough(upstream_port: int, workdir: Path) -> Gateway:
    port = free_port()
    service = start("aiohttp floor", [sys.executable, "-m", "bench.passthrough", "--port", str(port),
                                      "--upstream", f"http://127.0.0.1:{upstream_port}/v1"],
                    workdir / "passthrough.log", cwd=ROOT)
    wait_ready(service, f"http://127.0.0.1:{port}/health")
    return Gateway("floor", f"http://127.0.0.1:{port}/v1/chat/completions", service,
                   {"Authorization": f"Bearer {MASTER_KEY}"})


def benchmark(requests: dict[int, int], rounds: int, litellm: Path | None,
              workdir: Path) -> dict[str, Any]:
    upstream_port, proxy_port = free_port(), free_port()
    upstream = start("fake upstream", [sys.executable, "-m", "proxy.fake_upstream",
                                       "--port", str(upstream_port)], workdir / "upstream.log",
                     cwd=ROOT)
    services = [upstream]
    load: LoadGenerator | None = None
    try:
        wait_ready(upstream, f"http://127.0.0.1:{upstream_port}/v1/models")
        config, db = workdir / "config.yaml", workdir / "litellm.db"
        config.write_text(proxy_config(upstream_port))
        proxy = start("gateway", [sys.executable, "-m", "proxy", "serve", "--config", str(config),
                                  "--port", str(proxy_port), "--db", str(db),
                                  "--log-file", str(workdir / "gateway.log")],
                      workdir / "gateway.stderr", cwd=ROOT)
        services.append(proxy)
        wait_ready(proxy, f"http://127.0.0.1:{proxy_port}/health")
        gateways = [
            Gateway("direct", f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
                    headers={"Authorization": "Bearer sk-fake-upstream"}),
            Gateway("proxy", f"http://127.0.0.1:{proxy_port}/v1/chat/completions", proxy,
                    {"Authorization": f"Bearer {MASTER_KEY}"}),
        ]
        gateways.append(start_passthrough(upstream_port, workdir))
        services.append(gateways[-1].service)  # type: ignore[arg-type]
        if litellm is not None:
            gateways.append(start_litellm(litellm, upstream_port, workdir))
            services.append(gateways[-1].service)  # type: ignore[arg-type]
        load = LoadGenerator()
        loadavg_before = _loadavg()
        runs: list[Run] = []
        started = time.monotonic()
        for stream in (False, True):
            for concurrency in CONCURRENCIES:
                for round_no in range(rounds):
                    # Alternate who goes first so neither side always runs on a warmer machine.
                    order = gateways if round_no % 2 == 0 else gateways[::-1]
                    for gw in order:
                        count = max(50, int(requests[concurrency] * gw.scale))
                        run = run_one(load, gw, stream, concurrency, count)
                        runs.append(run)
                        print(proxy_report.progress_line(run), flush=True)
        duration = time.monotonic() - started
        proxy_gw = gateways[1]
        rss_final = proxy.rss_bytes()
        code = proxy.stop()
        rows, rows_ok = count_rows(db)
        extra = {}
        for gw in gateways[2:]:
            assert gw.service is not None
            extra[gw.name] = {"sent": gw.sent, "version": gw.version,
                              "rss_at": gw.rss_at or (gw.sent, gw.service.rss_bytes())}
        return {
            "runs": [run.__dict__ for run in runs],
            "proxy_sent": proxy_gw.sent,
            "rss_at": proxy_gw.rss_at or (proxy_gw.sent, rss_final),
            "rss_final": rss_final,
            "rows": rows,
            "rows_ok": rows_ok,
            "exit_code": code,
            "duration": duration,
            "loadavg": (loadavg_before, _loadavg()),
            "others": extra,
        }
    finally:
        if load is not None:
            load.close()
        for service in reversed(services):
            if service.process.poll() is None:
                try:
                    service.stop(30)
                except BenchError:
                    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench proxy", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests, one round (smoke run)")
    parser.add_argument("--rounds", type=int, default=2, help="direct/proxy alternations per scenario (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--json", type=Path, help="also write the raw figures (every latency) to this file")
    parser.add_argument("--litellm", type=Path, metavar="VENV",
                        help="a venv with `litellm[proxy]` installed: measure it side by side "
                             f"(default: {LITELLM_VENV.relative_to(ROOT)} when it exists)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM even if installed")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, config, DB)")
    args = parser.parse_args(argv)
    requests = {c: max(100, n // 10) for c, n in REQUESTS.items()} if args.quick else REQUESTS
    rounds = 1 if args.quick else args.rounds
    litellm = args.litellm
    if litellm is None and not args.no_litellm and (LITELLM_VENV / "bin" / "litellm").exists():
        litellm = LITELLM_VENV
    workdir = Path(tempfile.mkdtemp(prefix="shin-bench-"))
    try:
        result = benchmark(requests, rounds, litellm, workdir)
    except BenchError as exc:
        print(f"bench: {exc}\n(work folder kept: {workdir})", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(result))
    section = proxy_report.render(result, rounds=rounds, requests=requests, quick=args.quick)
    print(section)
    if not args.no_write:
        proxy_report.write_section(ROOT / "BENCHMARKS.md", section)
        print(f"wrote the gateway proxy section of {ROOT / 'BENCHMARKS.md'}")
    if args.keep:
        print(f"work folder: {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
