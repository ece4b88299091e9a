"""The soak benchmark's client: its own process (like bench/loadgen.py), so its CPU never
counts against the gateway.

It reads one JSON job on stdin, sends `requests` chat completions with `concurrency`
keep-alive connections — every `stream_every`-th streamed, every `hangup_every`-th abandoned
by the client (a stream after its first chunk, a plain request before its answer) — and
writes `{"progress": N}` lines as they complete, so the benchmark can sample the gateway's
memory and send SIGTERM near the end, then one result line. Each request carries
`"user": "soak-<i>"`, which the gateway logs as `user_id`: rows are matched to requests.

loadgen.py sends one body per job and reads every answer to the end; the soak needs mixed
requests, hang-ups, an identity per request and progress, hence this sibling.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

HANGUP_AFTER = 0.005  # seconds a plain request lives before its client abandons it


async def _one(session: aiohttp.ClientSession, job: dict[str, Any], i: int) -> tuple[str, float | None]:
    """(outcome, latency of a completed non-streamed request): "status:200", "hangup", "error:X"."""
    stream = i % job["stream_every"] == 0
    hangup = i % job["hangup_every"] == job["hangup_every"] // 2
    body = {"model": job["model"], "user": f"soak-{i}", "stream": stream,
            "messages": [{"role": "user", "content": f"soak request {i}: how long is a piece of string?"}]}
    started = time.perf_counter()
    try:
        if hangup and not stream:
            try:
                await asyncio.wait_for(_complete(session, job, body), HANGUP_AFTER)
            except TimeoutError:
                return "hangup", None  # cancelled mid-request: aiohttp drops the connection
            return "answered-before-hangup", None
        async with session.post(job["url"], json=body, headers=job["headers"]) as response:
            if hangup:
                await response.content.readany()
                response.close()  # closes the connection, mid-stream
                return "hangup", None
            await response.read()
            latency = time.perf_counter() - started
            return f"status:{response.status}", (latency if not stream and response.status == 200 else None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"error:{type(exc).__name__}", None


async def _complete(session: aiohttp.ClientSession, job: dict[str, Any], body: dict[str, Any]) -> None:
    async with session.post(job["url"], json=body, headers=job["headers"]) as response:
        await response.read()


async def run(job: dict[str, Any], out: Any) -> dict[str, Any]:
    total, concurrency = int(job["requests"]), int(job["concurrency"])
    every = int(job.get("progress_every", 500))
    outcomes: list[str] = [""] * total
    latencies: list[float] = []
    done = 0
    next_index = 0
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def worker() -> None:
            nonlocal done, next_index
            while next_index < total:
                i = next_index
                next_index += 1
                outcome, latency = await _one(session, job, i)
                outcomes[i] = outcome
                if latency is not None:
                    latencies.append(latency)
                done += 1
                if done % every == 0:
                    out.write(json.dumps({"progress": done}) + "\n")
                    out.flush()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "outcomes": outcomes, "latencies": latencies}


def main() -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    job = json.loads(sys.stdin.readline())
    result = asyncio.run(run(job, sys.stdout))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
