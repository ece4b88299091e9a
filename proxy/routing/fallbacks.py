"""A request's way to an answer: the model's deployments in turn, then its fallback models.

  1. The deployments of the model (strategy order, cooling ones left out) are tried one after
     another while they fail as deployments do (unreachable, timeout, 401/403/404/408/429,
     5xx), at most `num_retries` + 1 of them.
  2. When all of those failed, or every deployment is cooling down, the model's `fallbacks`
     are tried in order, each the same way. A prompt too long for the model goes to its
     `context_window_fallbacks` instead, a content-policy refusal to its
     `content_policy_fallbacks`; any other client error is returned at once.

All of this happens before a byte goes to the client: once a deployment answers 2xx, its
response is the one the client gets. The Exchange records the deployment that answered (or
failed last), its model group, and how many upstream calls it took.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp

from ..accounting.exchange import Exchange, FallbackTry, UpstreamCall
from ..errors import (
    GatewayError,
    NoDeploymentAvailable,
    NoDeploymentEnabled,
    NotFound,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from .router import Router
from .upstream import CLIENT, CONTENT_POLICY, CONTEXT_WINDOW, DEPLOYMENT, AttemptFailed, attempt

log = logging.getLogger("proxy.routing")

#: Which fallback list a failure of each kind turns to.
FALLBACK_LIST = {
    DEPLOYMENT: "fallbacks",
    CONTEXT_WINDOW: "context_window_fallbacks",
    CONTENT_POLICY: "content_policy_fallbacks",
}


class _GroupFailed(Exception):
    def __init__(self, error: GatewayError, kind: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.kind = kind


@contextlib.asynccontextmanager
async def open_model(
    session: aiohttp.ClientSession,
    ex: Exchange,
    router: Router,
    path: str,
    *,
    stream: bool,
    include_usage: bool,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Yields the first 2xx response for `ex.model`, per the rules above; raises the
    GatewayError the client should see when none came."""
    async with contextlib.AsyncExitStack() as stack:
        response = await _first_answer(session, ex, router, path, stack, stream, include_usage)
        target = ex.target
        try:
            yield response
        except TimeoutError:
            assert target is not None
            raise UpstreamTimeout(
                f"Upstream for model `{ex.model}` did not answer within {target.timeout:g}s."
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamUnreachable(
                f"Upstream for model `{ex.model}` broke off the response ({type(exc).__name__})."
            ) from None
        finally:
            response.release()


async def _first_answer(
    session: aiohttp.ClientSession, ex: Exchange, router: Router, path: str,
    stack: contextlib.AsyncExitStack, stream: bool, include_usage: bool,
) -> aiohttp.ClientResponse:
    try:
        return await _try_model(session, ex, router, ex.routed_model or ex.model, path, stack, stream, include_usage)
    except _GroupFailed as failed:
        first = failed
    if first.kind == CLIENT:
        raise first.error
    group = router.group_of(ex.routed_model or ex.model) or ex.routed_model or ex.model
    chain = router.fallbacks_for(group, FALLBACK_LIST[first.kind])
    last = first
    for model in chain:
        if router.group_of(model) is None:
            log.warning("fallback %r of model %r does not exist; skipped", model, group)
            continue
        log.info("model %s failed (%s): falling back to %s", group, first.kind, model)
        try:
            response = await _try_model(session, ex, router, model, path, stack, stream, include_usage)
        except _GroupFailed as failed:
            ex.fallbacks.append(FallbackTry(group, model, first.error, ok=False))
            last = failed
            if failed.kind == CLIENT:
                break
            continue
        ex.fallbacks.append(FallbackTry(group, model, first.error, ok=True))
        return response
    raise last.error


async def _try_model(
    session: aiohttp.ClientSession, ex: Exchange, router: Router, model: str, path: str,
    stack: contextlib.AsyncExitStack, stream: bool, include_usage: bool,
) -> aiohttp.ClientResponse:
    try:
        group, targets = router.candidates(model)
    except (NoDeploymentAvailable, NoDeploymentEnabled) as exc:
        ex.model_group = router.group_of(model)
        raise _GroupFailed(exc, DEPLOYMENT) from None
    except NotFound as exc:
        raise _GroupFailed(exc, CLIENT) from None
    if router.max_retries is not None:
        targets = targets[: router.max_retries + 1]
    last: AttemptFailed | None = None
    for target in targets:
        ex.target = target
        ex.model_group = group
        ex.attempts += 1
        tracked = contextlib.ExitStack()
        tracked.enter_context(router.in_flight(target))
        try:
            response = await attempt(
                session, ex, target, path, stream=stream, include_usage=include_usage,
                usage_unsupported=router.usage_unsupported,
            )
        except AttemptFailed as failed:
            tracked.close()
            ex.calls.append(UpstreamCall(target, failed.error, failed.reason))
            last = failed
            if failed.kind != DEPLOYMENT:
                raise _GroupFailed(failed.error, failed.kind) from None
            router.failed(target, failed.reason)
            continue
        router.succeeded(target)
        ex.calls.append(UpstreamCall(target))
        stack.push(tracked.pop_all())  # in flight until the answer has been relayed
        return response
    assert last is not None
    raise _GroupFailed(last.error, DEPLOYMENT)
