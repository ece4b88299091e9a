"""Every setting of config.yaml, declared once with its default and help.

The sections mirror LiteLLM's proxy config so an existing config works as is; `report` and
`alerts` are ours. `config.py` reads YAML into these dataclasses, coercing types by annotation.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any


def setting(default: Any, help: str) -> Any:
    """A dataclass field carrying its help text (listed by `python -m proxy settings`)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class LitellmParams:
    model: str = setting("", "Upstream model as provider/name, e.g. openai/gpt-4o-mini.")
    api_base: str | None = setting(None, "Base URL of the OpenAI-compatible upstream.")
    api_key: str | None = setting(None, "Key sent upstream as Bearer; use os.environ/NAME.")
    api_version: str | None = setting(None, "Azure api-version query parameter.")
    timeout: float | None = setting(None, "Seconds before the upstream call fails with 504.")
    stream_timeout: float | None = setting(None, "Seconds to wait for each streamed chunk.")
    rpm: int | None = setting(None, "Requests per minute this deployment accepts (informational).")
    tpm: int | None = setting(None, "Tokens per minute this deployment accepts (informational).")
    input_cost_per_token: float | None = setting(None, "USD per prompt token; overrides genai-prices.")
    output_cost_per_token: float | None = setting(None, "USD per completion token; overrides genai-prices.")
    extra_headers: dict[str, str] = setting({}, "Extra headers sent upstream.")
    weight: float | None = setting(None, "Share of simple-shuffle picks (else rpm, else tpm).")
    #: Any other key: OpenAI request parameters (temperature, max_tokens, ...) are sent as
    #: defaults the client's own values override, as LiteLLM does; the rest warn, unused.
    extra: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Other keys: OpenAI request parameters become per-deployment defaults.", "extra": True})


@dataclass(frozen=True)
class ModelInfo:
    id: str | None = setting(None, "Deployment id (default: a hash of the deployment); /model/info shows it.")
    mode: str | None = setting(None, "chat, completion or embedding: what /health probes it with.")
    base_model: str | None = setting(None, "Model name used for pricing when the alias is custom.")
    access_groups: list[str] = setting(
        [], "Access groups of this deployment: a key, user or team whose `models` names a group may use it."
    )
    health_check_timeout: float | None = setting(None, "Seconds the /health probe waits for this deployment.")
    #: LiteLLM's model_info is free-form: other keys are kept and shown by /model/info.
    extra: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Any other key: kept and shown by /model/info.", "extra": True})


@dataclass(frozen=True)
class Deployment:
    model_name: str = setting("", "The name clients ask for.")
    litellm_params: LitellmParams = field(
        default_factory=LitellmParams, metadata={"help": "How to reach the upstream."}
    )
    model_info: ModelInfo = field(default_factory=ModelInfo, metadata={"help": "Optional metadata."})


@dataclass(frozen=True)
class GeneralSettings:
    master_key: str | None = setting(None, "Admin Bearer key; without one the gateway is open.")
    database_path: str = setting("litellm.db", "Request log SQLite file (--db overrides).")
    keys_database_path: str | None = setting(None, "Virtual keys and budgets; default keys.db beside the log.")
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR.")
    json_logs: bool = setting(False, "Write gateway.log lines as JSON objects.")
    log_file: str | None = setting("gateway.log", "Gateway log file; null logs to stderr only.")
    log_max_bytes: int = setting(0, "Rotate log_file past this size (0: never; use logrotate).")
    log_backup_count: int = setting(7, "Rotated log files kept.")
    log_flush_seconds: float = setting(
        0.5, "Longest a request line waits in memory before reaching log_file (0: write each "
        "line at once); warnings and errors are written at once."
    )
    ui_username: str | None = setting(None, "Basic-auth user for /ui (or UI_USERNAME).")
    ui_password: str | None = setting(None, "Basic-auth password for /ui (or UI_PASSWORD).")
    ui_dir: str = setting("public", "Folder of the built report served at /ui.")
    ui_session_seconds: float = setting(
        3600.0, "How long a sign-in to /ui's admin actions lasts (master key or ui_username/"
        "ui_password); changing the master key ends every session."
    )
    store_prompts: bool = setting(True, "Store request messages and response text in the log.")
    max_stored_chars: int = setting(10000, "Cap on stored messages/response text per row.")
    request_timeout: float = setting(600.0, "Default upstream timeout in seconds.")
    max_request_body_mb: float = setting(
        32.0, "Largest request body accepted, in MiB; a larger one is refused with 413."
    )
    max_request_size_mb: float | None = setting(
        None, "LiteLLM's name for max_request_body_mb (used when that is not set)."
    )
    max_request_bytes: int | None = setting(None, "Deprecated: use max_request_body_mb.")
    metrics_auth: bool = setting(False, "Require the master key on /metrics.")
    require_auth_for_metrics_endpoint: bool = setting(
        False, "Require a valid key (master or virtual) on /metrics, as LiteLLM does."
    )
    health_check_interval: float = setting(
        300.0, "Seconds /health's per-deployment probe results are reused (and the period of "
        "background_health_checks)."
    )
    health_check_timeout: float = setting(60.0, "Seconds each /health probe may take at most.")
    background_health_checks: bool = setting(
        False, "Probe every deployment each health_check_interval in the background."
    )
    retention_days: int | None = setting(None, "Prune request-log rows older than this many days.")
    retention_interval: float = setting(3600.0, "Seconds between the gateway's retention prunes.")
    retention_archive_dir: str | None = setting(None, "Archive pruned rows here first (gzip JSON lines per month).")
    wal_checkpoint_interval: float = setting(60.0, "Seconds between WAL checkpoints of the request log (0: off).")
    slow_request_threshold: float | None = setting(None, "Seconds after which a request alerts as slow.")
    trusted_proxies: list[str] = setting(
        [], "Reverse-proxy addresses whose X-Forwarded-For names the client (e.g. [127.0.0.1])."
    )
    alerting: list[str] = setting([], "Channels for budget and slow-request alerts (LiteLLM's alerting); default: failure_callback's.")
    callback_batch_seconds: float = setting(5.0, "Callback events within this many seconds go out as one grouped message.")
    shutdown_grace: float = setting(
        15.0, "Seconds in-flight requests get to finish after SIGTERM; then they are cancelled "
        "(and logged so) and the gateway exits within a few seconds more."
    )
    request_log_spill_path: str | None = setting(
        None, "JSON-lines file for request-log rows the database cannot take (locked, full, "
        "read-only), replayed once it can; default <database>-spill.jsonl beside it."
    )
    request_log_spill_after: float = setting(
        5.0, "Seconds rows wait for a database that refuses writes before they are spilled."
    )
    request_log_max_backlog: int = setting(
        10000, "Request-log rows held in memory at most while the database refuses writes; "
        "past it they are spilled at once."
    )
    metrics_label_values: int = setting(
        500, "Distinct values /metrics keeps per label (key alias, team, user, end user, "
        "wildcard model); later ones are counted as \"other\"."
    )

    redis_url: str | None = setting(
        None, "redis://[:password@]host:port/db shared by every gateway host: keys, users, teams, "
        "budgets, spend, rate limits and cooldowns (also router_settings.redis_host/redis_port/"
        "redis_password, REDIS_URL, REDIS_HOST/REDIS_PORT/REDIS_PASSWORD). Unset: keys.db on this host."
    )

    @property
    def max_request_body_bytes(self) -> int:
        return int(self.max_request_body_mb * 1024 * 1024)


@dataclass(frozen=True)
class LitellmSettings:
    max_budget: float | None = setting(None, "USD the whole gateway may spend per budget_duration.")
    budget_duration: str | None = setting(None, "Budget period: 30s, 1h, 1d, 7d, 30d.")
    success_callback: list[str] = setting([], "Callbacks for successful requests, e.g. webhook.")
    failure_callback: list[str] = setting([], "Callbacks for failed requests, e.g. slack.")
    set_verbose: bool = setting(False, "Same as log_level DEBUG.")
    request_timeout: float | None = setting(None, "Default upstream timeout (LiteLLM name).")
    drop_params: bool = setting(False, "Accepted for compatibility; requests pass through.")
    num_retries: int | None = setting(
        None, "Further deployments of the model tried after a failed one (router_settings wins)."
    )
    json_logs: bool = setting(False, "Same as general_settings.json_logs (LiteLLM's place for it).")
    callbacks: list[str] = setting([], "Callbacks for every request, e.g. prometheus (always on), slack, webhook.")
    require_auth_for_metrics_endpoint: bool = setting(
        False, "Same as general_settings.require_auth_for_metrics_endpoint."
    )
    disable_end_user_cost_tracking_prometheus_only: bool = setting(
        False, "Leave the end_user label of /metrics empty (the body's `user` stays in the log)."
    )
    fallbacks: list[dict[str, Any]] = setting([], "Same as router_settings.fallbacks.")
    context_window_fallbacks: list[dict[str, Any]] = setting(
        [], "Same as router_settings.context_window_fallbacks."
    )
    content_policy_fallbacks: list[dict[str, Any]] = setting(
        [], "Same as router_settings.content_policy_fallbacks."
    )


@dataclass(frozen=True)
class RouterSettings:
    routing_strategy: str = setting(
        "simple-shuffle", "simple-shuffle (random, weighted by weight/rpm/tpm) or least-busy; "
        "other LiteLLM strategies warn and use simple-shuffle."
    )
    model_group_alias: dict[str, Any] = setting(
        {}, "Extra names for a model: {alias: model_name} or {alias: {model, hidden}}."
    )
    num_retries: int | None = setting(
        None, "Further deployments of the model tried after a failed one; default: all of them."
    )
    timeout: float | None = setting(None, "Default upstream timeout in seconds for every model.")
    allowed_fails: int = setting(3, "Failures a deployment may have within cooldown_time before it cools down.")
    cooldown_time: float = setting(5.0, "Seconds a failing deployment is skipped.")
    fallbacks: list[dict[str, Any]] = setting(
        [], "[{model: [fallback, ...]}]: tried in order when every deployment of model fails."
    )
    context_window_fallbacks: list[dict[str, Any]] = setting(
        [], "[{model: [fallback, ...]}]: tried when the prompt is too long for model."
    )
    content_policy_fallbacks: list[dict[str, Any]] = setting(
        [], "[{model: [fallback, ...]}]: tried when model refuses on content policy."
    )
    redis_url: str | None = setting(None, "Same as general_settings.redis_url (LiteLLM's router takes it here).")
    redis_host: str | None = setting(None, "Redis host shared by every gateway (else REDIS_HOST); see general_settings.redis_url.")
    redis_port: int | None = setting(None, "Redis port (else REDIS_PORT, else 6379).")
    redis_password: str | None = setting(None, "Redis password (else REDIS_PASSWORD).")


@dataclass(frozen=True)
class ReportSettings:
    title: str = setting("Shin Gateway", "Title of the static report.")
    datasette_url: str | None = setting(None, "Base URL of Datasette; tables link to its queries.")
    report_url: str | None = setting(None, "Public URL of the report (used in Datasette and alerts).")
    breakdowns: list[str] = setting(
        [], "Request metadata keys the report breaks requests and cost down by, e.g. [project, "
        "feature, environment, tags]; a key whose value is a list (tags) counts each item."
    )
    logs_rows: int = setting(
        2000, "Newest requests (and, besides, newest errors) on the report's Logs page."
    )
    cache_dir: str | None = setting(
        None, "Folder of the report's cache of hourly aggregates, so a build reads only the rows "
        "logged since the last (default: $XDG_CACHE_HOME/shin-report or ~/.cache/shin-report)."
    )


@dataclass(frozen=True)
class Config:
    models: tuple[Deployment, ...] = ()
    general: GeneralSettings = field(default_factory=GeneralSettings)
    litellm: LitellmSettings = field(default_factory=LitellmSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    router: RouterSettings = field(default_factory=RouterSettings)
    alerts: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    source: str | None = None

    def env(self, name: str) -> str | None:
        """A variable from environment_variables, else the process environment."""
        return self.environment.get(name, os.environ.get(name))

    @property
    def model_names(self) -> list[str]:
        """Every name config gives a model (aliases included): what may become a metric label."""
        return sorted({d.model_name for d in self.models} | set(self.router.model_group_alias))


#: config.yaml sections and the dataclass each is read into (model_list entries: Deployment).
SECTIONS: dict[str, type] = {
    "general_settings": GeneralSettings,
    "litellm_settings": LitellmSettings,
    "router_settings": RouterSettings,
    "report": ReportSettings,
    "model_list[].litellm_params": LitellmParams,
    "model_list[].model_info": ModelInfo,
}


def describe() -> str:
    """Every setting with its default and help, as `python -m proxy settings` prints it."""
    lines = []
    for section, cls in SECTIONS.items():
        lines.append(f"{section}:")
        for f in fields(cls):
            if f.metadata.get("extra"):
                lines.append("  <any other key>")
                lines.append(f"      {f.metadata.get('help', '')}")
                continue
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            lines.append(f"  {f.name}: {json.dumps(default)}")
            lines.append(f"      {f.metadata.get('help', '')}")
    return "\n".join(lines) + "\n"
