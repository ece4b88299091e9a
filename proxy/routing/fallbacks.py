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


class open_model:  # noqa: N801 - used as `async with open_model(...)`, like a function
    """`async with open_model(session, ex, router, path, stream=…, include_usage=…) as
    response`: the first 2xx response for `ex.model`, per the rules above; raises the
    GatewayError the client should see when none came. The deployment that answered counts the
    request in flight until the block ends; a timeout or a broken body inside the block becomes
    UpstreamTimeout / UpstreamUnreachable.

    A class rather than a generator-based context manager: it runs once per request."""

    __slots__ = ("session", "ex", "router", "path", "stream", "include_usage", "response", "held")

    def __init__(self, session: aiohttp.ClientSession, ex: Exchange, router: Router, path: str, *,
                 stream: bool, include_usage: bool) -> None:
        self.session, self.ex, self.router, self.path = session, ex, router, path
        self.stream, self.include_usage = stream, include_usage
        self.held: list[contextlib.AbstractContextManager[None]] = []

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            self.response = await _first_answer(
                self.session, self.ex, self.router, self.path, self.held, self.stream, self.include_usage)
        except BaseException:
            self._release()
            raise
        return self.response

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            self.response.release()
        finally:
            self._release()
        if kind is None:
            return
        ex, target = self.ex, self.ex.target
        if issubclass(kind, TimeoutError):
            assert target is not None
            raise UpstreamTimeout(
                f"Upstream for model `{ex.model}` did not answer within {target.timeout:g}s."
            ) from None
        if issubclass(kind, aiohttp.ClientPayloadError):
            raise UpstreamUnreachable(
                f"Upstream for model `{ex.model}` broke off the response ({kind.__name__})."
            ) from None

    def _release(self) -> None:
        held, self.held = self.held, []
        for counted in reversed(held):
            counted.__exit__(None, None, None)


async def _first_answer(
    session: aiohttp.ClientSession, ex: Exchange, router: Router, path: str,
    held: list[contextlib.AbstractContextManager[None]], stream: bool, include_usage: bool,
) -> aiohttp.ClientResponse:
    try:
        return await _try_model(session, ex, router, ex.routed_model or ex.model, path, held, stream, include_usage)
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
            response = await _try_model(session, ex, router, model, path, held, stream, include_usage)
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
    held: list[contextlib.AbstractContextManager[None]], stream: bool, include_usage: bool,
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
        counted = router.in_flight(target)
        counted.__enter__()
        try:
            response = await attempt(
                session, ex, target, path, stream=stream, include_usage=include_usage,
                usage_unsupported=router.usage_unsupported,
            )
        except BaseException as failed:
            counted.__exit__(None, None, None)
            if not isinstance(failed, AttemptFailed):
                raise
            ex.calls.append(UpstreamCall(target, failed.error, failed.reason))
            last = failed
            if failed.kind != DEPLOYMENT:
                raise _GroupFailed(failed.error, failed.kind) from None
            router.failed(target, failed.reason)
            continue
        router.succeeded(target)
        ex.calls.append(UpstreamCall(target))
        held.append(counted)  # in flight until the answer has been relayed
        return response
    assert last is not None
    raise _GroupFailed(last.error, DEPLOYMENT)
