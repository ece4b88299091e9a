"""Reading an LLM request's body: bounded in size, parsed once, and only after the caller is known.

Authentication comes from the headers alone; a caller it refuses never gets its body read
(four 24 MB bodies from strangers used to stall the event loop for seconds). Its row still
names the model asked for when the body starts with it: `model_from_prefix` reads the
top-level fields of the first PREFIX_BYTES without needing the rest.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring
from typing import Any

from aiohttp import web

from .. import jsonio
from ..accounting.exchange import Exchange
from ..errors import BadRequest, PayloadTooLarge

#: How much of a body is read to name the model of a request refused before its body is read.
PREFIX_BYTES = 64 * 1024
MIB = 1024 * 1024

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


async def read_prefix(request: web.Request, size: int = PREFIX_BYTES) -> bytes:
    """Up to `size` bytes of the body (less when it is shorter, or unreadable); the rest
    stays unread."""
    prefix = bytearray()
    try:
        while len(prefix) < size:
            chunk = await request.content.read(size - len(prefix))
            if not chunk:
                break
            prefix += chunk
    except web.RequestPayloadError:
        pass  # only wanted for the model name of a row that is an error already
    return bytes(prefix)


async def read_body(request: web.Request, ex: Exchange, limit_mb: float) -> bytearray:
    """The whole body, or PayloadTooLarge (413) past `limit_mb` MiB, refused on its
    Content-Length before any of it is read when that says so. A refused request's row
    names the model from the body's prefix."""
    limit = int(limit_mb * MIB)
    declared = request.content_length
    if declared is not None and declared > limit:
        ex.model = model_from_prefix(await read_prefix(request))
        raise _too_large(limit_mb)
    body = bytearray()
    try:
        while chunk := await request.content.readany():
            body += chunk
            if len(body) > limit:
                ex.model = model_from_prefix(bytes(body[:PREFIX_BYTES]))
                raise _too_large(limit_mb)
    except web.RequestPayloadError as exc:  # e.g. Content-Encoding: gzip on a body that is not
        cause = type(exc.__cause__ or exc).__name__
        raise BadRequest(f"Request body cannot be read ({cause}).", code="invalid_body") from None
    return body


def _too_large(limit_mb: float) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request body too large: the limit is {limit_mb:g} MiB "
        "(general_settings.max_request_body_mb).",
        code="request_too_large",
    )


def parse_body(raw: bytes | bytearray) -> tuple[dict[str, Any], bool]:
    """(the body as a JSON object, whether orjson read it — see jsonio), or BadRequest (400)
    saying what is wrong with it."""
    if not raw.strip():
        raise BadRequest("Request body is empty: expected a JSON object.", code="invalid_json")
    body = jsonio.loads(raw)
    if body is not jsonio.NOT_READ:
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object.", code="invalid_json")
        return body, True
    try:
        # Strict UTF-8 (a BOM allowed): json.loads(bytes) would also take UTF-16 and, through
        # 'surrogatepass', bytes that encode a lone surrogate, which is not UTF-8 at all.
        body = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"Request body is not valid UTF-8: {exc.reason} at byte {exc.start}.",
                         code="invalid_json") from None
    except ValueError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}.", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("Request body is nested too deeply.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.", code="invalid_json")
    return body, False


def model_from_prefix(prefix: bytes) -> str:
    """The top-level `model` of a JSON object whose text may be cut anywhere; '' if not seen."""
    # A character cut in half at the end becomes U+FFFD, which no key or model name before it needs.
    text = prefix.decode("utf-8", "replace")
    try:
        i = _SPACE.match(text).end()  # type: ignore[union-attr]
        if text[i : i + 1] != "{":
            return ""
        i += 1
        while True:
            i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
            if text[i : i + 1] != '"':
                return ""
            key, i = scanstring(text, i + 1)
            i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
            if text[i : i + 1] != ":":
                return ""
            value, i = _DECODER.raw_decode(text, _SPACE.match(text, i + 1).end())  # type: ignore[union-attr]
            if key == "model":
                return value if isinstance(value, str) else ""
            i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
            if text[i : i + 1] != ",":
                return ""
            i += 1
    except (ValueError, RecursionError):  # cut inside a value, or not JSON at all
        return ""
