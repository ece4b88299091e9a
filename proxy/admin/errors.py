"""Errors of the keys feature; the core middleware turns them into the OpenAI envelope."""

from __future__ import annotations

from ..errors import GatewayError


class KeyNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "key_not_found"
