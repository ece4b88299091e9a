"""Calls to the upstream provider: one pooled ClientSession, errors mapped to our exceptions."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from ..accounting.exchange import Exchange
from ..errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from .router import Target

log = logging.getLogger("proxy.upstream")

# Connection-level failures worth trying on the next deployment: nothing reached the model.
RETRYABLE = (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)

def new_client_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,  # our concurrency is bounded by our clients; don't queue behind a pool cap
        limit_per_host=0,
        ttl_dns_cache=300,
        keepalive_timeout=30,
    )
    # HTTP(S)_PROXY, NO_PROXY and ~/.netrc are resolved once per deployment (router.env_route)
    # rather than by aiohttp's trust_env, which reads them again on every request in two
    # worker-thread hops (measured: a third of the gateway's CPU per request).
    return aiohttp.ClientSession(connector=connector, trust_env=False)


def upstream_payload(ex: Exchange, target: Target, include_usage: bool) -> bytes:
    """The body sent upstream: the client's, with the upstream model name."""
    payload = dict(ex.body or {})
    payload["model"] = target.upstream_model
    payload.pop("metadata", None)  # LiteLLM's own field, never forwarded
    if include_usage:
        options = dict(payload.get("stream_options") or {})
        options["include_usage"] = True
        payload["stream_options"] = options
    return json.dumps(payload).encode("utf-8")


@asynccontextmanager
async def open_upstream(
    session: aiohttp.ClientSession,
    ex: Exchange,
    targets: list[Target],
    path: str,
    *,
    stream: bool,
    include_usage: bool,
    max_retries: int | None,
    usage_unsupported: set[int] | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """POST to the first reachable target; yields a response with a 2xx status.

    Raises UpstreamUnreachable (502), UpstreamTimeout (504) or UpstreamError (the upstream's own
    status and body) — the caller never sees aiohttp's exceptions. `include_usage` asks a
    stream for its usage; an upstream that rejects `stream_options` is asked again without it
    and remembered in `usage_unsupported` (ids of targets), so its tokens are estimated.
    """
    # Failing over is safe only because nothing reached the model: connection errors only.
    attempts = targets if max_retries is None else targets[: max_retries + 1]
    unsupported = usage_unsupported if usage_unsupported is not None else set()
    client_asked = isinstance((ex.body or {}).get("stream_options"), dict)
    last_error: GatewayError | None = None
    for target in attempts:
        ex.target = target
        inject = include_usage and not client_asked and id(target) not in unsupported
        try:
            response = await _post(session, ex, target, path, stream=stream, include_usage=inject)
            if inject and response.status == 400:
                error = await _upstream_error(response, ex, target)
                response.release()
                if "stream_options" not in error.message:
                    raise error
                log.warning("upstream %s rejects stream_options: its stream usage will be "
                            "estimated", target.api_base)
                unsupported.add(id(target))
                response = await _post(session, ex, target, path, stream=stream, include_usage=False)
        except _Retryable as exc:
            last_error = exc.error
            continue
        try:
            if response.status >= 400:
                raise await _upstream_error(response, ex, target)
            yield response
        except TimeoutError:
            raise UpstreamTimeout(
                f"Upstream for model `{ex.model}` did not answer within {target.timeout:g}s."
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamUnreachable(
                f"Upstream for model `{ex.model}` broke off the response ({type(exc).__name__})."
            ) from None
        finally:
            response.release()
        return
    assert last_error is not None
    raise last_error


class _Retryable(Exception):
    """Nothing reached the model: the next deployment may be tried."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


async def _post(
    session: aiohttp.ClientSession, ex: Exchange, target: Target, path: str, *, stream: bool,
    include_usage: bool,
) -> aiohttp.ClientResponse:
    timeout = (
        aiohttp.ClientTimeout(total=None, sock_connect=target.timeout, sock_read=target.stream_timeout)
        if stream
        else aiohttp.ClientTimeout(total=target.timeout)
    )
    body = upstream_payload(ex, target, include_usage)
    ex.upstream_started = time.perf_counter()
    try:
        return await session.post(
            target.url(path), data=body, headers=target.headers, timeout=timeout,
            proxy=target.proxy, proxy_auth=target.proxy_auth, auth=target.auth,
        )
    except RETRYABLE as exc:
        log.warning("upstream %s unreachable: %s", target.api_base, exc)
        raise _Retryable(UpstreamUnreachable(
            f"Upstream for model `{ex.model}` is unreachable ({type(exc).__name__})."
        )) from None
    except TimeoutError:
        raise UpstreamTimeout(
            f"Upstream for model `{ex.model}` did not answer within {target.timeout:g}s."
        ) from None
    except aiohttp.ClientError as exc:
        raise UpstreamUnreachable(
            f"Upstream for model `{ex.model}` failed: {type(exc).__name__}."
        ) from None


async def _upstream_error(response: aiohttp.ClientResponse, ex: Exchange, target: Target) -> UpstreamError:
    raw = await response.read()
    body: dict[str, Any] | None = None
    try:
        parsed = json.loads(raw)
        body = parsed if isinstance(parsed, dict) else None
    except ValueError:
        pass
    message = None
    if body and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
    elif body and isinstance(body.get("error"), str):
        message = body["error"]
        body = None
    if not message:
        text = raw.decode("utf-8", "replace").strip()[:500]
        message = f"Upstream returned HTTP {response.status}" + (f": {text}" if text else "")
    return UpstreamError(response.status, str(message), body)
