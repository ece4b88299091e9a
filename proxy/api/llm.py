"""The OpenAI-compatible endpoints: chat completions, completions, embeddings, models."""

from __future__ import annotations

import json
import time

import aiohttp
from aiohttp import web

from .. import jsonio
from ..accounting import usage as usage_mod
from ..accounting.exchange import Exchange
from ..accounting.tags import TAGS_HEADER
from ..errors import CLIENT_CLOSED, NotFound
from ..routing.fallbacks import open_model
from ..server.auth import Principal, bearer_token
from ..state import AUTH, CLIENT, CONFIG, HOOKS, REQUEST_LOGGER, ROUTER, TRUSTED_PROXIES
from .body import model_from_prefix, parse_body, read_body, read_prefix
from .headers import capture_upstream, response_headers
from .streaming import relay_stream
from .validation import validate

EXCHANGE: web.RequestKey[Exchange] = web.RequestKey("exchange", Exchange)

# Paths as the client calls them → (path sent upstream, what the response carries).
LLM_ROUTES: dict[str, tuple[str, str]] = {
    "/v1/chat/completions": ("/chat/completions", "chat"),
    "/chat/completions": ("/chat/completions", "chat"),
    "/v1/completions": ("/completions", "completion"),
    "/completions": ("/completions", "completion"),
    "/v1/embeddings": ("/embeddings", "embedding"),
    "/embeddings": ("/embeddings", "embedding"),
}


def new_exchange(request: web.Request) -> Exchange:
    ex = Exchange(endpoint=request.path, client_ip=client_address(request),
                  tags_header=request.headers.get(TAGS_HEADER))
    request[EXCHANGE] = ex
    return ex


def client_address(request: web.Request) -> str | None:
    """The peer, or behind a trusted reverse proxy the nearest untrusted X-Forwarded-For hop.

    Hops are read right to left because only the ones our own proxies appended can be
    believed; whatever a client put on the left is its own claim.
    """
    peer = request.remote
    trusted = request.app[TRUSTED_PROXIES]
    if peer not in trusted:
        return peer
    forwarded = request.headers.get("X-Forwarded-For")
    if not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer


async def handle_llm(request: web.Request) -> web.StreamResponse:
    ex: Exchange = request[EXCHANGE]
    upstream_path, kind = LLM_ROUTES[request.path]
    app = request.app

    # The headers say who is calling: a stranger's body is never read past its prefix.
    try:
        ex.principal = await app[AUTH].authenticate(bearer_token(request))
    except Exception:
        # so the failed-auth row still says which model was wanted
        ex.model = model_from_prefix(await read_prefix(request))
        raise
    ex.body, ex.body_read_fast = parse_body(await read_body(request, ex, app[CONFIG].general.max_request_body_mb))
    model = ex.body.get("model")
    ex.model = model if isinstance(model, str) else ""  # the row names it even when refused
    validate(ex.body, kind)
    ex.stream = kind != "embedding" and ex.body.get("stream") is True

    router = app[ROUTER]
    # Model access (the key's, its team's and user's lists) and the key's model aliases: the
    # row keeps the name the client asked for; model_group and upstream_model show the route.
    routed = ex.principal.route(ex.model, router.group_of)
    if routed != ex.model:
        ex.routed_model = routed
    try:
        router.require(routed)
    except NotFound:
        # Name only the models this key may use: the rest are none of its business.
        available = ", ".join(visible_models(request, ex.principal)) or "none"
        raise NotFound(
            f"The model `{routed}` does not exist. Available models: {available}.", param="model"
        ) from None
    if router.disabled(routed):
        raise NotFound(f"The model `{routed}` is disabled.", param="model")
    for hook in app[HOOKS]:
        await hook.admit(ex)

    session = app[CLIENT]
    if ex.stream:
        return await relay_stream(request, ex, session, router, upstream_path)

    async with open_model(session, ex, router, upstream_path, stream=False, include_usage=False) as upstream:
        body = await upstream.read()
        ex.upstream_finished = time.perf_counter()
        content_type = upstream.headers.get("Content-Type", "application/json")
        capture_upstream(ex, upstream.raw_headers)
    _account_response(ex, body, kind)
    ex.status = 200
    app[REQUEST_LOGGER].price(ex)
    headers = {"Content-Type": content_type, **response_headers(app, ex)}
    response = web.Response(body=body, status=200, headers=headers)
    # Send it here rather than after the middleware so `latency` ends at the last byte sent.
    try:
        await response.prepare(request)
        await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        ex.fail(CLIENT_CLOSED, "client_disconnected", "Client closed the connection before the answer was sent.")
    return response


def visible_models(request: web.Request, principal: Principal) -> list[str]:
    """The model names /v1/models lists for `principal` (disabled ones for the admin only)."""
    router = request.app[ROUTER]
    return [m for m in router.visible_names
            if principal.may_use(m) and (principal.is_admin or not router.disabled(m))]


async def list_models(request: web.Request) -> web.Response:
    principal = await request.app[AUTH].authenticate(bearer_token(request))
    names = visible_models(request, principal)
    router = request.app[ROUTER]
    return web.json_response(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 1677610602, "owned_by": "shin-gateway",
                 **({"disabled": True} if router.disabled(name) else {})}
                for name in names
            ],
        }
    )


# -- helpers -------------------------------------------------------------------------------




def _account_response(ex: Exchange, body: bytes, kind: str) -> None:
    payload = jsonio.loads(body)
    if payload is jsonio.NOT_READ:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
    if not isinstance(payload, dict):
        return
    ex.usage = usage_mod.from_openai(payload.get("usage"))
    if kind != "embedding":
        ex.response_text = usage_mod.response_text(payload)
        ex.extra_output_chars = usage_mod.response_extra_chars(payload)
