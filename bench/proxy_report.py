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
# Issue 16's targets, judged in the same run.
TARGET_SLOW_RATIO = 0.97  # c=50, 50 ms upstream: shin ≥ 97 % of direct req/s
TARGET_SLOW_ADDED_P50_MS = 2.0  # … and adds ≤ 2 ms at the median
TARGET_CPU_MS = {False: 0.25, True: 0.35}  # gateway CPU per request, pooled c=1/10/50
TARGET_ABOVE_FLOOR_MS = 0.1  # gateway CPU minus the floor's, same scenarios
TARGET_FLOOR_RATIO_C50 = 0.75  # instant upstream, c=50: shin ≥ 75 % of the floor's req/s
TARGET_ADDED_P50_C1_MS = 0.3
TARGET_RSS_MB = 100.0
RELAYS = ("floor", "nginx", "shin")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _label(stream: bool) -> str:
    return "stream" if stream else "non-stream"


def progress_line(run: Any) -> str:
    kind = "stream" if run.stream else "json  "
    p50 = percentile(run.latencies, 50) * 1000
    cpu = f" cpu {run.cpu * 1000 / run.sent:.3f} ms/req" if run.cpu is not None else ""
    bad = {k: v for k, v in run.statuses.items() if k != "200"}
    errors = f" NON-200 {bad}" if bad else ""
    errors += f" FAILED {run.failures}" if run.failures else ""
    upstream = getattr(run, "upstream", "")
    return (f"  {upstream:<7} {kind} c={run.concurrency:<3} {run.gateway:<7} {run.timed / run.elapsed:8.0f} req/s"
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
        "cpu_s": sum(cpu) if cpu else float("nan"),
    }


Scenario = tuple[str, bool, int]


def scenarios(result: dict[str, Any]) -> list[tuple[Scenario, dict[str, dict[str, float]]]]:
    """Per scenario (upstream, stream, concurrency), in run order: each relay's pooled figures."""
    keys: list[Scenario] = []
    names: list[str] = []
    for run in result["runs"]:
        key = (run.get("upstream", "instant"), run["stream"], run["concurrency"])
        if key not in keys:
            keys.append(key)
        if run["gateway"] not in names:
            names.append(run["gateway"])
    out = []
    for key in keys:
        by_gateway: dict[str, dict[str, float]] = {}
        for name in names:
            runs = [r for r in result["runs"] if r["gateway"] == name
                    and (r.get("upstream", "instant"), r["stream"], r["concurrency"]) == key]
            if runs:
                by_gateway[name] = _pool(runs)
        out.append((key, by_gateway))
    return out


def pooled_cpu(result: dict[str, Any], name: str, upstream: str, stream: bool) -> float:
    """CPU ms per request of `name` over c=1/10/50 of one upstream and kind (all its requests)."""
    runs = [r for r in result["runs"] if r["gateway"] == name and r["stream"] == stream
            and r.get("upstream", "instant") == upstream and r["cpu"] is not None]
    sent = sum(r["sent"] for r in runs)
    return sum(r["cpu"] for r in runs) * 1000 / sent if sent else float("nan")


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


def _name(key: Scenario) -> str:
    upstream, stream, concurrency = key
    return f"{upstream} {_label(stream)} c={concurrency}"


def render(result: dict[str, Any], *, rounds: int, requests: dict[Any, int], quick: bool) -> str:
    today = datetime.date.today().isoformat()
    table = scenarios(result)
    relays = [n for n in RELAYS if table and n in table[0][1]]
    nginx = result["others"].get("nginx", {}).get("version")
    counts = ", ".join(f"{n} at {u} c={c}" for (u, c), n in requests.items())
    lines = [
        "## Gateway proxy",
        "",
        f"Measured {today} on {machine()}" + (f"; nginx {nginx}" if nginx else "") + ".",
        "",
        "Command: `make bench` (= `.venv/bin/python -m bench`; this section alone: "
        "`.venv/bin/python -m bench proxy`)." + (" **Quick smoke run (`--quick`).**" if quick else ""),
        "",
        "Processes share the 2 cores as they are (no pinning): the fake upstream "
        "(`python -m proxy.fake_upstream`), one load-generator process (aiohttp client, keep-alive) "
        "and the relays measured side by side: **floor** = `bench/passthrough.py`, the least an "
        "aiohttp proxy does (read the body, forward it, relay the answer); **nginx** = Debian's "
        "nginx, one worker, keep-alive upstream, buffered access log; **shin** = the gateway "
        "(`python -m proxy serve`) with every feature on: a virtual key with a budget and rpm/tpm/"
        "parallel limits, pricing, the request log with prompts and answers stored, the access "
        "log (file), /metrics and the gateway budget. Chat completions, 15 events per stream; "
        "the upstream answers at once (instant) or after 50 ms. Each scenario runs every relay "
        f"in turn, alternating the order, {rounds} round(s) of timed requests ({counts}) after an "
        "untimed warm-up of max(c, 20). Latency = request sent to last byte read, in ms; TTFB = "
        "first body byte; added = relay minus direct. CPU = utime+stime of the relay's processes "
        "(all threads; nginx's master and worker; warm-up included) per request served.",
        "",
        "| scenario | direct req/s | " + " | ".join(f"{n} req/s" for n in relays)
        + " | shin/direct | shin/floor | direct p50 | " + " | ".join(f"added p50 {n}" for n in relays)
        + " | shin p99 | added TTFB p50 shin |",
        "| --- | " + " | ".join(["---:"] * (6 + 2 * len(relays))) + " |",
    ]
    for key, g in table:
        d, shin = g["direct"], g.get("shin")
        if shin is None:
            continue
        floor = g.get("floor")
        ttfb = _ms(shin["ttfb50"] - d["ttfb50"]) if key[1] else "–"
        lines.append(
            f"| {_name(key)} | {d['rps']:.0f} | " + " | ".join(f"{g[n]['rps']:.0f}" for n in relays)
            + f" | {shin['rps'] / d['rps']:.0%} | "
            + (f"{shin['rps'] / floor['rps']:.0%}" if floor else "–")
            + f" | {_ms(d['p50'])} | " + " | ".join(_ms(g[n]["p50"] - d["p50"]) for n in relays)
            + f" | {_ms(shin['p99'])} | {ttfb} |"
        )
    lines += ["", *_cpu_table(table, result, relays), *_others(table, result),
              *_targets(table, result)]
    return "\n".join(lines).rstrip() + "\n"


def _cpu_table(table: list[Any], result: dict[str, Any], relays: list[str]) -> list[str]:
    lines = ["CPU per request (ms), and the gateway's own cost: its CPU minus the floor's in the "
             "same scenario.", "",
             "| scenario | " + " | ".join(relays) + " | shin − floor |",
             "| --- | " + " | ".join(["---:"] * (len(relays) + 1)) + " |"]
    for key, g in table:
        if "shin" not in g:
            continue
        above = g["shin"]["cpu_ms"] - g["floor"]["cpu_ms"] if "floor" in g else float("nan")
        lines.append(f"| {_name(key)} | " + " | ".join(f"{g[n]['cpu_ms']:.3f}" for n in relays)
                     + f" | {above:.3f} |")
    for upstream in dict.fromkeys(k[0] for k, _ in table):
        for stream in (False, True):
            pooled = {n: pooled_cpu(result, n, upstream, stream) for n in relays}
            above = pooled["shin"] - pooled.get("floor", float("nan"))
            lines.append(f"| **{upstream} {_label(stream)}, pooled c=1/10/50** | "
                         + " | ".join(f"**{pooled[n]:.3f}**" for n in relays) + f" | **{above:.3f}** |")
    return [*lines, ""]


def _others(table: list[Any], result: dict[str, Any]) -> list[str]:
    names = [n for n in table[0][1] if n not in ("direct", *RELAYS)] if table else []
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
        for key, g in table:
            if name not in g or "shin" not in g:
                continue
            d, p, o = g["direct"], g["shin"], g[name]
            lines.append(f"| {_name(key)} | {d['rps']:.0f} | {p['rps']:.0f} | {o['rps']:.0f} | "
                         f"{o['rps'] / d['rps']:.0%} | {_ms(p['p50'])} | {_ms(o['p50'])} | "
                         f"{o['cpu_ms']:.3f} |")
        sent, rss = result["others"][name]["rss_at"]
        lines += ["", f"{name} RSS after {sent:,} requests: {rss / 2**20:.0f} MB.", ""]
    return lines


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _targets(table: list[Any], result: dict[str, Any]) -> list[str]:
    by_key = {key: g for key, g in table}
    lines = ["| target (issue 16) | measured | |", "| --- | --- | --- |"]
    slow = next((k[0] for k in by_key if k[0] != "instant"), None)
    for stream in (False, True):
        g = by_key.get((slow, stream, 50)) if slow else None
        if g and "shin" in g:
            ratio = g["shin"]["rps"] / g["direct"]["rps"]
            added = g["shin"]["p50"] - g["direct"]["p50"]
            lines.append(f"| {slow} upstream, c=50, {_label(stream)}: ≥ {TARGET_SLOW_RATIO:.0%} of direct "
                         f"req/s | {ratio:.1%} | {_mark(ratio >= TARGET_SLOW_RATIO)} |")
            lines.append(f"| {slow} upstream, c=50, {_label(stream)}: added p50 ≤ "
                         f"{TARGET_SLOW_ADDED_P50_MS:g} ms | {added:.2f} ms | "
                         f"{_mark(added <= TARGET_SLOW_ADDED_P50_MS)} |")
    for stream in (False, True):
        cpu = pooled_cpu(result, "shin", "instant", stream)
        floor = pooled_cpu(result, "floor", "instant", stream)
        target = TARGET_CPU_MS[stream]
        lines.append(f"| gateway CPU ≤ {target:g} ms/request, {_label(stream)}, pooled c=1/10/50 | "
                     f"{cpu:.3f} ms | {_mark(cpu <= target)} |")
        lines.append(f"| gateway CPU − floor CPU ≤ {TARGET_ABOVE_FLOOR_MS:g} ms, {_label(stream)}, pooled "
                     f"| {cpu - floor:.3f} ms ({floor:.3f} floor) | {_mark(cpu - floor <= TARGET_ABOVE_FLOOR_MS)} |")
    for stream in (False, True):
        g = by_key.get(("instant", stream, 50))
        if g and "shin" in g and "floor" in g:
            ratio = g["shin"]["rps"] / g["floor"]["rps"]
            lines.append(f"| instant upstream, c=50, {_label(stream)}: ≥ {TARGET_FLOOR_RATIO_C50:.0%} of the "
                         f"floor's req/s | {ratio:.0%} | {_mark(ratio >= TARGET_FLOOR_RATIO_C50)} |")
    for stream in (False, True):
        g = by_key.get(("instant", stream, 1))
        if g and "shin" in g:
            added = g["shin"]["p50"] - g["direct"]["p50"]
            lines.append(f"| added p50 ≤ {TARGET_ADDED_P50_C1_MS:g} ms at c=1, {_label(stream)} | "
                         f"{added:.2f} ms | {_mark(added <= TARGET_ADDED_P50_C1_MS)} |")
    sent, rss = result["rss_at"]
    rss_mb = rss / 2**20
    lines.append(f"| RSS ≤ {TARGET_RSS_MB:g} MB after 10,000 requests | {rss_mb:.0f} MB after "
                 f"{sent:,} ({result['rss_final'] / 2**20:.0f} MB after all {result['proxy_sent']:,}) "
                 f"| {_mark(rss_mb <= TARGET_RSS_MB)} |")
    sent_all = result["proxy_sent"]
    lines.append(f"| zero rows lost | {result['rows']:,} rows ({result['rows_ok']:,} with status 200) "
                 f"for {sent_all:,} requests sent; gateway exit code {result['exit_code']} after "
                 f"SIGTERM | {_mark(result['rows'] == sent_all and result['exit_code'] == 0)} |")
    every = (result.get("feature_rows") == sent_all and result.get("access_lines") == sent_all
             and result.get("metrics_requests") == sent_all)
    lines.append(f"| every feature on | {result.get('feature_rows', 0):,} rows priced, with the virtual "
                 f"key, prompt and answer stored; {result.get('access_lines', 0):,} access-log lines; "
                 f"/metrics counted {result.get('metrics_requests', 0):,.0f} requests | {_mark(every)} |")
    before, after = result.get("loadavg", ("?", "?"))
    lines += ["", f"Whole measured run: {result['duration']:.0f} s; 1-minute load average "
              f"{before} before, {after} after (anything above ~3 means other work shared the "
              "2 cores with the processes measured). How the gateway's own work was profiled and "
              "cut: the next section.", ""]
    return lines


def write_section(path: Path, section: str) -> None:
    replace_section(path, SECTION, section)
