"""Figures of the proxy benchmark as a Markdown section of BENCHMARKS.md, with the targets."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from .mdsection import replace_section

SECTION = "gateway-proxy"
TARGET_ADDED_P50_MS = 1.0
TARGET_RATIO_C50 = 0.40
TARGET_CPU_MS = 0.5
TARGET_RSS_MB = 100.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def progress_line(run: Any) -> str:
    kind = "stream" if run.stream else "json  "
    p50 = percentile(run.latencies, 50) * 1000
    cpu = f" cpu {run.cpu * 1000 / run.sent:.3f} ms/req" if run.cpu is not None else ""
    bad = {k: v for k, v in run.statuses.items() if k != "200"}
    errors = f" NON-200 {bad}" if bad else ""
    errors += f" FAILED {run.failures}" if run.failures else ""
    return (f"  {kind} c={run.concurrency:<3} {run.gateway:<7} {run.timed / run.elapsed:8.0f} req/s"
            f"  p50 {p50:7.2f} ms{cpu}{errors}")


def _pool(runs: list[dict[str, Any]]) -> dict[str, float]:
    lat = [x for r in runs for x in r["latencies"]]
    ttfb = [x for r in runs for x in r["ttfbs"]]
    cpu = [r["cpu"] for r in runs if r["cpu"] is not None]
    return {
        "rps": sum(r["timed"] for r in runs) / sum(r["elapsed"] for r in runs),
        "p50": percentile(lat, 50) * 1000,
        "p99": percentile(lat, 99) * 1000,
        "ttfb50": percentile(ttfb, 50) * 1000,
        "cpu_ms": sum(cpu) * 1000 / sum(r["sent"] for r in runs) if cpu else float("nan"),
        "sent": sum(r["sent"] for r in runs),
        "cpu_s": sum(cpu),
    }


def scenarios(result: dict[str, Any]) -> list[tuple[bool, int, dict[str, dict[str, float]]]]:
    out = []
    keys = []
    for run in result["runs"]:
        key = (run["stream"], run["concurrency"])
        if key not in keys:
            keys.append(key)
    for stream, concurrency in keys:
        by_gateway: dict[str, dict[str, float]] = {}
        names = []
        for run in result["runs"]:
            if run["gateway"] not in names:
                names.append(run["gateway"])
        for name in names:
            runs = [r for r in result["runs"] if (r["stream"], r["concurrency"], r["gateway"])
                    == (stream, concurrency, name)]
            if runs:
                by_gateway[name] = _pool(runs)
        out.append((stream, concurrency, by_gateway))
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        mem = "RAM unknown"
    versions = ", ".join(f"{name} {_version(name)}" for name in ("aiohttp", "uvloop"))
    return (f"{cpu}, {os.cpu_count()} cores, {mem}; Linux {platform.release()}; "
            f"Python {platform.python_version()}, {versions}")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _ms(value: float) -> str:
    return f"{value:.2f}"


def render(result: dict[str, Any], *, rounds: int, requests: dict[int, int], quick: bool) -> str:
    today = datetime.date.today().isoformat()
    table = scenarios(result)
    lines = [
        "## Gateway proxy",
        "",
        f"Measured {today} on {machine()}.",
        "",
        "Command: `make bench` (= `.venv/bin/python -m bench`; this section alone: "
        "`.venv/bin/python -m bench proxy`)." + (" **Quick smoke run (`--quick`).**" if quick else ""),
        "",
        "Three processes share the 2 cores as they are (no pinning): the fake upstream "
        "(`python -m proxy.fake_upstream`), the gateway (`python -m proxy serve`, master key, "
        "a priced model, SQLite request log, INFO access log to a file) and one load-generator "
        "process (aiohttp client, keep-alive). Chat completions, 12 content chunks per stream. "
        f"Each scenario runs direct and through the gateway alternately, {rounds} round(s) of "
        + ", ".join(f"{n} timed requests at c={c}" for c, n in requests.items())
        + " (after an untimed warm-up of max(c, 20) requests). Latency = request sent to last "
        "byte read, in ms; TTFB = first body byte. CPU = utime+stime of the gateway process "
        "(all threads, warm-up included) per request it served. The direct figures include the "
        "load generator competing for the same cores, as do the proxy ones.",
        "",
        "| scenario | direct req/s | proxy req/s | proxy/direct | direct p50 | proxy p50 | "
        "added p50 | direct p99 | proxy p99 | added TTFB p50 | proxy CPU ms/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for stream, concurrency, g in table:
        d, p = g["direct"], g["proxy"]
        ttfb = _ms(p["ttfb50"] - d["ttfb50"]) if stream else "–"
        lines.append(
            f"| {'stream' if stream else 'non-stream'} c={concurrency} | {d['rps']:.0f} | "
            f"{p['rps']:.0f} | {p['rps'] / d['rps']:.0%} | {_ms(d['p50'])} | {_ms(p['p50'])} | "
            f"{_ms(p['p50'] - d['p50'])} | {_ms(d['p99'])} | {_ms(p['p99'])} | {ttfb} | "
            f"{p['cpu_ms']:.3f} |"
        )
    lines += ["", *_floor(table), *_others(table, result), *_targets(table, result)]
    return "\n".join(lines).rstrip() + "\n"


def _floor(table: list[Any]) -> list[str]:
    """The gateway beside a bare aiohttp passthrough (bench/passthrough.py) of the same run."""
    if not table or "floor" not in table[0][2]:
        return []
    lines = ["The floor, in the same run: `bench/passthrough.py`, the least an aiohttp proxy can do "
             "(read the body, forward it, relay the answer; no auth, accounting, logging or SQLite). "
             "The gateway's own cost per request is the difference.", "",
             "| scenario | direct req/s | floor req/s | floor/direct | shin req/s | shin/direct | "
             "floor CPU ms/req | shin CPU ms/req |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for stream, concurrency, g in table:
        d, p, f = g["direct"], g["proxy"], g["floor"]
        lines.append(f"| {'stream' if stream else 'non-stream'} c={concurrency} | {d['rps']:.0f} | "
                     f"{f['rps']:.0f} | {f['rps'] / d['rps']:.0%} | {p['rps']:.0f} | "
                     f"{p['rps'] / d['rps']:.0%} | {f['cpu_ms']:.3f} | {p['cpu_ms']:.3f} |")
    return [*lines, ""]


def _others(table: list[Any], result: dict[str, Any]) -> list[str]:
    names = [n for n in table[0][2] if n not in ("direct", "proxy", "floor")] if table else []
    if not names:
        return ["LiteLLM proxy: not measured in this run. To add it side by side: "
                "`python3 -m venv .bench/litellm-venv && .bench/litellm-venv/bin/pip install "
                "'litellm[proxy]'`, then `make bench` again.", ""]
    lines = []
    for name in names:
        version = result["others"][name].get("version", "")
        lines += [f"Side by side, the LiteLLM proxy {version} (`litellm --config … --num_workers 1`, "
                  "master key, no database; same fake upstream, same concurrency, interleaved in "
                  "the same run, a tenth of the requests per run):", "",
                  "| scenario | direct req/s | shin req/s | " + name + " req/s | " + name
                  + "/direct | shin p50 | " + name + " p50 | " + name + " CPU ms/req |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for stream, concurrency, g in table:
            d, p, o = g["direct"], g["proxy"], g[name]
            lines.append(f"| {'stream' if stream else 'non-stream'} c={concurrency} | {d['rps']:.0f} "
                         f"| {p['rps']:.0f} | {o['rps']:.0f} | {o['rps'] / d['rps']:.0%} | "
                         f"{_ms(p['p50'])} | {_ms(o['p50'])} | {o['cpu_ms']:.3f} |")
        sent, rss = result["others"][name]["rss_at"]
        lines += ["", f"{name} RSS after {sent:,} requests: {rss / 2**20:.0f} MB.", ""]
    return lines


def _targets(table: list[Any], result: dict[str, Any]) -> list[str]:
    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    by_key = {(s, c): g for s, c, g in table}
    lines = ["| target | measured | |", "| --- | --- | --- |"]
    for stream in (False, True):
        label = "stream" if stream else "non-stream"
        g = by_key.get((stream, 1))
        if g:
            added = g["proxy"]["p50"] - g["direct"]["p50"]
            lines.append(f"| added p50 ≤ {TARGET_ADDED_P50_MS:g} ms at c=1 ({label}) | "
                         f"{added:.2f} ms | {mark(added <= TARGET_ADDED_P50_MS)} |")
    for stream in (False, True):
        label = "stream" if stream else "non-stream"
        g = by_key.get((stream, 50))
        if g:
            ratio = g["proxy"]["rps"] / g["direct"]["rps"]
            lines.append(f"| proxy ≥ {TARGET_RATIO_C50:.0%} of direct req/s at c=50 ({label}) | "
                         f"{ratio:.0%} | {mark(ratio >= TARGET_RATIO_C50)} |")
    for stream in (False, True):
        pooled = [g["proxy"] for s, _, g in table if s == stream]
        if pooled:
            cpu_ms = sum(p["cpu_s"] for p in pooled) * 1000 / sum(p["sent"] for p in pooled)
            label = "stream" if stream else "non-stream"
            lines.append(f"| CPU ≤ {TARGET_CPU_MS:g} ms/request ({label}, all concurrencies) | "
                         f"{cpu_ms:.3f} ms | {mark(cpu_ms <= TARGET_CPU_MS)} |")
    sent, rss = result["rss_at"]
    rss_mb = rss / 2**20
    lines.append(f"| RSS ≤ {TARGET_RSS_MB:g} MB after 10,000 requests | {rss_mb:.0f} MB after "
                 f"{sent:,} ({result['rss_final'] / 2**20:.0f} MB after all {result['proxy_sent']:,}) "
                 f"| {mark(rss_mb <= TARGET_RSS_MB)} |")
    lost = result["proxy_sent"] - result["rows"]
    lines.append(f"| zero rows lost | {result['rows']:,} rows ({result['rows_ok']:,} with status 200) "
                 f"for {result['proxy_sent']:,} requests sent; gateway exit code "
                 f"{result['exit_code']} after SIGTERM | {mark(lost == 0)} |")
    before, after = result.get("loadavg", ("?", "?"))
    lines += ["", f"Whole measured run: {result['duration']:.0f} s; 1-minute load average "
              f"{before} before, {after} after (anything above ~3 means other work shared the "
              "2 cores with the three processes measured).", ""]
    return lines


def write_section(path: Path, section: str) -> None:
    replace_section(path, SECTION, section)
