"""One request-log row as the gateway builds it."""

from __future__ import annotations

import dataclasses
import functools
import operator
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .schema import LOG_COLUMNS
from .storable import INT64_MAX, INT64_MIN, storable


def utc_timestamp(epoch: float | None = None) -> str:
    """SQLite's own datetime format with milliseconds, in UTC: DATE() and datetime() compare it."""
    if epoch is None:
        epoch = time.time()
    millis = int(epoch * 1000)
    return f"{_utc_second(millis // 1000)}.{millis % 1000:03d}"


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    # Requests arrive many per second: format the date and time once per second.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(slots=True)
class RequestRecord:
    """Field names are column names (see schema.LOG_COLUMNS); units: seconds, USD."""

    timestamp: str
    request_id: str
    endpoint: str
    model: str = ""
    user_id: str | None = None
    messages: str | None = None
    response: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    status_code: int = 0
    stream: int = 0
    key_hash: str | None = None
    key_alias: str | None = None
    team_id: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    api_base: str | None = None
    time_to_first_token: float | None = None
    upstream_latency: float | None = None
    error_type: str | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    tokens_estimated: int = 0
    cost_status: str = "none"
    client_ip: str | None = None
    metadata: str | None = None
    model_group: str | None = None
    attempts: int = 0

    def as_row(self) -> dict[str, Any]:
        """The row to bind, every value storable (see storable.py): one bad value must not
        cost a batch of other people's rows."""
        return dict(zip(LOG_COLUMNS, self.as_values(), strict=True))

    def as_values(self) -> tuple[Any, ...]:
        """The row's values in LOG_COLUMNS order, every value storable (see as_row). Values
        that are storable as they are (ASCII text, 64-bit integers, finite floats, None:
        nearly all) are only checked."""
        values = _VALUES(self)
        fixed: list[Any] | None = None
        i = 0
        for value in values:
            kind = type(value)
            if not (
                (kind is str and value.isascii())
                or (kind is int and INT64_MIN <= value <= INT64_MAX)
                or (kind is float and value - value == 0.0)  # not NaN, not ±inf
                or value is None
            ):
                if fixed is None:
                    fixed = list(values)
                fixed[i] = storable(value)
            i += 1
        return values if fixed is None else tuple(fixed)


# Computed once: dataclasses.fields() per row showed up in the writer thread's profile.
_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RequestRecord))
assert set(_FIELD_NAMES) == set(LOG_COLUMNS), "RequestRecord's fields are the log's columns"
_VALUES = operator.attrgetter(*LOG_COLUMNS)


def row_dict(row: dict[str, Any] | tuple[Any, ...]) -> dict[str, Any]:
    """A row as column → value (rows are tuples in LOG_COLUMNS order on the writer's way in)."""
    return row if isinstance(row, dict) else dict(zip(LOG_COLUMNS, row, strict=True))
