"""Errors of the admin API; the core middleware turns them into the OpenAI envelope."""

from __future__ import annotations

from ..errors import GatewayError


class KeyNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"


class EntityNotFound(GatewayError):
    """A user, team, member, end user or budget that does not exist (LiteLLM's "not_found")."""

    status = 404
    type = "not_found"


class Conflict(GatewayError):
    """A create for an id that exists already."""

    status = 400
    type = "bad_request"


class StoreUnavailable(GatewayError):
    """The shared admin state (Redis) cannot be reached: admin changes, and keys this host has
    never seen, wait until it answers again; known keys keep working."""

    status = 503
    type = "service_unavailable"
