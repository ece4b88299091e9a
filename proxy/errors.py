"""Named exceptions. One middleware (app.py) turns GatewayError into the OpenAI error envelope;
cli.py turns ConfigError and friends into one-line messages."""

from __future__ import annotations

from typing import Any

#: nginx's status for "client closed the connection": logged, never sent (no one is listening).
CLIENT_CLOSED = 499
#: error_type of a request still running when shutdown_grace ran out (logged with status 503).
SHUTDOWN_CANCELLED = "cancelled_by_shutdown"


class ConfigError(Exception):
    """config.yaml is unusable; the message names the key and the problem."""


class GatewayError(Exception):
    """An error with an HTTP status, returned to the client as the OpenAI envelope.

    `code` is the status as a string unless a subclass says otherwise, as LiteLLM's proxy
    answers every error it raises itself (clients branch on it).
    """

    status = 500
    type = "internal_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code if self.code is not None else str(self.status),
            }
        }


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class AuthError(GatewayError):
    status = 401
    type = "authentication_error"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"


class ModelAccessDenied(GatewayError):
    """A key (or its team or user) may not use the model: 401, as LiteLLM answers."""

    status = 401

    def __init__(self, message: str, *, kind: str = "key") -> None:
        super().__init__(message, param="model")
        self.type = f"{kind}_model_access_denied"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"  # OpenAI's, which its SDKs' NotFoundError users check


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"


class BudgetExceeded(GatewayError):
    status = 429
    type = "budget_exceeded"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"


class UpstreamUnreachable(GatewayError):
    status = 502
    type = "upstream_error"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout"


class UpstreamError(GatewayError):
    """The upstream answered with an error; status and body are passed on."""

    type = "upstream_error"

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    def envelope(self) -> dict[str, Any]:
        if self.body and isinstance(self.body.get("error"), dict):
            return self.body
        return super().envelope()


class OperationError(Exception):
    """An operations command (backup, prune) cannot proceed; the message says why."""


class NoDeploymentAvailable(GatewayError):
    """Every deployment of the model is cooling down after failures (LiteLLM's
    RouterRateLimitError): the client may retry after Retry-After; fallbacks apply."""

    status = 429
    type = "rate_limit_error"


class NoDeploymentEnabled(GatewayError):
    """Every deployment of the model was disabled at run time."""

    status = 503
    type = "service_unavailable"


class ShutdownCancelled(GatewayError):
    """Still running when shutdown_grace ran out: cancelled by the gateway's shutdown."""

    status = 503
    type = SHUTDOWN_CANCELLED

    def __init__(self, grace: float) -> None:
        super().__init__("Cancelled by gateway shutdown: still running at the end of the grace "
                         f"period (shutdown_grace: {grace:g}s).")
