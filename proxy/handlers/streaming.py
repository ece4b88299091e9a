"""Server-sent events relayed chunk by chunk, with usage accounted on the way through.

When the client did not ask for usage we ask the upstream for it (stream_options.include_usage)
and take it back out: the final usage-only event is dropped and the `"usage":null` that
OpenAI-style servers then add to every chunk is removed, so the client receives exactly the
stream it asked for while the log gets true token counts.
"""

from __future__ import annotations

import json
import logging
import time

import aiohttp
from aiohttp import web

from .. import usage as usage_mod
from ..errors import GatewayError
from ..exchange import Exchange
from ..router import Target
from ..upstream import open_upstream

log = logging.getLogger("proxy.stream")

CLIENT_CLOSED = 499  # nginx's status for "client closed the connection"
_NULL_USAGE = (b',"usage":null', b', "usage": null')


class _StreamAccounting:
    """Parses each SSE line once: collects text and usage, decides what the client sees."""

    def __init__(self, ex: Exchange, strip_usage: bool) -> None:
        self.ex = ex
        self.strip_usage = strip_usage
        self.text: list[str] = []
        self.pending = b""
        self._skip_blank = False

    def feed(self, data: bytes) -> bytes:
        """Complete lines of `data` (plus any held-over partial line) → bytes to forward."""
        data = self.pending + data
        cut = data.rfind(b"\n") + 1
        self.pending = data[cut:]
        if not cut:
            return b""
        out = []
        for line in data[:cut].splitlines(keepends=True):
            kept = self._line(line)
            if kept is not None:
                out.append(kept)
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        if not rest:
            return b""
        kept = self._line(rest)
        return kept or b""

    def _line(self, line: bytes) -> bytes | None:
        if not line.startswith(b"data:"):
            if self._skip_blank and not line.strip():
                self._skip_blank = False  # the blank line that ended a dropped event
                return None
            return line
        payload = line[5:].strip()
        if payload == b"[DONE]" or not payload:
            return line
        try:
            chunk = json.loads(payload)
        except ValueError:
            return line
        if not isinstance(chunk, dict):
            return line
        text = usage_mod.delta_text(chunk)
        if text:
            if self.ex.first_token_at is None:
                self.ex.first_token_at = time.perf_counter()
            self.text.append(text)
        found = usage_mod.from_openai(chunk.get("usage"))
        if found is not None:
            self.ex.usage = found
        if self.strip_usage:
            if found is not None and not chunk.get("choices"):
                self._skip_blank = True
                return None  # the usage-only event we asked for; the client did not
            for null in _NULL_USAGE:
                if null in line:
                    return line.replace(null, b"")
        return line


async def relay_stream(
    request: web.Request,
    ex: Exchange,
    session: aiohttp.ClientSession,
    targets: list[Target],
    path: str,
    max_retries: int,
) -> web.StreamResponse:
    options = (ex.body or {}).get("stream_options")
    client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    acct = _StreamAccounting(ex, strip_usage=not client_wants_usage)
    response: web.StreamResponse | None = None
    try:
        async with open_upstream(
            session, ex, targets, path, stream=True, include_usage=True, max_retries=max_retries
        ) as upstream:
            response = web.StreamResponse(
                status=200,
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "x-litellm-call-id": ex.request_id,
                },
            )
            await response.prepare(request)
            ex.status = 200
            async for data in upstream.content.iter_any():
                out = acct.feed(data)
                if out:
                    await response.write(out)
            tail = acct.flush()
            if tail:
                await response.write(tail)
            ex.upstream_finished = time.perf_counter()
    except GatewayError as exc:
        if response is None:
            raise  # nothing sent yet: the middleware answers with the error envelope
        # Headers already went out as 200: tell the client in-band, log the real outcome.
        ex.fail(exc.status, exc.type, exc.message)
        await _write_quietly(response, b"data: " + json.dumps(exc.envelope()).encode() + b"\n\n")
    except (ConnectionResetError, aiohttp.ClientConnectionResetError) as exc:
        ex.fail(CLIENT_CLOSED, "client_disconnected", f"Client closed the stream ({type(exc).__name__}).")
    finally:
        ex.response_text = "".join(acct.text)
    assert response is not None
    if ex.status < 400:
        await _write_quietly(response, None)
    return response


async def _write_quietly(response: web.StreamResponse, data: bytes | None) -> None:
    try:
        if data is not None:
            await response.write(data)
        else:
            await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass
