"""What Redis adds to a request: the same load through two gateways that differ only in where the
admin state lives — keys.db on the host (`sqlite`) or a shared Redis (`redis`).

Every request uses a virtual key in a team, both with a budget and rpm/tpm/parallel limits, so
the Redis gateway does its one round trip per request (the ACQUIRE script over the key's and
the team's windows) and the background sends (release, tokens, spend); the SQLite gateway
counts in memory. Processes: the fake upstream, redis-server (Debian's, on a free port with a
temp dir), the two gateways and the load generator (bench/loadgen.py); runs alternate
sqlite/redis round after round at concurrency 1 and 50. The figure is the added p50 (and p99).

  python -m bench redis                 # the full run, figures into BENCHMARKS.md
  python -m bench redis --quick --no-write   # smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from . import mdsection, proxy_report
from .procs import BenchError, Service, free_port, start, stop_all, wait_ready
from .proxy_bench import MODEL, PROMPT, LoadGenerator

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "sk-bench-master"
CONCURRENCIES = (1, 50)
REQUESTS = {1: 1500, 50: 4000}
SECTION = "gateway-redis"
LIMITS = {"rpm_limit": 10_000_000, "tpm_limit": 10_000_000_000, "max_parallel_requests": 10_000}


def gateway_config(upstream_port: int, redis_url: str | None) -> str:
    general: dict[str, Any] = {"master_key": MASTER_KEY, "log_level": "INFO"}
    if redis_url:
        general["redis_url"] = redis_url
    return json.dumps({
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": f"http://127.0.0.1:{upstream_port}/v1",
            "api_key": "sk-fake-upstream"}}],
        "general_settings": general,
    }, indent=2)


def admin(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def start_redis(workdir: Path) -> tuple[Service, str]:
    server = shutil.which("redis-server")
    if server is None:
        raise BenchError("redis-server not installed (make redis installs Debian's)")
    port = free_port()
    (workdir / "redis-server").mkdir()
    service = start("redis-server", [server, "--port", str(port), "--bind", "127.0.0.1", "--dir",
                                     str(workdir / "redis-server"), "--save", "", "--appendonly", "no"],
                    workdir / "redis.log")
    deadline = time.monotonic() + 10
    while "Ready to accept connections" not in (workdir / "redis.log").read_text(errors="replace"):
        if time.monotonic() > deadline or service.process.poll() is not None:
            raise BenchError(f"redis-server did not start: {service.log_tail()}")
        time.sleep(0.05)
    return service, f"redis://127.0.0.1:{port}/0"


def start_gateway(name: str, upstream_port: int, redis_url: str | None, workdir: Path) -> tuple[Service, str, str]:
    folder = workdir / name
    folder.mkdir()
    port = free_port()
    (folder / "config.yaml").write_text(gateway_config(upstream_port, redis_url))
    service = start(name, [sys.executable, "-m", "proxy", "serve", "--config", str(folder / "config.yaml"),
                           "--port", str(port), "--db", str(folder / "litellm.db"),
                           "--log-file", str(folder / "gateway.log")], folder / "stderr.log", cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(service, url + "/health")
    admin(url, "/team/new", {"team_id": "bench", "max_budget": 1_000_000, **LIMITS})
    key = admin(url, "/key/generate", {"team_id": "bench", "max_budget": 1_000_000, **LIMITS})["key"]
    return service, url, key


def benchmark(requests: dict[int, int], rounds: int, workdir: Path) -> dict[str, Any]:
    upstream_port = free_port()
    services: list[Service] = []
    load: LoadGenerator | None = None
    try:
        upstream = start("fake upstream", [sys.executable, "-m", "proxy.fake_upstream", "--port",
                                           str(upstream_port)], workdir / "upstream.log", cwd=ROOT)
        services.append(upstream)
        wait_ready(upstream, f"http://127.0.0.1:{upstream_port}/v1/models")
        redis, redis_url = start_redis(workdir)
        services.append(redis)
        gateways = {}
        for name, url in (("sqlite", None), ("redis", redis_url)):
            service, base, key = start_gateway(name, upstream_port, url, workdir)
            services.append(service)
            gateways[name] = (base, key)
        load = LoadGenerator()
        latencies: dict[tuple[str, int], list[float]] = {}
        failures = 0
        for concurrency in CONCURRENCIES:
            for round_no in range(rounds):
                order = list(gateways) if round_no % 2 == 0 else list(gateways)[::-1]
                for name in order:
                    base, key = gateways[name]
                    result = load.run({
                        "url": base + "/v1/chat/completions", "headers": {"Authorization": f"Bearer {key}"},
                        "body": {"model": MODEL, "messages": PROMPT}, "stream": False,
                        "concurrency": concurrency, "requests": requests[concurrency],
                        "warmup": max(concurrency, 20),
                    })
                    # Anything but a 200 is a failure here (a 429 would mean a limit was hit).
                    failures += sum(n for code, n in result["statuses"].items() if code != "200")
                    failures += sum(result["failures"].values())
                    latencies.setdefault((name, concurrency), []).extend(result["latencies"])
                    p50 = proxy_report.percentile(result["latencies"], 50) * 1000
                    print(f"  {name:6} c={concurrency:<3} n={result['sent']:<5} p50 {p50:.2f} ms "
                          f"statuses {result['statuses']}", flush=True)
        return {"latencies": latencies, "failures": failures}
    finally:
        if load is not None:
            load.close()
        stop_all(services)


def render(result: dict[str, Any], *, rounds: int, requests: dict[int, int], quick: bool) -> str:
    lines = [
        "## Gateway with Redis",
        "",
        f"`python -m bench redis{' --quick' if quick else ''}`: a key in a team, both with a budget "
        "and rpm/tpm/parallel limits; the same gateway with keys.db (`sqlite`) and with a local "
        f"redis-server (`redis`), {rounds} alternating round(s) per concurrency, non-streaming.",
        f"Machine: {proxy_report.machine()}.",
        "",
        "| concurrency | requests | sqlite p50 | redis p50 | added p50 | sqlite p99 | redis p99 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in CONCURRENCIES:
        s, r = result["latencies"][("sqlite", c)], result["latencies"][("redis", c)]
        sp50, rp50 = (proxy_report.percentile(v, 50) * 1000 for v in (s, r))
        sp99, rp99 = (proxy_report.percentile(v, 99) * 1000 for v in (s, r))
        lines.append(f"| {c} | {requests[c] * rounds} each | {sp50:.2f} ms | {rp50:.2f} ms | "
                     f"{rp50 - sp50:+.2f} ms | {sp99:.2f} ms | {rp99:.2f} ms |")
    lines += ["", f"Failed requests: {result['failures']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench redis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests, one round (smoke run)")
    parser.add_argument("--rounds", type=int, default=2, help="sqlite/redis alternations per concurrency")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    requests = {c: max(100, n // 10) for c, n in REQUESTS.items()} if args.quick else REQUESTS
    rounds = 1 if args.quick else args.rounds
    workdir = Path(tempfile.mkdtemp(prefix="shin-bench-redis-"))
    try:
        result = benchmark(requests, rounds, workdir)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench: {exc}\n(work folder kept: {workdir})", file=sys.stderr)
        return 1
    section = render(result, rounds=rounds, requests=requests, quick=args.quick)
    print(section)
    if not args.no_write:
        mdsection.replace_section(ROOT / "BENCHMARKS.md", SECTION, section)
        print(f"wrote the {SECTION} section of {ROOT / 'BENCHMARKS.md'}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
