"""Values SQLite will take: every row is made storable before it is bound.

Client text is arbitrary: JSON lets a request carry a lone UTF-16 surrogate ("\\ud800", what
JavaScript's `slice()` leaves of an emoji), which Python keeps in a `str` but cannot encode as
UTF-8, so sqlite3 refuses the whole statement. An upstream may report `"prompt_tokens": 1e19`,
past SQLite's 64-bit integers. A NaN cost would become NULL in a NOT NULL column. Each of these
used to throw away a whole batch of other people's rows; here they are repaired instead:

- text: valid UTF-8; a surrogate pair split into two code points is joined, a lone one becomes
  U+FFFD (the replacement character), so what was readable stays readable;
- integers: clamped to [-2**63, 2**63 - 1] (bools become 0/1);
- floats: finite; NaN becomes 0.0, ±inf the largest finite float of that sign;
- bytes: decoded as UTF-8 with replacement; anything else: its JSON (or str) text.

Runs on the writer thread (`RequestRecord.as_row()`), never on the event loop.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_FLOAT_MAX = sys.float_info.max


def storable(value: Any) -> Any:
    """`value` as something sqlite3 binds without error: None, int64, finite float, UTF-8 text."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else storable_text(value)
    if value is None:
        return None
    if kind is int:
        return value if INT64_MIN <= value <= INT64_MAX else clamp_int(value)
    if kind is float:
        return value if math.isfinite(value) else finite(value)
    if kind is bool:
        return int(value)
    return _other(value)


def storable_text(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        # Through UTF-16 with surrogatepass: pairs recombine, lone halves become U+FFFD.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clamp_int(value: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, value))


def finite(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return _FLOAT_MAX if value > 0 else -_FLOAT_MAX


def _other(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return clamp_int(int(value))
    if isinstance(value, float):
        return finite(float(value)) if not math.isfinite(value) else float(value)
    if isinstance(value, str):
        return storable_text(str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return storable_text(text)
