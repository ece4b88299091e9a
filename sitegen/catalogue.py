"""What the report shows: its tables (query, window, columns), charts and pages.

Each table's name is its anchor, its data file name (`data/<name>.csv|json`) and, where one
exists, the Datasette canned query it links to (`datasette/metadata.yml` defines them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import queries as q
from .analysis import anomalies, budgets, decomposition, forecast, speed

STAMP = "%Y-%m-%d %H:%M:%S"


def stamp(moment: datetime) -> str:
    """The log's timestamp format, 'YYYY-MM-DD HH:MM:SS.fff' (text comparison = time order)."""
    return moment.strftime(STAMP) + f".{moment.microsecond // 1000:03d}"


@dataclass(frozen=True)
class Window:
    """How a table's :start is derived from the build's clock; :end is always the clock."""

    kind: str  # rolling | calendar | today | hours | all | month | compare | latest | built
    n: int = 0

    def bounds(self, now: datetime) -> dict[str, str]:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = {
            "month": lambda: midnight.replace(day=1),
            "compare": lambda: now - timedelta(days=60),
            "latest": lambda: datetime(1970, 1, 1, tzinfo=now.tzinfo),
            "rolling": lambda: now - timedelta(days=self.n),
            "calendar": lambda: midnight - timedelta(days=self.n - 1),
            "today": lambda: midnight,
            "hours": lambda: now.replace(minute=0, second=0, microsecond=0)
            - timedelta(hours=self.n - 1),
            "all": lambda: datetime(1970, 1, 1, tzinfo=now.tzinfo),
            "built": lambda: now,
        }
        return {"start": stamp(starts[self.kind]()), "end": stamp(now)}

    @property
    def label(self) -> str:
        return {
            "rolling": f"last {self.n} days",
            "calendar": f"last {self.n} calendar days",
            "today": "today (UTC)",
            "hours": f"last {self.n} hours",
            "all": "all time",
            "month": "this month (UTC)",
            "compare": "today, last 7 and last 30 days, each against the period before",
            "latest": "the newest 10,000 requests",
            "built": "as when the report was built",
        }[self.kind]

    @property
    def days(self) -> int | None:
        """The :days parameter of the matching Datasette query, when it has one."""
        if self.kind in ("rolling", "calendar"):
            return self.n
        if self.kind == "hours":
            return max(1, self.n // 24)
        return None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text | int | usd | sec | pct | num | ts | date | code | change
    #                     | usd_delta (signed USD) | ms (seconds shown as ms) | label (None:
    #                     "(not set)") | auto (the row's `unit` decides: usd, pct or sec)


@dataclass(frozen=True)
class TableDef:
    name: str
    title: str
    sql: str
    columns: tuple[Column, ...]
    window: Window
    note: str = ""
    requires: frozenset[str] = frozenset()  # columns beyond the guide's
    datasette: str | None = None
    params: dict[str, object] = field(default_factory=dict)
    show_rows: int = 50  # longer tables show this many rows; the CSV/JSON hold them all
    #: Rows computed in Python from SQL aggregates (sitegen/analysis): (reader, spec, bounds)
    #: -> rows. `sql` is then empty or documents the main query; no Datasette link.
    compute: Callable[..., list[dict[str, object]]] | None = None
    datasette_params: dict[str, object] = field(default_factory=dict)  # beyond :days
    empty: str = "No requests in this period."  # shown when there are no rows


@dataclass(frozen=True)
class Section:
    table: str
    chart: str | None = None


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    intro: str
    sections: tuple[Section, ...]
    template: str = "page.html"
    scripts: tuple[str, ...] = ()  # the page's own scripts, under assets/, after site.js
    #: Files beside the page beyond the tables' CSV/JSON: (tables, datasette_url) ->
    #: {relative path: text} (the Logs page's data as scripts, which load from file://).
    files: Callable[..., dict[str, str]] | None = None

    @property
    def filename(self) -> str:
        return f"{self.slug}.html"


C = Column
LAST_7, LAST_30 = Window("rolling", 7), Window("rolling", 30)
DAYS_30 = Window("calendar", 30)
TODAY = Window("today")
MODEL, USER, KEY = C("model", "Model"), C("user_id", "User"), C("key_alias", "Key")
REQUESTS = C("requests", "Requests", "int")
DETAILS = frozenset
#: Which requests latency percentiles count (sitegen/queries.py, Datasette and the p95 alert agree).
LATENCY_DEFINITION = (
    "Latency percentiles count the requests that reached an upstream provider: successes and "
    "upstream failures (timeouts, provider errors, hang-ups), not requests the gateway refused "
    "itself (invalid, unauthorised, unknown model, too large, over budget or rate limit); "
    "every request on a log without upstream_latency."
)

TABLES: tuple[TableDef, ...] = (
    # -- overview
    TableDef("period_summary", "Requests, tokens, cost, errors and p95 latency", q.PERIOD_TOTALS, (
        C("period", "Period"), REQUESTS, C("requests_change", "vs previous", "change"),
        C("tokens", "Tokens", "int"), C("tokens_change", "vs previous", "change"),
        C("cost", "Cost", "usd"), C("cost_change", "vs previous", "change"),
        C("error_rate", "Error rate", "pct"), C("error_rate_change", "vs previous", "change"),
        C("p95_latency", "p95 latency", "sec"), C("p95_latency_change", "vs previous", "change"),
    ), LAST_30, "Today is compared with yesterday up to the same time of day; the last 7 and 30 "
       "days with the 7 and 30 days before them. " + LATENCY_DEFINITION),
    TableDef("cost_change", "Why cost moved", "", (
        C("period", "Period"), C("level", "Level"), MODEL,
        C("previous_requests", "Requests before", "int"),
        C("requests", "Requests", "int"), C("previous_cost", "Cost before", "usd"),
        C("cost", "Cost", "usd"), C("change", "Change", "usd_delta"),
        C("change_pct", "Change %", "change"), C("volume", "Volume", "usd_delta"),
        C("mix", "Mix", "usd_delta"), C("price", "Price", "usd_delta"),
    ), Window("compare"), "Volume: more or fewer requests at the previous mix and prices. Mix: "
       "requests moving between models (a new model's cost is all mix). Price: a model's cost "
       "per request moved (provider prices, longer prompts or answers). They add up exactly to "
       "the change, per model and in total. Counted over requests that cost something.",
        compute=decomposition.cost_change_rows, show_rows=60),
    TableDef("anomalies", "Anomalies", "", (
        C("when", "When (UTC)", "ts"), C("grain", "Day or hour"), C("metric", "Metric"),
        C("value", "Value", "auto"), C("median", "Usual (median)", "auto"),
        C("threshold", "Threshold", "auto"), C("score", "MADs above median", "num"),
        C("requests", "Requests", "int"),
    ), Window("calendar", 30), "Flagged when a value is above median + 5 × MAD (median "
       "absolute deviation) of its own history: a day against the 14 days before it, an hour "
       "against the same hour of the 7 days before. The MAD counts as at least 5 % of the "
       "median (cost, p95 latency) or 1 percentage point (error rate); error rate and p95 "
       "latency need 20 requests in the day, and an hour needs 20 requests to be judged at all. "
       "Only the high side is flagged. Covers the "
       "last 30 days and the last 24 hours.", compute=anomalies.anomaly_rows,
        empty="Nothing unusual: no day or hour above its threshold."),
    TableDef("daily_health", "Cost, error rate and p95 latency by day, with their thresholds",
             "", (
                 C("date", "Date", "date"), C("metric", "Metric"), C("value", "Value", "auto"),
                 C("median", "Usual (median)", "auto"), C("threshold", "Threshold", "auto"),
                 C("anomaly", "Anomaly", "int"),
             ), Window("calendar", 30), "Each day against the 14 before it (the rule above). "
       "p95 latency: nearest rank over requests that reached an upstream.",
        compute=anomalies.daily_health_rows, show_rows=90),
    TableDef("todays_stats", "Today's stats", q.TODAYS_STATS, (
        REQUESTS, C("tokens", "Tokens", "int"), C("cost", "Cost", "usd"),
        C("errors", "Errors", "int"), C("errors_last_hour", "Errors in the last hour", "int"),
    ), TODAY, "The guide's dashboard.py block, plus monitor.sh's errors in the last hour.",
        datasette="todays_stats"),
    TableDef("todays_top_models", "Top models today", q.TODAYS_TOP_MODELS,
             (MODEL, REQUESTS, C("cost", "Cost", "usd")), TODAY, datasette="todays_top_models"),
    TableDef("top_models", "Top models", q.TOP_MODELS, (
        MODEL, REQUESTS, C("tokens", "Tokens", "int"), C("cost", "Cost", "usd"),
        C("error_rate", "Error rate", "pct"),
    ), LAST_7, datasette="usage_by_model"),
    TableDef("recent_errors", "Recent errors", q.FAILED_REQUESTS, (
        C("timestamp", "Time (UTC)", "ts"), MODEL, USER, C("status_code", "Status", "code"),
        C("error_message", "Error message"),
    ), Window("all"), datasette="failed_requests", params={"limit": 10}),
    TableDef("recent_requests", "Recent requests", q.RECENT_REQUESTS, (
        C("timestamp", "Time (UTC)", "ts"), MODEL, C("total_tokens", "Tokens", "int"),
        C("cost", "Cost", "usd"),
    ), Window("all"), datasette="recent_requests"),
    # -- cost
    TableDef("month_forecast", "This month and its projection", "", (
        C("month", "Month"), C("month_to_date", "Month to date", "usd"),
        C("days_elapsed", "Days elapsed", "num"), C("rate_per_day", "Current rate per day", "usd"),
        C("projected", "Projected month end", "usd"), C("previous_month", "Last month", "usd"),
        C("projected_change", "Projected vs last month", "change"),
    ), Window("month"), "Projected = month to date + current rate × days left. The current rate "
       "is the cost per day since 00:00 UTC seven days ago, so it follows how the month runs "
       "now.", compute=forecast.month_forecast_rows),
    TableDef("month_to_date", "Cost so far this month, and projected", "", (
        C("date", "Date", "date"), C("cost", "Cost", "usd"), C("cumulative", "Running total", "usd"),
        C("projected", "Projected running total", "usd"),
    ), Window("month"), compute=forecast.month_to_date_rows, show_rows=31,
        empty="No requests this month yet."),
    TableDef("budgets", "Budgets", "", (
        C("scope", "Scope"), C("name", "Name"), C("spend", "Spent", "usd"),
        C("max_budget", "Budget", "usd"), C("left", "Left", "usd"), C("used_pct", "Used", "pct"),
        C("budget_duration", "Period"), C("resets", "Resets (UTC)", "ts"),
        C("rate_per_day", "Per day", "usd"), C("runs_out", "Runs out (UTC)", "ts"),
        C("status", "Status"),
    ), Window("rolling", 7), "Every budget keys.db holds (the gateway's from "
       "litellm_settings.max_budget), most urgent first: spent, then by the date it runs out at "
       "its spend per day over the last 7 days, then by the share used. Keys show their alias "
       "or display form, never the key.", compute=budgets.budget_rows,
        empty="No budget set: no key has a max_budget and litellm_settings.max_budget is unset."),
    TableDef("daily_cost_trend", "Requests and cost by day", q.DAILY_COST_TREND, (
        C("date", "Date", "date"), REQUESTS, C("daily_cost", "Cost", "usd"),
    ), DAYS_30, "Days without requests show as $0.", datasette="daily_cost_trend", show_rows=31),
    TableDef("daily_cost_by_model", "Daily cost by model", q.DAILY_COST_BY_MODEL, (
        C("date", "Date", "date"), MODEL, REQUESTS, C("cost", "Cost", "usd"),
    ), DAYS_30, show_rows=20),
    TableDef("cost_by_model", "Cost by model", q.COST_BY_MODEL, (
        MODEL, REQUESTS, C("prompt_tokens", "Prompt tokens", "int"),
        C("completion_tokens", "Completion tokens", "int"), C("total_cost", "Cost", "usd"),
        C("avg_cost", "Average cost", "usd"),
    ), LAST_30, datasette="cost_by_model"),
    TableDef("top_users_by_cost", "Cost by user", q.TOP_USERS_BY_COST, (
        USER, REQUESTS, C("tokens", "Tokens", "int"), C("total_cost", "Cost", "usd"),
    ), LAST_30, "The 25 most expensive users; an empty user is a request without one.",
        datasette="top_users_by_cost"),
    TableDef("cost_by_key", "Cost by virtual key", q.COST_BY_KEY, (
        KEY, REQUESTS, C("tokens", "Tokens", "int"), C("total_cost", "Cost", "usd"),
    ), LAST_30, "An empty key is the master key or an open gateway.",
        requires=DETAILS({"key_alias"})),
    TableDef("cost_by_team", "Cost by team", q.COST_BY_TEAM, (
        C("team_id", "Team"), REQUESTS, C("keys", "Keys", "int"), C("tokens", "Tokens", "int"),
        C("total_cost", "Cost", "usd"),
    ), LAST_30, "The 25 most expensive teams (a key's team_id); an empty team is a key without "
       "one, the master key or an open gateway.", requires=DETAILS({"team_id", "key_hash"})),
    TableDef("most_expensive_requests", "Most expensive requests", q.MOST_EXPENSIVE_REQUESTS, (
        C("timestamp", "Time (UTC)", "ts"), MODEL, USER, C("total_tokens", "Tokens", "int"),
        C("cost", "Cost", "usd"), C("request_preview", "Request (first 100 characters)"),
    ), Window("all"), datasette="most_expensive_requests"),
    # -- usage
    TableDef("usage_by_model", "Usage by model", q.USAGE_BY_MODEL, (
        MODEL, REQUESTS, C("prompt_tokens", "Prompt tokens", "int"),
        C("completion_tokens", "Completion tokens", "int"),
        C("total_tokens", "Total tokens", "int"), C("total_cost", "Cost", "usd"),
    ), LAST_7, datasette="usage_by_model"),
    TableDef("usage_by_user", "Usage by user", q.USAGE_BY_USER, (
        USER, REQUESTS, C("total_tokens", "Tokens", "int"), C("total_cost", "Cost", "usd"),
    ), LAST_30, datasette="usage_by_user"),
    TableDef("usage_by_key", "Usage by virtual key", q.USAGE_BY_KEY, (
        KEY, REQUESTS, C("users", "Users", "int"), C("total_tokens", "Tokens", "int"),
        C("total_cost", "Cost", "usd"),
    ), LAST_30, requires=DETAILS({"key_alias"})),
    TableDef("daily_tokens_by_model", "Daily tokens by model", q.DAILY_TOKENS_BY_MODEL, (
        C("date", "Date", "date"), MODEL, C("prompt_tokens", "Prompt tokens", "int"),
        C("completion_tokens", "Completion tokens", "int"),
        C("total_tokens", "Total tokens", "int"),
    ), DAYS_30, show_rows=20),
    TableDef("token_efficiency", "Token efficiency", q.TOKEN_EFFICIENCY, (
        MODEL, C("avg_input", "Avg input", "num"), C("avg_output", "Avg output", "num"),
        C("avg_total", "Avg total", "num"), C("output_per_input", "Output per input token", "num"),
    ), LAST_7, datasette="token_efficiency"),
    # -- performance
    TableDef("latency_percentiles", "Latency percentiles by model", q.LATENCY_PERCENTILES, (
        MODEL, C("requests", "Requests", "int"), C("p50", "p50", "sec"),
        C("p95", "p95", "sec"), C("p99", "p99", "sec"),
    ), LAST_7, "Nearest-rank percentiles, received to last byte. " + LATENCY_DEFINITION,
        datasette="latency_percentiles"),
    TableDef("daily_latency_percentiles", "Daily latency percentiles by model",
             q.DAILY_LATENCY_PERCENTILES, (
                 C("date", "Date", "date"), MODEL, C("requests", "Requests", "int"),
                 C("p50", "p50", "sec"), C("p95", "p95", "sec"), C("p99", "p99", "sec"),
             ), DAYS_30, LATENCY_DEFINITION, show_rows=20),
    TableDef("latency_by_model", "Average response time by model", q.LATENCY_BY_MODEL, (
        MODEL, REQUESTS, C("avg_latency", "Average", "sec"), C("min_latency", "Min", "sec"),
        C("max_latency", "Max", "sec"),
    ), LAST_7, "The guide's query: every request, failed ones included.",
        datasette="latency_by_model"),
    TableDef("ttft_by_model", "Time to first token (streams)", q.TTFT_BY_MODEL, (
        MODEL, C("streams", "Streams", "int"), C("avg_ttft", "Average", "sec"),
        C("p50_ttft", "p50", "sec"), C("p95_ttft", "p95", "sec"),
    ), LAST_7, requires=DETAILS({"stream", "time_to_first_token"})),
    TableDef("stream_speed", "Streaming speed by model", speed.STREAM_SPEED, (
        MODEL, C("streams", "Streams", "int"), C("tps_p50", "Tokens/s p50", "num"),
        C("tps_p95", "Tokens/s p95 (slow)", "num"), C("ttft_p50", "First token p50", "sec"),
        C("ttft_p95", "First token p95", "sec"), C("tpot_p50", "Per token p50", "ms"),
        C("tpot_p95", "Per token p95", "ms"),
    ), LAST_7, "Successful streams with more than one output token. Tokens/s = output tokens ÷ "
       "(latency − time to first token), first token to last byte; its p95 is the slow tail "
       "(95 % of streams were at least this fast). Per token = (latency − time to first token) "
       "÷ (output tokens − 1). Nearest rank.", requires=DETAILS({"stream", "time_to_first_token"})),
    TableDef("daily_stream_speed", "Streaming speed by day and model", speed.DAILY_STREAM_SPEED, (
        C("date", "Date", "date"), MODEL, C("streams", "Streams", "int"),
        C("tps_p50", "Tokens/s p50", "num"), C("tps_p95", "Tokens/s p95 (slow)", "num"),
    ), Window("calendar", 14), "Tokens/s as above, per day.",
        requires=DETAILS({"stream", "time_to_first_token"}), show_rows=20),
    TableDef("gateway_overhead", "What the gateway adds", speed.OVERHEAD_FROM_TOP, (
        C("date", "Date", "date"), C("requests", "Requests that reached an upstream", "int"),
        C("overhead_p50", "Gateway p50", "ms"), C("overhead_p99", "Gateway p99", "ms"),
        C("latency_p95", "Request p95 latency", "sec"),
    ), Window("calendar", 14), "Gateway time = latency − upstream latency: everything but the wait for the "
       "provider (auth, budgets, routing, logging, relaying). Nearest rank over requests that "
       "reached an upstream, the same requests as the latency percentiles.",
        requires=DETAILS({"upstream_latency"}), compute=speed.gateway_overhead_rows, show_rows=31),
    TableDef("hourly_throughput", "Hourly throughput", q.HOURLY_THROUGHPUT, (
        C("hour", "Hour (UTC)", "ts"), C("requests_per_hour", "Requests", "int"),
        C("errors", "Errors", "int"),
    ), Window("hours", 24), datasette="hourly_throughput", show_rows=24),
    TableDef("request_volume_by_hour", "Request volume by hour of day, today",
             q.REQUEST_VOLUME_BY_HOUR, (C("hour", "Hour (UTC)"), REQUESTS), TODAY,
             datasette="request_volume_by_hour", show_rows=24),
    # -- errors
    TableDef("error_rates", "Error rate by model", q.ERROR_RATES, (
        MODEL, C("total_requests", "Requests", "int"), C("errors", "Errors", "int"),
        C("error_rate", "Error rate", "pct"),
    ), LAST_7, datasette="error_rates"),
    TableDef("status_codes_daily", "Status codes by day", q.STATUS_CODES_DAILY, (
        C("date", "Date", "date"), C("status_code", "Status", "code"), REQUESTS,
    ), DAYS_30, show_rows=20),
    TableDef("error_types", "Error types", q.ERROR_TYPES, (
        C("error_type", "Error type"), C("status_code", "Status", "code"), REQUESTS,
        C("last_seen", "Last seen (UTC)", "ts"),
    ), LAST_7, requires=DETAILS({"error_type"})),
    TableDef("failed_requests", "Failed requests", q.FAILED_REQUESTS, (
        C("timestamp", "Time (UTC)", "ts"), MODEL, USER, C("status_code", "Status", "code"),
        C("error_message", "Error message (first 200 characters)"),
    ), Window("all"), datasette="failed_requests", params={"limit": 50}),
    # -- pricing coverage
    TableDef("cost_status_summary", "Requests by pricing status", q.COST_STATUS_SUMMARY, (
        C("cost_status", "Pricing status"), REQUESTS, C("tokens", "Tokens", "int"),
        C("estimated_token_requests", "With estimated tokens", "int"), C("cost", "Cost", "usd"),
    ), LAST_30, "priced: genai-prices; config: prices from config.yaml; unpriced: no price "
       "known, logged as $0; none: no usage to price (e.g. failed requests).",
        requires=DETAILS({"cost_status", "tokens_estimated"})),
    TableDef("unpriced_models", "Models without a price", q.UNPRICED_MODELS, (
        MODEL, REQUESTS, C("tokens", "Tokens", "int"),
        C("estimated_token_requests", "With estimated tokens", "int"),
        C("first_seen", "First seen (UTC)", "ts"), C("last_seen", "Last seen (UTC)", "ts"),
    ), LAST_30, "Their requests cost $0 in every total on this site: set "
       "input_cost_per_token/output_cost_per_token in config.yaml to price them.",
        requires=DETAILS({"cost_status", "tokens_estimated"})),
    TableDef("estimated_tokens", "Requests with estimated tokens", q.ESTIMATED_TOKENS, (
        MODEL, REQUESTS, C("estimated_tokens", "Estimated tokens", "int"),
        C("cost_from_estimates", "Cost from estimates", "usd"),
    ), LAST_30, "The upstream reported no usage; the gateway counted the tokens itself.",
        requires=DETAILS({"tokens_estimated"})),
    TableDef("zero_cost_models", "Successful requests that used tokens but cost $0",
             q.ZERO_COST_MODELS, (MODEL, REQUESTS, C("tokens", "Tokens", "int")), LAST_30,
             "From the guide's columns alone, so older databases show it too."),
)


S = Section
PAGES: tuple[Page, ...] = (
    Page("index", "Overview", "Today and the last 7 and 30 days at a glance.", (
        S("period_summary"), S("cost_change", "cost_waterfall"), S("anomalies"),
        S("daily_health", "daily_health"), S("todays_stats"), S("daily_cost_trend", "daily_requests"),
        S("todays_top_models"), S("top_models"), S("recent_errors"), S("recent_requests"),
    )),
    Page("cost", "Cost", "Where the money goes, in USD as logged per request.", (
        S("month_forecast"), S("month_to_date", "month_to_date"), S("budgets"),
        S("daily_cost_trend", "daily_cost"), S("daily_cost_by_model", "daily_cost_by_model"),
        S("cost_by_model", "cost_by_model"), S("top_users_by_cost", "cost_by_user"),
        S("cost_by_key"), S("cost_by_team"), S("most_expensive_requests"),
    )),
    Page("usage", "Usage", "Requests and tokens by model, user and virtual key.", (
        S("usage_by_model", "requests_by_model"), S("daily_tokens_by_model", "daily_tokens"),
        S("usage_by_user"), S("usage_by_key"), S("token_efficiency"),
    )),
    Page("performance", "Performance", "Latency percentiles, streaming speed, the gateway's own "
         "time, throughput.", (
        S("latency_percentiles"), S("daily_latency_percentiles", "latency_percentiles"),
        S("latency_by_model"), S("ttft_by_model"), S("stream_speed"),
        S("daily_stream_speed", "stream_speed"), S("gateway_overhead", "gateway_overhead"),
        S("hourly_throughput", "hourly_throughput"),
        S("request_volume_by_hour", "request_volume_by_hour"),
    )),
    Page("errors", "Errors", "Failed requests, by model, status and type.", (
        S("error_rates", "error_rates"), S("status_codes_daily", "status_codes"),
        S("error_types"), S("failed_requests"),
    )),
    Page("pricing", "Pricing coverage", "Requests whose cost is unknown or estimated, so a $0 "
         "never hides usage.", (
             S("cost_status_summary"), S("unpriced_models"), S("estimated_tokens"),
             S("zero_cost_models"),
         )),
)
