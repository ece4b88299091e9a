"""The state of one LLM request as it moves through the gateway.

Handlers fill it in; `accounting.RequestLogger.finish()` turns it into exactly one log row.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import GatewayError
from ..routing.router import Target
from ..server.auth import Principal
from .usage import TokenUsage


def new_request_id() -> str:
    """32 hex digits, time-ordered like a UUIDv7: 48 bits of milliseconds, then 80 random bits.

    Time order keeps the request_id index append-only (random ids cost the writer a B-tree
    insert at a random page per row); the id names a request, it guards nothing, so the
    non-cryptographic generator is enough.
    """
    return f"{int(time.time() * 1000):012x}{random.getrandbits(80):020x}"


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One call to one deployment and how it ended (per-deployment metrics count these)."""

    target: Target
    error: GatewayError | None = None  # None: the deployment answered 2xx
    reason: str = ""  # on failure: the upstream's status, "timeout" or "unreachable"


@dataclass(frozen=True, slots=True)
class FallbackTry:
    """A fallback model tried after the requested model's group failed with `error`."""

    group: str
    fallback: str
    error: GatewayError
    ok: bool


@dataclass(slots=True)
class Exchange:
    endpoint: str
    client_ip: str | None = None
    request_id: str = field(default_factory=lambda: new_request_id())
    started_wall: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    model: str = ""
    body: dict[str, Any] | None = None
    #: The body was parsed by orjson, so orjson may write it back out (jsonio).
    body_read_fast: bool = False
    tags_header: str | None = None  # x-litellm-tags, merged into the logged metadata
    stream: bool = False
    target: Target | None = None
    #: The model_name group of `target` (after aliases, wildcards and fallbacks).
    model_group: str | None = None
    #: What to route when it is not `model`: the target of the key's model alias (`model`
    #: keeps the name the client asked for).
    routed_model: str | None = None
    attempts: int = 0  # upstream calls made: retries on other deployments and fallbacks count
    #: When the request was sent upstream; None while (and unless) one has it. A connection
    #: that failed to open leaves it None: nothing reached a provider.
    upstream_started: float | None = None
    upstream_finished: float | None = None
    #: The HTTP status the upstream answered with (the last one, when it was asked twice).
    upstream_status: int | None = None
    first_token_at: float | None = None
    usage: TokenUsage | None = None
    response_text: str | None = None
    #: Output characters beside `response_text` (reasoning; tool calls next to text), for estimates.
    extra_output_chars: int = 0
    cost: float | None = None
    cost_status: str | None = None
    status: int = 0
    error_type: str | None = None
    error_message: str | None = None
    finished_at: float | None = None
    logged: bool = False
    #: Every upstream call in order, then the fallback models tried (for /metrics).
    calls: list[UpstreamCall] = field(default_factory=list)
    fallbacks: list[FallbackTry] = field(default_factory=list)
    #: The answering upstream's x-ratelimit-* headers: passed on to the client and to /metrics.
    ratelimit: dict[str, str] | None = None
    #: Per-hook scratch space (e.g. a rate limiter remembers it admitted this request).
    hook_state: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str | None:
        if self.principal is not None and self.principal.user_id:
            return self.principal.user_id
        user = self.body.get("user") if self.body else None
        return user if isinstance(user, str) and user else None

    def fail(self, status: int, error_type: str, message: str) -> None:
        self.status = status
        self.error_type = error_type
        self.error_message = message

    @property
    def billable(self) -> bool:
        """Did a provider take this request, so that it charges for it? Once sent, yes, even
        when the client hung up or the answer broke off — unless the provider refused it with
        an error status, which providers do not bill."""
        if self.upstream_started is None:
            return False
        return self.upstream_status is None or self.upstream_status < 400

    @property
    def latency(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return end - self.started

    @property
    def upstream_latency(self) -> float | None:
        if self.upstream_started is None:
            return None
        end = self.upstream_finished or self.finished_at or time.perf_counter()
        return end - self.upstream_started

    @property
    def time_to_first_token(self) -> float | None:
        if self.first_token_at is None:
            return None
        return self.first_token_at - self.started
