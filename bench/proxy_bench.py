"""The gateway proxy benchmark: one interleaved run of the same load through every relay.

Separate processes share the machine's cores as they are (no pinning): the fake upstream
(`python -m proxy.fake_upstream`), the load generator (bench/loadgen.py, aiohttp with
keep-alive) and the relays measured side by side:

  direct    the fake upstream itself (the ceiling of this machine with this client);
  floor     bench/passthrough.py, the least an aiohttp proxy does (read, forward, relay);
  nginx     Debian's nginx as a reverse proxy (bench/nginx.py): one HTTP hop in C;
  shin      the real gateway (`python -m proxy serve`) with every feature on
            (bench/features.py: a virtual key with a budget and limits, pricing, the request
            log with prompts stored, the access log, metrics, the gateway budget);
  litellm   LiteLLM's proxy, when `.bench/litellm-venv` holds `litellm[proxy]` (or --litellm
            VENV), with a tenth of the requests per run: it serves ~100 req/s here.

Scenarios: chat completions, non-streamed and streamed (15 events), at concurrency 1, 10 and
50, against an instant upstream and against one that waits 50 ms before answering (a short
completion). Every scenario runs each relay in turn, round after round, alternating the order,
so drift on the machine hits them alike. CPU time of each relay is read from /proc around its
runs. At the end the gateway's /metrics is read, it gets SIGTERM (which must flush the request
log) and its rows, access-log lines and metrics are counted against the requests sent.

  python -m bench proxy                 # the full run, figures into BENCHMARKS.md
  python -m bench proxy --quick --no-write
  python -m bench proxy --no-litellm    # skip LiteLLM even when .bench/litellm-venv exists
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import features, proxy_report
from .nginx import start_nginx
from .procs import BenchError, Service, free_port, start, stop_all, wait_ready

ROOT = Path(__file__).resolve().parent.parent
MODEL = features.MODEL  # priced by genai-prices, so the cost path runs as in production
MASTER_KEY = features.MASTER_KEY
PROMPT = features.PROMPT
CONCURRENCIES = (1, 10, 50)
INSTANT, SLOW = "instant", f"{features.SLOW_SECONDS * 1000:g} ms"
UPSTREAMS = {INSTANT: features.MODEL, SLOW: features.SLOW_MODEL}  # which model steers the delay
# Timed requests per run (the default full run); --quick divides by 10. With a 50 ms upstream
# c=1 serves ~20 requests a second: fewer requests, the same few seconds a run.
REQUESTS = {
    (INSTANT, 1): 1500, (INSTANT, 10): 3000, (INSTANT, 50): 4000,
    (SLOW, 1): 200, (SLOW, 10): 1000, (SLOW, 50): 4000,
}
RSS_AFTER = 10_000
# Where `make bench` looks for the LiteLLM proxy to compare with (never installed implicitly:
#   python3 -m venv .bench/litellm-venv && .bench/litellm-venv/bin/pip install 'litellm[proxy]').
LITELLM_VENV = ROOT / ".bench" / "litellm-venv"
LITELLM_SCALE = 0.1


@dataclass
class Gateway:
    """A target of the load: the fake upstream itself (direct) or a relay in front of it."""

    name: str
    url: str
    service: Service | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    rss_at: tuple[int, int] | None = None  # (requests sent so far, RSS bytes) once >= RSS_AFTER
    version: str = ""
    scale: float = 1.0  # share of each run's requests (LiteLLM is ~50x slower: keep it bounded)
    tree: bool = False  # CPU of the process and its children (nginx's master and worker)

    def cpu(self) -> float | None:
        if self.service is None:
            return None
        return self.service.tree_cpu_seconds() if self.tree else self.service.cpu_seconds()


@dataclass
class Run:
    gateway: str
    upstream: str
    stream: bool
    concurrency: int
    timed: int
    sent: int
    elapsed: float
    latencies: list[float]
    ttfbs: list[float]
    statuses: dict[str, int]
    failures: dict[str, int]
    cpu: float | None  # seconds of the relay's processes during the run (warm-up included)


def proxy_config(upstream_port: int) -> str:
    """A plain gateway config (master key, one priced model): bench/workers_bench.py's."""
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


def run_one(load: LoadGenerator, gw: Gateway, upstream: str, stream: bool, concurrency: int,
            requests: int) -> Run:
    job = {
        "url": gw.url, "headers": gw.headers, "body": features.chat_body(UPSTREAMS[upstream], stream),
        "stream": stream, "concurrency": concurrency, "requests": requests,
        "warmup": max(concurrency, 20),
    }
    cpu_before = gw.cpu()
    result = load.run(job)
    cpu_after = gw.cpu()
    cpu = cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
    gw.sent += result["sent"]
    if gw.service and gw.rss_at is None and gw.sent >= RSS_AFTER:
        gw.rss_at = (gw.sent, gw.service.rss_bytes())
    return Run(gw.name, upstream, stream, concurrency, result["timed"], result["sent"],
               result["elapsed"], result["latencies"], result["ttfbs"], result["statuses"],
               result["failures"], cpu)


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


#: What every logged row of the gateway must show for "every feature on" to hold.
FEATURE_ROWS_SQL = """
SELECT COUNT(*) FROM request_log
WHERE key_alias = :alias AND cost > 0 AND cost_status = 'priced' AND messages IS NOT NULL
  AND response IS NOT NULL AND total_tokens > 0
"""


def feature_rows(db: Path) -> int:
    """Rows that are priced, carry the virtual key and stored the prompt and the answer."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(FEATURE_ROWS_SQL, {"alias": features.KEY_SETTINGS["key_alias"]}).fetchone()[0])
    finally:
        conn.close()


def metrics_total(base_url: str) -> float:
    """litellm_proxy_total_requests_metric summed over its series (GET /metrics)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(
        r"^litellm_proxy_total_requests_metric_total\{[^}]*\} (\S+)$", text, re.M))


def access_lines(log: Path) -> int:
    try:
        with log.open(encoding="utf-8", errors="replace") as handle:
            return sum(1 for line in handle if " proxy.access: " in line)
    except OSError:
        return 0


def start_litellm(venv: Path, upstream_port: int, workdir: Path) -> Gateway:
    port = free_port()
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    config = workdir / "litellm.yaml"
    base = f"http://127.0.0.1:{upstream_port}/v1"
    config.write_text(json.dumps({
        "model_list": [{"model_name": model, "litellm_params": {
            "model": f"openai/{model}", "api_base": base, "api_key": "sk-fake-upstream"}}
            for model in UPSTREAMS.values()],
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
    return Gateway("floor", f"http://127.0.0.1:{port}/v1/chat/completions", service)


def start_gateway(upstream_port: int, workdir: Path) -> tuple[Gateway, str]:
    port = free_port()
    config = workdir / "config.yaml"
    config.write_text(features.gateway_config(upstream_port))
    service = start("gateway", [sys.executable, "-m", "proxy", "serve", "--config", str(config),
                                "--port", str(port), "--db", str(workdir / "litellm.db"),
                                "--log-file", str(workdir / "gateway.log")],
                    workdir / "gateway.stderr", cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(service, f"{base}/health")
    key = features.create_virtual_key(base)
    return Gateway("shin", f"{base}/v1/chat/completions", service,
                   {"Authorization": f"Bearer {key}"}), base


def scenarios() -> list[tuple[str, bool, int]]:
    return [(upstream, stream, c) for upstream in (INSTANT, SLOW) for stream in (False, True)
            for c in CONCURRENCIES]


def benchmark(requests: dict[tuple[str, int], int], rounds: int, litellm: Path | None,
              workdir: Path, nginx: bool = True) -> dict[str, Any]:
    upstream_port = free_port()
    upstream = start("fake upstream", [sys.executable, "-m", "proxy.fake_upstream",
                                       "--port", str(upstream_port)], workdir / "upstream.log",
                     cwd=ROOT)
    services = [upstream]
    load: LoadGenerator | None = None
    try:
        wait_ready(upstream, f"http://127.0.0.1:{upstream_port}/v1/models")
        shin, shin_base = start_gateway(upstream_port, workdir)
        services.append(shin.service)  # type: ignore[arg-type]
        gateways = [
            Gateway("direct", f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
                    headers={"Authorization": "Bearer sk-fake-upstream"}),
            start_passthrough(upstream_port, workdir),
        ]
        services.append(gateways[-1].service)  # type: ignore[arg-type]
        if nginx:
            service, port, version = start_nginx(upstream_port, workdir)
            services.append(service)
            gateways.append(Gateway("nginx", f"http://127.0.0.1:{port}/v1/chat/completions", service,
                                    version=version, tree=True))
        gateways.append(shin)
        if litellm is not None:
            gateways.append(start_litellm(litellm, upstream_port, workdir))
            services.append(gateways[-1].service)  # type: ignore[arg-type]
        load = LoadGenerator()
        loadavg_before = _loadavg()
        runs: list[Run] = []
        started = time.monotonic()
        for upstream_kind, stream, concurrency in scenarios():
            for round_no in range(rounds):
                # Alternate who goes first so no relay always runs on a warmer machine.
                order = gateways if round_no % 2 == 0 else gateways[::-1]
                for gw in order:
                    count = max(50, int(requests[upstream_kind, concurrency] * gw.scale))
                    run = run_one(load, gw, upstream_kind, stream, concurrency, count)
                    runs.append(run)
                    print(proxy_report.progress_line(run), flush=True)
        duration = time.monotonic() - started
        assert shin.service is not None
        rss_final = shin.service.rss_bytes()
        metrics = metrics_total(shin_base)
        code = shin.service.stop()
        db = workdir / "litellm.db"
        rows, rows_ok = count_rows(db)
        extra = {}
        for gw in gateways:
            if gw.service is not None and gw is not shin:
                extra[gw.name] = {"sent": gw.sent, "version": gw.version,
                                  "rss_at": gw.rss_at or (gw.sent, gw.service.rss_bytes())}
        return {
            "runs": [run.__dict__ for run in runs],
            "proxy_sent": shin.sent,
            "rss_at": shin.rss_at or (shin.sent, rss_final),
            "rss_final": rss_final,
            "rows": rows,
            "rows_ok": rows_ok,
            "feature_rows": feature_rows(db),
            "access_lines": access_lines(workdir / "gateway.log"),
            "metrics_requests": metrics,
            "exit_code": code,
            "duration": duration,
            "loadavg": (loadavg_before, _loadavg()),
            "others": extra,
        }
    finally:
        if load is not None:
            load.close()
        stop_all(services)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench proxy", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests, one round (smoke run)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations per scenario (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    parser.add_argument("--json", type=Path, help="also write the raw figures (every latency) to this file")
    parser.add_argument("--litellm", type=Path, metavar="VENV",
                        help="a venv with `litellm[proxy]` installed: measure it side by side "
                             f"(default: {LITELLM_VENV.relative_to(ROOT)} when it exists)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM even if installed")
    parser.add_argument("--no-nginx", action="store_true", help="leave nginx out of the run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, config, DB)")
    args = parser.parse_args(argv)
    requests = {k: max(20, n // 10) for k, n in REQUESTS.items()} if args.quick else REQUESTS
    rounds = 1 if args.quick else args.rounds
    litellm = args.litellm
    if litellm is None and not args.no_litellm and (LITELLM_VENV / "bin" / "litellm").exists():
        litellm = LITELLM_VENV
    workdir = Path(tempfile.mkdtemp(prefix="shin-bench-"))
    try:
        result = benchmark(requests, rounds, litellm, workdir, nginx=not args.no_nginx)
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
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
