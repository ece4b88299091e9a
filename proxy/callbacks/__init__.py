"""Real-time callbacks: failures, successes, slow requests and budget crossings, told to Slack
or a generic webhook, as LiteLLM's `litellm_settings` configures them:

    litellm_settings:
      failure_callback: ["slack"]          # SLACK_WEBHOOK_URL
      success_callback: ["webhook"]        # GENERIC_LOGGER_ENDPOINT (+ GENERIC_LOGGER_HEADERS)
    general_settings:
      alerting: ["slack"]                  # budget + slow alerts; default: failure_callback's
      slow_request_threshold: 30           # seconds
      callback_batch_seconds: 5

Variables come from `environment_variables` or the process environment. Names LiteLLM knows but
we do not (langfuse, ...) are ignored with a warning; "prometheus" is always on at /metrics.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from ..errors import ConfigError
from ..server.budgetview import snapshot
from ..settings import Config
from ..state import CONFIG, HOOKS, WORKER
from .batch import BUDGET, FAILURE, SLOW, SUCCESS
from .dispatcher import Channel, Dispatcher, Subscription
from .slack import SlackChannel
from .webhook import WebhookChannel

log = logging.getLogger("proxy.callbacks")

CALLBACKS: web.AppKey[Dispatcher] = web.AppKey("callbacks")

#: Callback names → channel factory. LiteLLM spells the generic webhook "generic_api".
CHANNELS = {
    "slack": SlackChannel.from_env,
    "webhook": WebhookChannel.from_env,
    "generic": WebhookChannel.from_env,
    "generic_api": WebhookChannel.from_env,
}
ALWAYS_ON = {"prometheus"}


def build_subscriptions(config: Config) -> list[Subscription]:
    """Channels by name with the kinds of events each receives; ConfigError names the key."""
    channels: dict[str, Channel] = {}
    kinds: dict[str, set[str]] = {}
    general, litellm = config.general, config.litellm
    lists = [
        ("litellm_settings.failure_callback", litellm.failure_callback, {FAILURE}),
        ("litellm_settings.success_callback", litellm.success_callback, {SUCCESS}),
        # LiteLLM's `callbacks` are both success and failure callbacks.
        ("litellm_settings.callbacks", litellm.callbacks, {SUCCESS, FAILURE}),
        ("general_settings.alerting" if general.alerting else "litellm_settings.failure_callback",
         general.alerting or litellm.failure_callback, {SLOW, BUDGET}),
    ]
    for source, names, wanted in lists:
        for raw in names:
            name = str(raw).strip().lower()
            if name in ALWAYS_ON:
                continue
            factory = CHANNELS.get(name)
            if factory is None:
                log.warning("%s: callback %r is not supported by this gateway; ignored", source, raw)
                continue
            channel = factory(config.env, source)
            channels.setdefault(channel.name, channel)
            kinds.setdefault(channel.name, set()).update(wanted)
    return [Subscription(channels[name], kinds[name]) for name in sorted(channels)]


def setup_callbacks(app: web.Application) -> None:
    """Register the callback hook and its background sender (nothing when none configured)."""
    config = app[CONFIG]
    general = config.general
    if general.callback_batch_seconds <= 0:
        raise ConfigError("general_settings.callback_batch_seconds: must be > 0")
    if general.slow_request_threshold is not None and general.slow_request_threshold <= 0:
        raise ConfigError("general_settings.slow_request_threshold: must be > 0 seconds")
    subscriptions = build_subscriptions(config)
    if not subscriptions:
        return
    worker = app.get(WORKER)  # serve --workers N: budgets are shared, worker 1 alerts for all
    budgets = worker is None or worker.primary
    dispatcher = Dispatcher(
        subscriptions,
        title=config.report.title,
        model_names=config.model_names,
        batch_seconds=general.callback_batch_seconds,
        slow_threshold=general.slow_request_threshold,
        budget_source=functools.partial(snapshot, app) if budgets else None,
    )
    app[CALLBACKS] = dispatcher
    app[HOOKS].append(dispatcher)
    app.cleanup_ctx.append(_dispatcher)
    log.info("callbacks: %s", ", ".join(
        f"{s.channel.name} ({', '.join(sorted(s.kinds))})" for s in subscriptions
    ))


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[CALLBACKS]
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    task = await dispatcher.start(session)
    yield
    try:
        await dispatcher.stop(task)
    finally:
        await session.close()
