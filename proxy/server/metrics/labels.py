"""Label values for /metrics, kept bounded, and LiteLLM's label names and bucket layouts.

A label whose values come from outside the config (a key alias, a team, a user, the end user a
client names in `user`, a model name a wildcard matched) holds at most `cap` distinct values per
process (general_settings.metrics_label_values); later ones are counted as "other", and a
warning names the label once. The config's model names are known up front and keep their own
series. Missing values are the empty string, which Prometheus treats as an absent label.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import Histogram

from ...errors import CLIENT_CLOSED

log = logging.getLogger("proxy.metrics")

OTHER = "other"
#: Longer values (a model name a wildcard let through) are cut: a label is a name, not a payload.
MAX_VALUE_CHARS = 200

# LiteLLM's bucket layout for its request, LLM API, time-to-first-token and overhead histograms
# (LATENCY_BUCKETS in litellm/types/integrations/prometheus.py), in seconds.
LATENCY_BUCKETS = (
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
    5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0,
    120.0, 180.0, 240.0, 300.0, float("inf"),
)
#: LiteLLM declares no buckets for litellm_deployment_latency_per_output_token: the client's own.
DEFAULT_BUCKETS = Histogram.DEFAULT_BUCKETS

# LiteLLM's label sets (UserAPIKeyLabelNames), as this gateway fills them:
#: Who asked: the end user (the body's `user`), the key (12 hex of its SHA-256, and alias), its
#: team (id and alias) and its user (the key's user_id).
WHO = ("end_user", "hashed_api_key", "api_key_alias", "team", "team_alias", "user")
#: The key alone, for histograms: end users would multiply 38 series per combination.
KEY = ("hashed_api_key", "api_key_alias", "team", "team_alias")
#: A deployment: its model as configured (litellm_params.model), id, public api_base, provider.
DEPLOYMENT = ("litellm_model_name", "model_id", "api_base", "api_provider")
EXCEPTION = ("exception_status", "exception_class")

# The exception a client's SDK raises for a status, as LiteLLM names exception_class (LiteLLM's
# exceptions are the openai SDK's classes).
_CLASSES = {
    400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
    404: "NotFoundError", 408: "Timeout", 409: "ConflictError", 413: "BadRequestError",
    422: "UnprocessableEntityError", 429: "RateLimitError", CLIENT_CLOSED: "ClientClosedRequest",
    500: "InternalServerError", 502: "APIConnectionError", 503: "ServiceUnavailableError",
    504: "Timeout",
}


def exception_class(status: int, error_type: str | None) -> str:
    """A bounded name for a failure: LiteLLM's exception class for the status and type."""
    if error_type == "budget_exceeded":
        return "BudgetExceededError"
    found = _CLASSES.get(status)
    if found is not None:
        return found
    return "InternalServerError" if status >= 500 else "BadRequestError"


class BoundedValues:
    """Distinct values per label name, at most `cap` each; the rest become "other"."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: dict[str, set[str]] = {}
        self._full: set[str] = set()

    def preset(self, label: str, values: Iterable[str]) -> None:
        """Values that always keep their own series (the config's model names)."""
        self._seen.setdefault(label, set()).update(v[:MAX_VALUE_CHARS] for v in values if v)

    def get(self, label: str, value: Any) -> str:
        if not value:
            return ""
        if not isinstance(value, str):
            value = str(value)
        seen = self._seen.get(label)
        if seen is None:
            seen = self._seen[label] = set()
        if value in seen:
            return value
        value = value[:MAX_VALUE_CHARS]
        if value in seen:
            return value
        if len(seen) >= self.cap:
            if label not in self._full:
                self._full.add(label)
                log.warning(
                    "metrics: label %s reached %d distinct values; further ones are counted as "
                    "%r (general_settings.metrics_label_values)", label, self.cap, OTHER,
                )
            return OTHER
        seen.add(value)
        return value

    def count(self, label: str) -> int:
        return len(self._seen.get(label, ()))


class DeploymentLabels:
    """A target's (litellm_model_name, model_id, api_base, api_provider), bounded, computed once
    per deployment and model name (its public api_base: never credentials)."""

    MAX_CACHED = 4096

    def __init__(self, values: BoundedValues) -> None:
        self.values = values
        self._cache: dict[tuple[str, str], tuple[str, str, str, str]] = {}

    def __call__(self, target: Any) -> tuple[str, str, str, str]:
        model = target.deployment.litellm_params.model
        found = self._cache.get((target.deployment_id, model))
        if found is None:
            if len(self._cache) >= self.MAX_CACHED:  # wildcard names: keep the cache bounded
                self._cache.clear()
            get = self.values.get
            found = (get("model", model), get("model_id", target.deployment_id),
                     get("api_base", target.public_api_base), target.provider)
            self._cache[(target.deployment_id, model)] = found
        return found
