"""Server-sent events relayed chunk by chunk, with usage accounted on the way through.

When the client did not ask for usage (`stream_options.include_usage` is not `true`) we ask
the upstream for it and take it back out: the final usage-only event is dropped and the
`"usage":null` that OpenAI-style servers then add to every chunk is removed, so the client
receives exactly the stream it asked for while the log gets true token counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import aiohttp
import orjson
from aiohttp import web

from ..accounting import usage as usage_mod
from ..accounting.exchange import Exchange
from ..errors import CLIENT_CLOSED, GatewayError, ShutdownCancelled
from ..routing.fallbacks import open_model
from ..routing.router import Router
from ..routing.upstream import client_wants_usage
from ..server.shutdown import is_shutdown_cancel
from ..state import CONFIG
from .headers import capture_upstream, stream_headers

log = logging.getLogger("proxy.stream")
#: How long a stream cancelled by shutdown may take to send its closing error event.
CANCEL_WRITE_SECONDS = 1.0

_NULL_USAGE = (b',"usage":null', b', "usage": null')
# The decoder's own method: json.loads() on bytes first sniffs their encoding, which costs as
# much as the parse itself for a 200-byte chunk, 15 times a stream.
_DECODE = json.JSONDecoder().raw_decode
#: Delta fields StreamedOutput reads (tool calls, reasoning): a delta without them is plain text.
_OUTPUT_FIELDS = frozenset({"tool_calls", *usage_mod.REASONING_FIELDS})


class _StreamAccounting:
    """Parses each SSE data line once: collects text and usage, decides what the client sees.

    A block of complete lines is forwarded as it came unless an event has to go (the usage
    event the client did not ask for), so the common chunk costs one split and one parse.
    """

    def __init__(self, ex: Exchange, strip_usage: bool) -> None:
        self.ex = ex
        self.strip_usage = strip_usage
        self.text: list[str] = []
        self.output = usage_mod.StreamedOutput()  # tool calls and reasoning
        self.pending = b""
        self._skip_blank = False

    def feed(self, data: bytes) -> bytes:
        """Complete lines of `data` (plus any held-over partial line) → bytes to forward."""
        if (not self.pending and not self._skip_blank and data.startswith(b"data:")
                and data.find(b"\n") == len(data) - 2 and data.endswith(b"\n\n")):
            # One whole event, as most reads bring: what _block makes of it, in one step.
            if self._inspect(data):
                return b""  # the usage event the client did not ask for, and its blank line
            return self._strip_nulls(data)
        if self.pending:
            data = self.pending + data
        cut = data.rfind(b"\n") + 1
        self.pending = data[cut:]
        if not cut:
            return b""
        return self._block(data[:cut] if self.pending else data)

    def flush(self) -> bytes:
        """The last line, when the upstream ended without a newline."""
        rest, self.pending = self.pending, b""
        if not rest:
            return b""
        return self._block(rest + b"\n")[:-1]

    def _block(self, block: bytes) -> bytes:
        lines = block.split(b"\n")
        lines.pop()  # the block ends with a newline
        kept: list[bytes] | None = None  # built only once a line has to go
        i = 0
        for line in lines:
            drop = False
            if self._skip_blank:
                self._skip_blank = False
                drop = not line.strip()  # the blank line that ended a dropped event
            elif line[:5] == b"data:" and self._inspect(line):
                drop = self._skip_blank = True
            if drop:
                if kept is None:
                    kept = lines[:i]
            elif kept is not None:
                kept.append(line)
            i += 1
        if kept is not None:
            block = b"".join(line + b"\n" for line in kept)
        return self._strip_nulls(block)

    def _strip_nulls(self, block: bytes) -> bytes:
        if self.strip_usage and b"null" in block:
            for null in _NULL_USAGE:
                block = block.replace(null, b"")
        return block

    def finish(self) -> None:
        """Put what was streamed on the exchange (also after a hang-up or a break)."""
        self.ex.response_text, self.ex.extra_output_chars = self.output.finish("".join(self.text))

    def _inspect(self, line: bytes) -> bool:
        """Account one data line; True when it is the usage event the client did not ask for."""
        try:
            # JSON allows the spaces around the value; "data:" is skipped without a copy.
            chunk = orjson.loads(memoryview(line)[5:])
        except orjson.JSONDecodeError:
            chunk = _decode_slowly(line)  # anything orjson refuses, decided as before
        if type(chunk) is not dict:
            return False  # [DONE], or not JSON: forwarded untouched
        # The usual chunk (one choice, a delta of text, a role or nothing) is read here; any
        # other goes through delta_text and StreamedOutput, which this shortcut equals for it.
        choices = chunk.get("choices")
        delta = None
        if type(choices) is list and len(choices) == 1 and type(choices[0]) is dict:
            delta = choices[0].get("delta")
        if type(delta) is dict and _OUTPUT_FIELDS.isdisjoint(delta):
            text = delta.get("content")
            if type(text) is str and text:
                self.text.append(text)
                if self.ex.first_token_at is None:
                    self.ex.first_token_at = time.perf_counter()
        else:
            text = usage_mod.delta_text(chunk)
            if text:
                self.text.append(text)
            if (self.output.feed(chunk) or text) and self.ex.first_token_at is None:
                self.ex.first_token_at = time.perf_counter()
        usage = chunk.get("usage")
        if usage is None:
            return False
        found = usage_mod.from_openai(usage)
        if found is not None:
            self.ex.usage = found
        return self.strip_usage and found is not None and not chunk.get("choices")


def _decode_slowly(line: bytes) -> object:
    """The chunk of a data line as the standard decoder reads it (what may follow the JSON
    object is ignored); None when it is not a JSON object."""
    payload = line[5:].strip()
    if payload[:1] != b"{":
        return None
    try:
        return _DECODE(payload.decode("utf-8"))[0]
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nested too deeply
        return None


async def relay_stream(
    request: web.Request,
    ex: Exchange,
    session: aiohttp.ClientSession,
    router: Router,
    path: str,
) -> web.StreamResponse:
    acct = _StreamAccounting(ex, strip_usage=not client_wants_usage(ex.body))
    response: web.StreamResponse | None = None
    try:
        async with open_model(session, ex, router, path, stream=True, include_usage=True) as upstream:
            capture_upstream(ex, upstream.raw_headers)
            response = web.StreamResponse(
                status=200,
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **stream_headers(ex)},
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
        await _write_quietly(response, _event(exc))
    except (ConnectionResetError, aiohttp.ClientConnectionResetError) as exc:
        ex.fail(CLIENT_CLOSED, "client_disconnected", f"Client closed the stream ({type(exc).__name__}).")
    except asyncio.CancelledError:
        if response is not None and is_shutdown_cancel(request):
            # As for an upstream failing mid-stream: the client learns why the stream ends (the
            # openai SDK raises APIError with this message) rather than seeing a cut body. The
            # middleware logs the row; the write is bounded, a stalled client cannot hold shutdown.
            event = _event(ShutdownCancelled(request.app[CONFIG].general.shutdown_grace))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_end_with(response, event), CANCEL_WRITE_SECONDS)
        raise
    finally:
        acct.finish()
    assert response is not None
    if ex.status < 400:
        await _write_quietly(response, None)
    return response


def _event(exc: GatewayError) -> bytes:
    return b"data: " + json.dumps(exc.envelope()).encode() + b"\n\n"


async def _end_with(response: web.StreamResponse, event: bytes) -> None:
    await response.write(event)
    await response.write_eof()


async def _write_quietly(response: web.StreamResponse, data: bytes | None) -> None:
    try:
        if data is not None:
            await response.write(data)
        else:
            await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass
