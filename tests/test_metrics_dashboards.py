"""LiteLLM's own Grafana dashboards (tests/grafana/, MIT) against /metrics after real traffic:
every metric their panels query is exported, except the ones listed here with the reason, and
tests/grafana/README.md says how many panels of each get data."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.callbacks import CALLBACKS

from .conftest import MASTER_KEY
from .metrics_helpers import new_key, post, scrape_text

GRAFANA = Path(__file__).parent / "grafana"
METRIC = re.compile(r"\blitellm_\w+")
GROUPING = re.compile(r"\b(?:by|without)\s*\([^)]*\)")  # label names, e.g. by (litellm_model_name)
PROMPT = [{"role": "user", "content": "Fill the dashboards."}]

_NONE = "the gateway has no such feature"
#: What the gateway does not export, and why. Anything else a dashboard queries must be there.
NOT_EXPORTED: dict[str, str] = {
    # LiteLLM features the gateway does not have
    "litellm_admission_admitted_requests": "no admission-control queue: " + _NONE,
    "litellm_admission_queued_requests": "no admission-control queue: " + _NONE,
    "litellm_admission_rejected_requests_total": "no admission-control queue: " + _NONE,
    "litellm_overhead_with_guardrails_latency_metric_bucket": "no guardrails: " + _NONE,
    "litellm_guardrail_requests_total": "no guardrails: " + _NONE,
    "litellm_guardrail_errors_total": "no guardrails: " + _NONE,
    "litellm_guardrail_latency_seconds_bucket": "no guardrails: " + _NONE,
    "litellm_mcp_tool_calls_total": "no MCP: " + _NONE,
    "litellm_mcp_tool_call_spend_metric_total": "no MCP: " + _NONE,
    "litellm_managed_file_created_total": "no files API: " + _NONE,
    "litellm_managed_file_deleted_total": "no files API: " + _NONE,
    "litellm_managed_file_size_bytes": "no files API: " + _NONE,
    "litellm_managed_batch_created_total": "no batches API: " + _NONE,
    "litellm_managed_batch_duration_seconds_bucket": "no batches API: " + _NONE,
    "litellm_check_batch_cost_jobs_polled": "no batches API: " + _NONE,
    "litellm_check_batch_cost_jobs_processed_total": "no batches API: " + _NONE,
    "litellm_check_batch_cost_errors_total": "no batches API: " + _NONE,
    "litellm_check_batch_cost_last_run_timestamp": "no batches API: " + _NONE,
    "litellm_cache_hits_metric_total": "no response cache: " + _NONE,
    "litellm_cache_misses_metric_total": "no response cache: " + _NONE,
    "litellm_cached_tokens_metric_total": "no response cache: " + _NONE,
    "litellm_images_generated_metric_total": "no image endpoint: " + _NONE,
    "litellm_video_duration_seconds_metric_total": "no video endpoint: " + _NONE,
    "litellm_remaining_org_budget_metric": "no organizations: " + _NONE,
    "litellm_org_max_budget_metric": "no organizations: " + _NONE,
    "litellm_org_budget_remaining_hours_metric": "no organizations: " + _NONE,
    "litellm_provider_remaining_budget_metric": "no provider budgets: " + _NONE,
    "litellm_active_users": "no SCIM deactivation: " + _NONE,
    "litellm_redis_circuit_breaker_state": "no Redis cache: " + _NONE,
    "litellm_redis_circuit_breaker_transitions_total": "no Redis cache: " + _NONE,
    "litellm_redis_circuit_breaker_failures_total": "no Redis cache: " + _NONE,
    # Token details the gateway does not read from usage
    "litellm_input_cache_creation_tokens_metric_total": "cache-write tokens (Anthropic's) are not read from usage",
    "litellm_provider_cache_creation_input_tokens_metric_total": "cache-write tokens (Anthropic's) are not read from usage",
    "litellm_input_audio_tokens_metric_total": "audio tokens are not read from usage",
    "litellm_output_audio_tokens_metric_total": "audio tokens are not read from usage",
    "litellm_zero_cost_requests_total": "unpriced requests show as cost_status in the request log instead",
    # LiteLLM's spend-log retention job and its internal services (service_callback)
    **{f"litellm_spend_log_cleanup_{n}": "retention runs as `python -m proxy prune`, outside the gateway"
       for n in ("runs_total", "rows_deleted_total", "rows_remaining", "batch_duration_seconds_bucket", "batch_failures_total")},
    **{f"litellm_{s}_{kind}": "LiteLLM's internal services (Redis, Postgres, its router): none here"
       for s in ("auth", "batch_write_to_db", "postgres", "proxy_pre_call", "redis", "redis_daily_org_spend_update_queue",
                 "redis_daily_tag_spend_update_queue", "redis_daily_team_spend_update_queue",
                 "redis_window_spend_update_queue", "reset_budget_job", "router", "self")
       for kind in ("latency_bucket", "total_requests_total", "failed_requests_total")},
    **{f"litellm_{q}_size": "LiteLLM's spend-update queues: none here"
       for q in ("in_memory_daily_spend_update_queue", "in_memory_spend_update_queue", "pod_lock_manager",
                 "redis_daily_agent_spend_update_queue", "redis_daily_end_user_spend_update_queue",
                 "redis_daily_spend_update_queue", "redis_spend_update_queue")},
}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(GRAFANA.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    def walk(items: list[dict[str, Any]]):
        for item in items:
            yield item
            yield from walk(item.get("panels") or [])
    return [p for p in walk(dashboard["panels"]) if p.get("type") != "row"]


def queried(panel: dict[str, Any]) -> set[str]:
    return {name for t in panel.get("targets", []) for name in METRIC.findall(GROUPING.sub("", t.get("expr", "")))}


@pytest.fixture
async def traffic(gateway_factory, upstream_base, dead_base):
    """A gateway after the traffic a team's gateway sees: streamed and not, failures, failover,
    a fallback, virtual keys with a user, a team and a budget, end users."""
    def model(name, upstream, base=upstream_base, **params):
        return {"model_name": name, "litellm_params": {"model": upstream, "api_base": base,
                                                        "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, **params}}
    gw = await gateway_factory({
        "model_list": [
            model("chat", "openai/cached-reasoning", rpm=600, tpm=100000, weight=0),
            model("chat", "openai/cached-reasoning", dead_base, weight=1),
            model("broken", "openai/error-503"),
            model("also-broken", "openai/error-500"),
            model("picky", "openai/error-400"),
        ],
        "router_settings": {"fallbacks": [{"broken": ["also-broken", "chat"]}], "allowed_fails": 0, "cooldown_time": 30},
        "litellm_settings": {"failure_callback": ["slack"]},  # to a dead webhook: messages get lost
        "environment_variables": {"SLACK_WEBHOOK_URL": dead_base + "/hook"},
        "general_settings": {"master_key": MASTER_KEY, "log_file": None, "callback_batch_seconds": 0.05},
    })
    gw.app[CALLBACKS].backoff = 0.01
    for path, body in (
        ("/user/new", {"user_id": "alice", "max_budget": 10.0, "budget_duration": "30d", "auto_create_key": False}),
        ("/team/new", {"team_id": "team-a", "team_alias": "Team A", "max_budget": 20.0, "budget_duration": "1d",
                       "rpm_limit": 100, "tpm_limit": 100000, "members_with_roles": [{"role": "user", "user_id": "alice"}]}),
        ("/end_user/new", {"user_id": "customer-1", "max_budget": 5.0, "budget_duration": "30d"}),
    ):
        status, made = await post(gw, path, body)
        assert status == 200, made
    key = await new_key(gw, key_alias="checkout", user_id="alice", team_id="team-a", max_budget=5.0, budget_duration="7d",
                        rpm_limit=100, tpm_limit=100000, model_rpm_limit={"chat": 50}, model_tpm_limit={"chat": 50000})
    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    await client.chat.completions.create(model="chat", messages=PROMPT, user="customer-1")
    stream = await client.chat.completions.create(model="chat", messages=PROMPT, stream=True, user="customer-2")
    async for _ in stream:
        pass
    await client.chat.completions.create(model="broken", messages=PROMPT)  # its second fallback answers
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="missing", messages=PROMPT)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="picky", messages=PROMPT)
    await client.close()
    await gw.client.chat.completions.create(model="chat", messages=PROMPT)
    for _ in range(200):  # bounded wait for the failures' Slack message to be lost
        if gw.app[CALLBACKS].failed_by_channel:
            break
        await asyncio.sleep(0.02)
    return await scrape_text(gw.url)


def sample_names(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


async def test_every_metric_litellms_dashboards_query_is_exported(traffic):
    exported = sample_names(traffic)
    queried_anywhere: set[str] = set()
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            names = queried(panel)
            queried_anywhere |= names
            missing = names - exported - set(NOT_EXPORTED)
            assert not missing, f"{name}: panel {panel['title']!r} queries {sorted(missing)}"
    # The exceptions stay honest: each is queried by a dashboard, and none is exported.
    assert set(NOT_EXPORTED) <= queried_anywhere
    assert not set(NOT_EXPORTED) & exported


async def test_the_readme_says_how_many_panels_get_data(traffic):
    exported = sample_names(traffic)
    readme = (GRAFANA / "README.md").read_text()
    for name, dashboard in dashboards().items():
        all_panels = panels(dashboard)
        with_data = sum(1 for p in all_panels if queried(p) and queried(p) <= exported)
        claim = f"`{name}` ({dashboard['title']}): {with_data} of {len(all_panels)} panels"
        assert claim in readme, claim


async def test_the_docs_list_every_metric(traffic):
    docs = (Path(__file__).parent.parent / "docs" / "metrics-and-alerts.md").read_text()
    documented = set(re.findall(r"`(\w+)`", docs))
    families = {f.name for f in text_string_to_metric_families(traffic) if not f.name.endswith("_created")}
    assert families - documented == set()


PROMTOOL = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))
#: promtool's only objections: names LiteLLM chose, which its dashboards query.
LITELLM_NAMES_PROMTOOL_FLAGS = {
    **{f"litellm_{who}_budget_remaining_hours_metric": 'use base unit "seconds" instead of "hours"'
       for who in ("api_key", "team", "user", "customer")},
    "litellm_teams_count": 'non-histogram and non-summary metrics should not have "_count" suffix',
}


def promtool(text: str) -> tuple[int, list[str]]:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    return done.returncode, (done.stdout + done.stderr).splitlines()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make test takes it from Debian's prometheus package)")
async def test_promtool_objects_only_to_litellms_own_names(traffic):
    status, lines = promtool(traffic)
    assert status != 0 and sorted(lines) == sorted(f"{n} {why}" for n, why in LITELLM_NAMES_PROMTOOL_FLAGS.items())
    # Without those, promtool is satisfied.
    names = tuple(LITELLM_NAMES_PROMTOOL_FLAGS)
    kept = "\n".join(line for line in traffic.splitlines() if not any(n in line for n in names)) + "\n"
    assert promtool(kept) == (0, [])
