"""Cost of a request in USD.

Prices are resolved once per deployment by the router (at start-up, or on first use for a name a
wildcard serves): config overrides first, then genai-prices (by `provider/name`, then
model_info.base_model). A model with no
price costs 0 with cost_status 'unpriced', so the report can show it instead of a silent $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import Usage
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelPrice, TieredPrices

from ..settings import Deployment

PRICED = "priced"
CONFIG = "config"
UNPRICED = "unpriced"
NO_USAGE = "none"

# LiteLLM provider prefixes that name a genai-prices provider differently.
_PROVIDER_ALIASES = {"azure_ai": "azure", "vertex_ai": "google", "gemini": "google", "bedrock": "aws"}


@dataclass(frozen=True)
class Price:
    status: str
    model_price: ModelPrice | None = None
    input_per_token: float = 0.0
    output_per_token: float = 0.0
    matched: str | None = None  # which genai-prices model this resolved to
    #: USD per (uncached input, output, cached input) token, read off genai-prices at start-up
    #: for flat (untiered) prices: the library re-derives its unit table on every call
    #: (~150 µs), a third of the gateway's CPU per request.
    linear: tuple[Decimal, Decimal, Decimal] | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> tuple[float, str]:
        """(USD, cost_status) for one request's usage."""
        if prompt_tokens == 0 and completion_tokens == 0:
            return 0.0, NO_USAGE if self.status != UNPRICED else UNPRICED
        if self.status == CONFIG:
            return prompt_tokens * self.input_per_token + completion_tokens * self.output_per_token, CONFIG
        if self.model_price is None:
            return 0.0, UNPRICED
        if self.linear is not None:
            per_input, per_output, per_cached = self.linear
            uncached = max(prompt_tokens - cached_tokens, 0)
            total = per_input * uncached + per_output * completion_tokens + per_cached * cached_tokens
            return float(total), PRICED
        usage = Usage(
            input_tokens=prompt_tokens,
            output_tokens=completion_tokens,
            cache_read_tokens=cached_tokens or None,
        )
        return float(self.model_price.calc_price(usage)["total_price"]), PRICED


UNPRICED_PRICE = Price(UNPRICED)


def resolve_price(deployment: Deployment, when: datetime | None = None) -> Price:
    params = deployment.litellm_params
    if params.input_cost_per_token is not None or params.output_cost_per_token is not None:
        return Price(
            CONFIG,
            input_per_token=params.input_cost_per_token or 0.0,
            output_per_token=params.output_cost_per_token or 0.0,
        )
    snapshot = get_snapshot()
    provider_id, _, name = params.model.partition("/") if "/" in params.model else ("", "", params.model)
    provider_id = _PROVIDER_ALIASES.get(provider_id, provider_id) or None
    # Never fall back to the public model_name: a self-hosted model called "gpt-4" must not
    # be billed at OpenAI's price. base_model is the explicit way to say what it costs like.
    candidates = [(name, provider_id), (name, None)]
    if deployment.model_info.base_model:
        candidates.append((deployment.model_info.base_model, None))
    for ref, provider in candidates:
        try:
            found_provider, model = snapshot.find_provider_model(ref, None, provider, None)
            model_price = model.get_prices(when or datetime.now(UTC))
        except LookupError:
            continue
        return Price(
            PRICED,
            model_price=model_price,
            matched=f"{found_provider.id}/{model.id}",
            linear=linear_rates(model_price),
        )
    return UNPRICED_PRICE


def linear_rates(model_price: ModelPrice) -> tuple[Decimal, Decimal, Decimal] | None:
    """Per-token rates as genai-prices computes them, if its price is linear in tokens.

    The rates are the library's own answers for a million tokens of each kind, and are only
    used after they reproduce the library's result exactly on mixed probes.
    """
    if any(isinstance(v, TieredPrices) for v in vars(model_price).values()):
        return None

    def library(prompt: int, completion: int, cached: int) -> Decimal:
        usage = Usage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached or None)
        return model_price.calc_price(usage)["total_price"]

    million = Decimal(1_000_000)
    rates = (
        library(1_000_000, 0, 0) / million,
        library(0, 1_000_000, 0) / million,
        library(1_000_000, 0, 1_000_000) / million,
    )
    per_input, per_output, per_cached = rates
    for prompt, completion, cached in ((1234, 567, 89), (98_765, 4_321, 0), (7, 1, 7)):
        fast = per_input * (prompt - cached) + per_output * completion + per_cached * cached
        if fast != library(prompt, completion, cached):
            return None
    return rates
