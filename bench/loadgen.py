"""The load generator: its own process, so its CPU never counts against the server measured.

The benchmark starts it once (`python -m bench.loadgen`) and sends one JSON job per line on
stdin; for each job it opens a fresh keep-alive ClientSession with `concurrency` connections,
sends `warmup` untimed requests (connections open, caches warm), then `requests` timed ones,
and answers with one JSON line: per-request latency and time to first byte (seconds), the
status counts and the wall-clock time of the timed part. EOF on stdin ends it.

A job: {"url", "headers", "body", "stream", "concurrency", "requests", "warmup"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp


async def _one(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes, stream: bool
) -> tuple[int, float, float]:
    """(status, latency, time to first byte) of one request, the whole body read."""
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        if stream:
            first = None
            async for _ in response.content.iter_any():
                if first is None:
                    first = time.perf_counter()
            done = time.perf_counter()
            return response.status, done - started, (first or done) - started
        await response.read()
        done = time.perf_counter()
        return response.status, done - started, done - started


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    url: str = job["url"]
    headers: dict[str, str] = {"Content-Type": "application/json", **job.get("headers", {})}
    body = json.dumps(job["body"]).encode()
    stream = bool(job.get("stream"))
    concurrency = int(job["concurrency"])
    total = int(job["requests"])
    warmup = int(job.get("warmup", concurrency))
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=60)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    ttfbs: list[float] = []
    failures: Counter[str] = Counter()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker(queue: list[int], record: bool) -> None:
            while queue:
                queue.pop()
                try:
                    status, latency, ttfb = await _one(session, url, headers, body, stream)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    failures[type(exc).__name__] += 1
                    continue
                statuses[status] += 1
                if record and status == 200:
                    latencies.append(latency)
                    ttfbs.append(ttfb)

        warm = list(range(warmup))
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        timed = list(range(total))
        started = time.perf_counter()
        await asyncio.gather(*(worker(timed, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started

    return {
        "sent": warmup + total,
        "timed": total,
        "elapsed": elapsed,
        "statuses": {str(k): v for k, v in statuses.items()},
        "failures": dict(failures),
        "latencies": latencies,
        "ttfbs": ttfbs,
    }


async def serve(stdin: Any, stdout: Any) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            return
        result = await run_job(json.loads(line))
        stdout.write(json.dumps(result) + "\n")
        stdout.flush()


def main() -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(serve(sys.stdin, sys.stdout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
