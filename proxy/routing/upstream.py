"""One call to one deployment: the pooled ClientSession, the body sent, failures classified.

Every failure becomes an `AttemptFailed` saying what it means for routing: the deployment is
at fault (try another, count it towards a cooldown), the prompt is too long for the model or
was refused on content policy (the matching fallbacks apply), or the request itself is wrong
(returned to the client as is). The caller never sees aiohttp's exceptions.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any

import aiohttp

from .. import jsonio
from ..accounting.exchange import Exchange
from ..errors import BadRequest, GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from .cooldowns import counts_against_deployment
from .target import Target

log = logging.getLogger("proxy.upstream")

DEPLOYMENT = "deployment"  # the deployment failed: another may answer
CONTEXT_WINDOW = "context_window"  # the prompt does not fit this model
CONTENT_POLICY = "content_policy"  # the model refused the content
CLIENT = "client"  # the request is wrong wherever it goes

# How providers say a prompt is too long / was refused (OpenAI's codes, then message wording
# of OpenAI, Azure, vLLM and others, as LiteLLM's exception mapping recognises them).
_CONTEXT_CODES = {"context_length_exceeded", "string_above_max_length"}
_CONTEXT_WORDS = ("maximum context length", "context length", "context window", "too many tokens",
                  "prompt is too long", "input is too long", "reduce the length")
_POLICY_CODES = {"content_policy_violation", "content_filter"}
_POLICY_WORDS = ("content policy", "content management policy", "safety system",
                 "content_policy_violation", "responsible ai")


class AttemptFailed(Exception):
    """One attempt failed; `kind` says what routing does next, `error` what the client sees."""

    def __init__(self, error: GatewayError, kind: str, reason: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.kind = kind
        self.reason = reason  # for cooldown counts: a status code, "timeout" or "unreachable"


def new_client_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,  # our concurrency is bounded by our clients; don't queue behind a pool cap
        limit_per_host=0,
        ttl_dns_cache=300,
        keepalive_timeout=30,
    )
    # HTTP(S)_PROXY, NO_PROXY and ~/.netrc are resolved once per deployment (target.env_proxy, target.netrc_login)
    # rather than by aiohttp's trust_env, which reads them again on every request in two
    # worker-thread hops (measured: a third of the gateway's CPU per request).
    return aiohttp.ClientSession(connector=connector, trust_env=False)


def client_wants_usage(body: dict[str, Any] | None) -> bool:
    """Did the client ask for the stream's usage itself? Only `include_usage: true` does:
    `stream_options: {}` or `include_usage: false` leaves the usage ours to ask for and hide."""
    options = (body or {}).get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def upstream_payload(body: dict[str, Any] | None, target: Target, include_usage: bool,
                     *, read_fast: bool = False) -> bytes:
    """The body sent upstream: the client's, with the upstream model name and the deployment's
    default request parameters where the client set none. `read_fast`: orjson read the body
    (jsonio), so orjson may write it."""
    payload = {**target.default_params, **(body or {})} if target.default_params else dict(body or {})
    payload["model"] = target.upstream_model
    payload.pop("metadata", None)  # LiteLLM's own fields, never forwarded
    payload.pop("tags", None)
    if include_usage:
        options = payload.get("stream_options")
        payload["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    try:
        return jsonio.dumps(payload, read_by_orjson=read_fast and target.default_params_plain)
    except RecursionError:  # parsed, but too deep to write back out from further down the stack
        raise BadRequest("Request body is nested too deeply.", code="invalid_json") from None


async def attempt(
    session: aiohttp.ClientSession,
    ex: Exchange,
    target: Target,
    path: str,
    *,
    stream: bool,
    include_usage: bool,
    usage_unsupported: set[str],
) -> aiohttp.ClientResponse:
    """POST to `target`; a response with a 2xx status, or AttemptFailed.

    `include_usage` asks a stream for its usage; an upstream that rejects `stream_options` is
    asked again without it and remembered in `usage_unsupported` (deployment ids), so its
    tokens are estimated.
    """
    client_asked = client_wants_usage(ex.body)
    inject = include_usage and not client_asked and target.deployment_id not in usage_unsupported
    response = await _post(session, ex, target, path, stream=stream, include_usage=inject)
    if inject and response.status == 400:
        error = await _upstream_error(response)
        response.release()
        if "stream_options" not in error.message:
            raise classify(error)
        log.warning("upstream %s rejects stream_options: its stream usage will be estimated",
                    target.public_api_base)
        usage_unsupported.add(target.deployment_id)
        response = await _post(session, ex, target, path, stream=stream, include_usage=False)
    ex.upstream_status = response.status
    if response.status >= 400:
        error = await _upstream_error(response)
        response.release()
        raise classify(error)
    return response


def classify(error: UpstreamError) -> AttemptFailed:
    if counts_against_deployment(error.status):
        return AttemptFailed(error, DEPLOYMENT, str(error.status))
    code = ""
    if error.body and isinstance(error.body.get("error"), dict):
        code = str(error.body["error"].get("code") or "").lower()
    text = error.message.lower()
    if code in _CONTEXT_CODES or any(w in text for w in _CONTEXT_WORDS):
        return AttemptFailed(error, CONTEXT_WINDOW, str(error.status))
    if code in _POLICY_CODES or any(w in text for w in _POLICY_WORDS):
        return AttemptFailed(error, CONTENT_POLICY, str(error.status))
    return AttemptFailed(error, CLIENT, str(error.status))


async def _post(
    session: aiohttp.ClientSession, ex: Exchange, target: Target, path: str, *, stream: bool,
    include_usage: bool,
) -> aiohttp.ClientResponse:
    timeout = _client_timeout(stream, target.timeout, target.stream_timeout)
    body = upstream_payload(ex.body, target, include_usage, read_fast=ex.body_read_fast)
    # upstream_started says a provider has the request (Exchange.billable, the latency
    # percentiles): a connection that never opened puts back what an earlier attempt left.
    earlier, ex.upstream_started = ex.upstream_started, time.perf_counter()
    try:
        return await session.post(
            target.url(path), data=body, headers=target.headers, timeout=timeout,
            proxy=target.proxy, proxy_auth=target.proxy_auth,
        )
    except aiohttp.ConnectionTimeoutError:
        ex.upstream_started = earlier
        raise AttemptFailed(UpstreamTimeout(
            f"Upstream for model `{ex.model}` did not accept a connection within {target.timeout:g}s."
        ), DEPLOYMENT, "timeout") from None
    except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
        ex.upstream_started = earlier
        log.warning("upstream %s unreachable: %s", target.public_api_base, type(exc).__name__)
        raise AttemptFailed(UpstreamUnreachable(
            f"Upstream for model `{ex.model}` is unreachable ({type(exc).__name__})."
        ), DEPLOYMENT, "unreachable") from None
    except TimeoutError:
        raise AttemptFailed(UpstreamTimeout(
            f"Upstream for model `{ex.model}` did not answer within {target.timeout:g}s."
        ), DEPLOYMENT, "timeout") from None
    except aiohttp.ClientError as exc:
        raise AttemptFailed(UpstreamUnreachable(
            f"Upstream for model `{ex.model}` failed: {type(exc).__name__}."
        ), DEPLOYMENT, "unreachable") from None


@functools.lru_cache(maxsize=256)
def _client_timeout(stream: bool, timeout: float, stream_timeout: float) -> aiohttp.ClientTimeout:
    """A stream waits `stream_timeout` for each read; an answer `timeout` in all (frozen, so
    shared by every request of a deployment)."""
    if stream:
        return aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=stream_timeout)
    return aiohttp.ClientTimeout(total=timeout)


async def _upstream_error(response: aiohttp.ClientResponse) -> UpstreamError:
    raw = await response.read()
    body: dict[str, Any] | None = None
    try:
        parsed = json.loads(raw)
        body = parsed if isinstance(parsed, dict) else None
    except (ValueError, RecursionError):
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
