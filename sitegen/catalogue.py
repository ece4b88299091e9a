"""What the report shows: its tables (query, window, columns), charts and pages.

Each table's name is its anchor, its data file name (`data/<name>.csv|json`) and, where one
exists, the Datasette canned query it links to (`datasette/metadata.yml` defines them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import queries as q

STAMP = "%Y-%m-%d %H:%M:%S"


def stamp(moment: datetime) -> str:
    """The log's timestamp format, 'YYYY-MM-DD HH:MM:SS.fff' (text comparison = time order)."""
    return moment.strftime(STAMP) + f".{moment.microsecond // 1000:03d}"


@dataclass(frozen=True)
class Window:
    """How a table's :start is derived from the build's clock; :end is always the clock."""

    kind: str  # rolling | calendar | today | hours | all
    n: int = 0

    def bounds(self, now: datetime) -> dict[str, str]:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = {
            "rolling": lambda: now - timedelta(days=self.n),
            "calendar": lambda: midnight - timedelta(days=self.n - 1),
            "today": lambda: midnight,
            "hours": lambda: now.replace(minute=0, second=0, microsecond=0)
            - timedelta(hours=self.n - 1),
            "all": lambda: datetime(1970, 1, 1, tzinfo=now.tzinfo),
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
        S("period_summary"), S("todays_stats"), S("daily_cost_trend", "daily_requests"),
        S("todays_top_models"), S("top_models"), S("recent_errors"), S("recent_requests"),
    )),
    Page("cost", "Cost", "Where the money goes, in USD as logged per request.", (
        S("daily_cost_trend", "daily_cost"), S("daily_cost_by_model", "daily_cost_by_model"),
        S("cost_by_model", "cost_by_model"), S("top_users_by_cost", "cost_by_user"),
        S("cost_by_key"), S("cost_by_team"), S("most_expensive_requests"),
    )),
    Page("usage", "Usage", "Requests and tokens by model, user and virtual key.", (
        S("usage_by_model", "requests_by_model"), S("daily_tokens_by_model", "daily_tokens"),
        S("usage_by_user"), S("usage_by_key"), S("token_efficiency"),
    )),
    Page("performance", "Performance", "Latency percentiles, time to first token, throughput.", (
        S("latency_percentiles"), S("daily_latency_percentiles", "latency_percentiles"),
        S("latency_by_model"), S("ttft_by_model"), S("hourly_throughput", "hourly_throughput"),
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
