"""The headers on every LLM response: which log row it is, what it cost, whether to retry.

- Every answer, errors included, names its request-log row: `x-request-id` (the openai SDK
  shows it as `_request_id` and on its errors as `.request_id`) and LiteLLM's
  `x-litellm-call-id`, both the row's `request_id`. Answers that log no row (admin API,
  /health, /metrics, /ui, unknown paths) carry a fresh id of the same form (`name_response`):
  clients and load balancers that expect the header on every answer find it.
- The deployment that answered (`x-litellm-model-id`, `x-litellm-model-group`) and the
  upstream's own `x-ratelimit-*` headers, passed through as LiteLLM does.
- Non-streamed answers also carry the cost, the gateway's own time
  (`x-litellm-overhead-duration-ms`: time not spent waiting on the upstream call that answered,
  as the report computes it from the row) and, for a virtual key, its spend this budget period
  with this request included (`x-litellm-key-spend`).
- `x-should-retry` tells the openai SDK (which otherwise retries 408, 409, 429 and every 5xx
  twice) what a retry is worth; see `should_retry`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiohttp import web

from ..accounting.exchange import Exchange, new_request_id
from ..errors import BudgetExceeded, GatewayError
from ..server.accounts import ACCOUNTS

RATELIMIT_PREFIX = "x-ratelimit-"
_RATELIMIT_BYTES = RATELIMIT_PREFIX.encode()
#: Gateway answers a client retry cannot improve: the gateway already tried every deployment
#: and fallback it may (router_settings.num_retries, fallbacks), so a retry repeats all of it,
#: and a 504's upstream may have done (and billed) the work.
FINAL_STATUSES = frozenset({502, 503, 504})


def capture_upstream(ex: Exchange, raw_headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Keep the answering upstream's x-ratelimit-* headers (for the client and /metrics).

    Read from the response's raw header lines (the last of a repeated name wins, names in lower
    case, decoded as aiohttp decodes them): looking each up in its multidict cost more."""
    found = None
    for name, value in raw_headers:
        if name[:12].lower() == _RATELIMIT_BYTES:
            if found is None:
                found = {}
            found[name.lower().decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    ex.ratelimit = found


def stream_headers(ex: Exchange) -> dict[str, str]:
    headers = {"x-request-id": ex.request_id, "x-litellm-call-id": ex.request_id}
    if ex.target is not None:
        headers["x-litellm-model-id"] = ex.target.deployment_id
        headers["x-litellm-model-group"] = ex.model_group or ""
    if ex.ratelimit:
        headers.update(ex.ratelimit)
    return headers


def response_headers(app: web.Application, ex: Exchange) -> dict[str, str]:
    """For a non-streamed answer, once it is priced and about to be sent."""
    headers = stream_headers(ex)
    headers["x-litellm-response-cost"] = _number(ex.cost or 0.0)
    overhead = time.perf_counter() - ex.started
    if ex.upstream_started is not None and ex.upstream_finished is not None:
        overhead -= ex.upstream_finished - ex.upstream_started
    headers["x-litellm-overhead-duration-ms"] = f"{max(0.0, overhead) * 1000:.3f}"
    accounts = app.get(ACCOUNTS)
    principal = ex.principal
    spend = accounts.key_spend(principal.key_hash) if accounts and principal else None
    if spend is not None:
        headers["x-litellm-key-spend"] = _number(spend + (ex.cost or 0.0))
    return headers


async def name_response(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the id headers on an answer that has none (no request-log row)."""
    headers = response.headers
    if "x-request-id" not in headers:
        headers["x-request-id"] = headers["x-litellm-call-id"] = new_request_id()


def error_headers(exc: GatewayError, ex: Exchange | None) -> dict[str, str]:
    headers = dict(exc.headers)  # Retry-After of rate limits and cooldowns stays
    if ex is not None:
        headers["x-request-id"] = headers["x-litellm-call-id"] = ex.request_id
    retry = should_retry(exc)
    if retry is not None:
        headers["x-should-retry"] = "true" if retry else "false"
    return headers


def should_retry(exc: GatewayError) -> bool | None:
    """False where a client retry only costs (None: leave it to the client's own rules).

    - A budget 429 stays refused until the budget period ends: never retry.
    - 502/503/504 come after the gateway's own failover (FINAL_STATUSES). Clients that want
      more attempts set router_settings.num_retries / fallbacks, which retry without a round
      trip and on other deployments.
    - Rate-limit 429s (a key's rpm/tpm/parallel limit, every deployment cooling down) carry
      Retry-After and are worth retrying after it, as the SDK does.
    """
    if isinstance(exc, BudgetExceeded):
        return False
    if exc.status in FINAL_STATUSES:
        return False
    return None


def _number(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".") if value else "0"
