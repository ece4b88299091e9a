"""The router's cooldowns shared over Redis: a deployment that one gateway host cools down is
skipped by every host for the same time.

Off the hot path: a cooldown starting here is published in the background (the link's
pipeline); cooldowns started elsewhere arrive by pub/sub and are applied to the router's
DeploymentState at once, so choosing a deployment never asks Redis. A host that was not
listening when a cooldown began (starting, or Redis down) does not learn of it; cooldowns are
seconds long, so that costs at most a few failed attempts.
"""

from __future__ import annotations

import json
import logging
import secrets

from ...routing.cooldowns import cool_down_from_elsewhere
from ...routing.router import Router
from .redis_link import RedisLink

log = logging.getLogger("proxy.redis")
CHANNEL = "cooldowns"


class SharedCooldowns:
    def __init__(self, link: RedisLink, router: Router) -> None:
        self.link = link
        self.router = router
        self.origin = secrets.token_hex(6)  # our own messages come back: skip them
        router.cooldowns.listeners.append(self.started)
        link.subscribe(CHANNEL, self.received)

    def started(self, deployment_id: str, seconds: float, reason: str) -> None:
        message = json.dumps({"id": deployment_id, "s": seconds, "r": reason, "o": self.origin})
        channel = self.link.prefix + CHANNEL
        self.link.send(lambda pipe: pipe.publish(channel, message))

    def received(self, data: str) -> None:
        message = json.loads(data)
        if message.get("o") == self.origin:
            return
        try:
            state = self.router.state(message["id"])
        except KeyError:
            return  # a deployment this host's config does not have
        cool_down_from_elsewhere(state, float(message["s"]))
        log.info("deployment %s cooling down for %gs: another gateway host saw it fail (%s)",
                 message["id"], float(message["s"]), message.get("r"))
