"""Profile the gateway's own work per request, in measures a busy machine does not distort.

Wall-clock timings on a shared machine say little; these do not depend on the load:

  callgrind   instructions executed by the gateway process per request (valgrind), in total
              and per thread (the event loop, the request-log writer, the log flush thread),
              over a fixed number of requests after a warm-up. Repeatable: run it twice and
              compare, then A/B a change with the same arguments.
  pyspy       py-spy samples of the gateway (`--idle` off, optionally `--gil`): where each
              thread's time goes, as proportions, grouped by the gateway's own functions.
  cpu         utime + stime of the gateway per request and per thread, from /proc (noisy on a
              loaded machine; a sanity check only).

The gateway runs with every feature on (bench/features.py: a virtual key with a budget and
limits, pricing, the request log with prompts, the access log, metrics, budgets), the load
comes from bench/loadgen.py in its own process.

  python -m bench.profile_gateway --tool callgrind --requests 1000 --concurrency 10
  python -m bench.profile_gateway --tool callgrind --stream
  python -m bench.profile_gateway --tool pyspy --requests 20000 --gil
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import features
from .procs import BenchError, Service, free_port, start, wait_ready
from .proxy_bench import LoadGenerator

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_names(pid: int) -> dict[int, str]:
    """Native thread id → Python thread name (py-spy dump), for the threads Python knows."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return {}
    text = subprocess.run([str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True,
                          check=False).stdout
    return {int(tid): name for tid, name in re.findall(r'^Thread (\d+) \(\w+\): "([^"]*)"', text, re.M)}


def thread_cpu(pid: int, names: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds per thread name (threads of one name added up)."""
    out: dict[str, float] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            name = (names or {}).get(int(task.name)) or (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[name] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return dict(out)


def user_system(pid: int) -> tuple[float, float]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def _start(workdir: Path, tool: str, target: str) -> tuple[Service, Service, str, str]:
    upstream_port, port = free_port(), free_port()
    upstream = start("fake upstream", [sys.executable, "-m", "proxy.fake_upstream", "--port", str(upstream_port)],
                     workdir / "upstream.log", cwd=ROOT)
    wait_ready(upstream, f"http://127.0.0.1:{upstream_port}/v1/models")
    config = workdir / "config.yaml"
    config.write_text(features.gateway_config(upstream_port))
    argv = [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", str(port),
            "--db", str(workdir / "litellm.db"), "--log-file", str(workdir / "gateway.log")]
    if target == "floor":
        argv = [sys.executable, "-m", "bench.passthrough", "--port", str(port),
                "--upstream", f"http://127.0.0.1:{upstream_port}/v1"]
    if tool == "callgrind":
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
                f"--callgrind-out-file={workdir}/callgrind.out.%p", *argv]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts run to run
    gateway = start("gateway", argv, workdir / "gateway.stderr", cwd=ROOT, env=env)
    wait_ready(gateway, f"http://127.0.0.1:{port}/health", timeout=600 if tool == "callgrind" else 60)
    key = features.create_virtual_key(f"http://127.0.0.1:{port}") if target == "gateway" else "-"
    return upstream, gateway, f"http://127.0.0.1:{port}", key


def _callgrind_totals(workdir: Path, pid: int) -> list[tuple[int, int, str]]:
    """(thread number, instructions, top functions) per thread of the last dump."""
    files = sorted(workdir.glob(f"callgrind.out.{pid}.*"))
    if not files:
        files = sorted(workdir.glob(f"callgrind.out.{pid}-*"))
    out = []
    for path in files:
        match = re.search(r"-(\d+)$", path.name)
        thread = int(match.group(1)) if match else 0
        text = path.read_text(errors="replace")
        totals = re.search(r"^(?:totals|summary): (\d+)", text, re.M)
        count = int(totals.group(1)) if totals else 0
        top = ""
        if count and shutil.which("callgrind_annotate"):
            annotated = subprocess.run(["callgrind_annotate", "--threshold=80", str(path)],
                                       capture_output=True, text=True, check=False).stdout
            lines = [ln for ln in annotated.splitlines() if re.match(r"^\s*[\d,]+ \(", ln)]
            top = "; ".join(re.sub(r"\s+", " ", ln.strip()) for ln in lines[1:6])
        out.append((thread, count, top))
    return out


def _pyspy_summary(raw: Path, top: int = 25) -> str:
    """Collapsed stacks → per thread: samples, and the share of the gateway's own functions
    (inclusive) and of leaf functions (self)."""
    threads: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: collections.Counter[str] = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        thread = re.sub(r"\(tid[^)]*\)", "", thread).strip() or "?"
        totals[thread] += count
        seen = set()
        for frame in frames[1:]:
            name = re.sub(r":\d+\)?$", "", frame)
            if name not in seen:
                seen.add(name)
                threads[thread][name] += count
        leaves[thread][re.sub(r":\d+\)?$", "", frames[-1])] += count
    lines = []
    for thread, total in totals.most_common():
        lines.append(f"== {thread}: {total} samples")
        lines.append("  inclusive:")
        for name, count in threads[thread].most_common(top):
            lines.append(f"    {count / total:6.1%}  {name}")
        lines.append("  self:")
        for name, count in leaves[thread].most_common(top // 2):
            lines.append(f"    {count / total:6.1%}  {name}")
    return "\n".join(lines)


def _strace_summary(path: Path, requests: int) -> dict[str, float]:
    """System calls per request, by name (strace -c)."""
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls = int(parts[3])
            out[parts[-1]] = round(calls / requests, 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="shin-profile-"))
    upstream, gateway, base, key = _start(workdir, args.tool, args.target)
    load = LoadGenerator()
    try:
        job = {"url": f"{base}/v1/chat/completions", "headers": {"Authorization": f"Bearer {key}"},
               "body": features.chat_body(args.model, args.stream), "stream": args.stream,
               "concurrency": args.concurrency, "requests": args.warmup, "warmup": 0}
        load.run(job)  # warm-up: caches, pools, the label and price caches
        names = thread_names(gateway.pid) if args.tool != "callgrind" else {}
        before_threads = thread_cpu(gateway.pid, names)
        before_us = user_system(gateway.pid)
        spy = None
        if args.tool == "callgrind":
            subprocess.run(["callgrind_control", "-z", str(gateway.pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-i", "on", str(gateway.pid)], check=True, capture_output=True)
        elif args.tool == "strace":
            spy = subprocess.Popen(["strace", "-f", "-c", "-p", str(gateway.pid), "-o", str(workdir / "strace.txt")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        elif args.tool == "pyspy":
            spy_argv = [str(Path(sys.executable).parent / "py-spy"), "record", "-r", str(args.rate), "-f", "raw",
                        "--threads", "-p", str(gateway.pid), "-o", str(workdir / "pyspy.txt")]
            if args.gil:
                spy_argv.append("--gil")
            if args.idle:
                spy_argv.append("--idle")
            spy = subprocess.Popen(spy_argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)
        started = time.monotonic()
        result = load.run({**job, "requests": args.requests})
        elapsed = time.monotonic() - started
        time.sleep(0.2)  # the writer's last batch (max_latency 50 ms) is part of the requests
        after_threads = thread_cpu(gateway.pid, names)
        after_us = user_system(gateway.pid)
        report: dict[str, Any] = {
            "tool": args.tool, "stream": args.stream, "concurrency": args.concurrency,
            "requests": args.requests, "model": args.model, "statuses": result["statuses"],
            "elapsed": elapsed,
            "user_ms_per_request": round((after_us[0] - before_us[0]) * 1000 / args.requests, 4),
            "system_ms_per_request": round((after_us[1] - before_us[1]) * 1000 / args.requests, 4),
            "thread_cpu_ms_per_request": {
                name: round((after_threads.get(name, 0) - before_threads.get(name, 0)) * 1000 / args.requests, 4)
                for name in sorted(after_threads)
            },
        }
        if args.tool == "callgrind":
            subprocess.run(["callgrind_control", "-d", str(gateway.pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-i", "off", str(gateway.pid)], check=True, capture_output=True)
            per_thread = _callgrind_totals(workdir, gateway.pid)
            total = sum(count for _, count, _ in per_thread)
            report["instructions_per_request"] = round(total / args.requests)
            report["threads"] = [
                {"thread": t, "instructions_per_request": round(c / args.requests), "top": top}
                for t, c, top in per_thread if c
            ]
        if spy is not None and args.tool == "strace":
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            report["syscalls"] = _strace_summary(workdir / "strace.txt", args.requests)
        elif spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)
            report["pyspy"] = _pyspy_summary(workdir / "pyspy.txt")
            if args.keep_raw:
                shutil.copy(workdir / "pyspy.txt", args.keep_raw)
        return report
    finally:
        load.close()
        for service in (gateway, upstream):
            try:
                service.stop(120)
            except BenchError:
                pass
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work folder: {workdir}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_gateway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool", choices=("callgrind", "pyspy", "cpu", "strace"), default="callgrind")
    parser.add_argument("--target", choices=("gateway", "floor"), default="gateway",
                        help="floor: bench/passthrough.py, the least an aiohttp proxy does")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--model", default=features.MODEL)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--gil", action="store_true", help="py-spy: only samples holding the GIL")
    parser.add_argument("--idle", action="store_true", help="py-spy: include idle threads")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--keep-raw", type=Path, help="py-spy: copy the raw collapsed stacks here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"profile: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    spy = report.pop("pyspy", None)
    threads = report.pop("threads", None)
    print(json.dumps(report, indent=2))
    for t in threads or ():
        print(f"thread {t['thread']}: {t['instructions_per_request']:,} instructions/request  {t['top'][:300]}")
    if spy:
        print(spy)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
