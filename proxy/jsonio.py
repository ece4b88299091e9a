"""JSON on the request path: orjson wherever its result equals the standard library's.

Each request's body is parsed and written back out once, the upstream's answer (or each event
of a stream) parsed once: with the json module that was ~120 µs of the gateway's ~400 µs per
request, with orjson about a quarter of it (BENCHMARKS.md). orjson differs from json in a few
places, so it is only used where that cannot show:
- parsing: orjson refuses NaN/Infinity, lone surrogates, a UTF-8 BOM and anything not strictly
  JSON; whatever it refuses goes to the json module, which decides as before (its error
  messages included). Integers past 64 bits orjson would read as floats: a text with 19 or more
  digits in a row is left to json (`loads` says so by returning NOT_READ).
- writing: orjson writes NaN and infinities as null and refuses integers past 64 bits, lone
  surrogates and deep nesting; a value read by `loads` holds none of the first two, the others
  make it raise, and then json writes it. Its text is compact and UTF-8 (json's has spaces and
  \\u escapes): the same JSON, so it is only used for bytes a machine reads (the body sent
  upstream), never for text stored or shown.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

#: What `loads` returns for a text it leaves to the json module.
NOT_READ: Any = object()
# A digit run of 19 or more, found by mapping digits to "9" and the rest to a space: a table
# lookup per byte, where a regular expression took ~100 instructions per byte.
_DIGIT_OR_SPACE = bytes(0x39 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_NINES = b"9" * 19
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1


def loads(raw: bytes | bytearray) -> Any:
    """The JSON value of `raw`, or NOT_READ when the json module must read it instead
    (orjson refused it, or its result could differ)."""
    if _NINES in raw.translate(_DIGIT_OR_SPACE):
        return NOT_READ
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return NOT_READ


def dumps(value: Any, *, read_by_orjson: bool) -> bytes:
    """`value` as UTF-8 JSON bytes: orjson's when `read_by_orjson` (the value came from
    `loads`, plus parts `plain` approved), else json.dumps' text."""
    if read_by_orjson:
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:
            pass  # deep nesting, a surrogate, a huge integer: as json writes it (or refuses)
    return json.dumps(value).encode("utf-8")


def plain(value: Any) -> bool:
    """Would orjson write `value` as json does (as JSON): no NaN or infinity, no integer past
    64 bits, only string keys? For values built elsewhere than `loads` (the config's)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return _INT_MIN <= value <= _UINT_MAX
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(type(k) is str and plain(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(plain(v) for v in value)
    return False
