"""LiteLLM config keys the gateway honours, and the ones it must not trip over."""

from __future__ import annotations

import json

import aiohttp
import pytest
import yaml

from proxy.config import parse_config
from proxy.errors import ConfigError

from .conftest import MASTER_KEY, default_raw_config
from .keys_helpers import generate
from .processes import start, stop

PROMPT = [{"role": "user", "content": "hello"}]

LITELLM_EXTRAS = {
    "model_list": [{"model_name": "m", "litellm_params": {
        "model": "openai/m", "api_key": "os.environ/SET_KEY",
        "aws_secret_access_key": "os.environ/UNSET_AWS", "region_name": "eu"}}],
    "litellm_settings": {
        "default_team_settings": [
            {"team_id": "t1", "langfuse_secret": "os.environ/UNSET_LANGFUSE"},
            {"team_id": "t2", "langfuse_secret": "os.environ/UNSET_LANGFUSE"},
        ],
        "cache_params": {"password": "os.environ/UNSET_REDIS"},
    },
    "router_settings": {"cache_kwargs": {"host": "os.environ/UNSET_REDIS", "port": "os.environ/UNSET_PORT"}},
    "finetune_settings": [{"api_key": "os.environ/UNSET_AZURE"}],
}


def test_unset_variables_in_ignored_keys_warn_once_and_never_stop_start_up(caplog):
    config = parse_config(LITELLM_EXTRAS, env={"SET_KEY": "k-1"})
    assert config.models[0].litellm_params.api_key == "k-1"
    about = {name: [m for m in caplog.messages if f"variable {name} " in m]
             for name in ("UNSET_AWS", "UNSET_LANGFUSE", "UNSET_REDIS", "UNSET_PORT", "UNSET_AZURE")}
    assert {name: len(found) for name, found in about.items()} == dict.fromkeys(about, 1)
    assert "ignores" in about["UNSET_LANGFUSE"][0]


def test_unset_variables_in_keys_the_gateway_reads_still_stop_it():
    with pytest.raises(ConfigError, match=r"model_list\[0\]\.litellm_params\.api_key: environment variable SET_KEY"):
        parse_config(LITELLM_EXTRAS, env={})
    raw = {"router_settings": {"timeout": "os.environ/UNSET_TIMEOUT"}}
    with pytest.raises(ConfigError, match=r"router_settings\.timeout: environment variable UNSET_TIMEOUT"):
        parse_config(raw, env={})
    raw = {"router_settings": {"redis_host": "os.environ/UNSET_REDIS"}}  # read: shared state
    with pytest.raises(ConfigError, match=r"router_settings\.redis_host: environment variable UNSET_REDIS"):
        parse_config(raw, env={})


def test_one_warning_per_unknown_key_across_the_model_list(caplog):
    parse_config({"model_list": [
        {"model_name": f"m{i}", "litellm_params": {"model": f"openai/m{i}", "region_name": "eu"}} for i in range(5)
    ]}, env={})
    assert len([m for m in caplog.messages if "model_list[].litellm_params.region_name" in m]) == 1


def test_router_settings_read_and_merged_with_litellm_settings():
    config = parse_config({
        "model_list": [{"model_name": "a", "rpm": 5, "tpm": 100, "litellm_params": {"model": "openai/a"}}],
        "litellm_settings": {"num_retries": 4, "fallbacks": [{"a": ["b"]}, {"c": "d"}],
                             "context_window_fallbacks": [{"a": ["big"]}]},
        "router_settings": {"fallbacks": [{"a": ["e", "f"]}], "allowed_fails": 1, "cooldown_time": 30,
                            "routing_strategy": "least-busy", "model_group_alias": {"x": "a"}},
    }, env={})
    router = config.router
    assert router.num_retries == 4 and router.allowed_fails == 1 and router.cooldown_time == 30
    assert router.fallbacks == [{"a": ["e", "f"]}, {"c": ["d"]}]  # router_settings wins per model
    assert router.context_window_fallbacks == [{"a": ["big"]}]
    assert router.model_group_alias == {"x": {"model": "a", "hidden": False}}
    params = config.models[0].litellm_params
    assert (params.rpm, params.tpm) == (5, 100)  # LiteLLM's deployment-level rpm/tpm


@pytest.mark.parametrize("raw, message", [
    ({"router_settings": {"fallbacks": ["gpt-4"]}}, r"router_settings\.fallbacks\[0\]: expected a mapping"),
    ({"litellm_settings": {"fallbacks": [{"a": [1]}]}}, r"litellm_settings\.fallbacks\[0\]\.a: expected a list"),
    ({"router_settings": {"model_group_alias": {"x": 3}}}, r"model_group_alias\.x: expected a model name"),
    ({"router_settings": {"allowed_fails": -1}}, r"router_settings\.allowed_fails: must be >= 0"),
    ({"general_settings": {"health_check_interval": 0}}, r"general_settings\.health_check_interval: must be > 0"),
])
def test_invalid_router_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, env={})


async def test_litellm_settings_json_logs(gateway_factory, upstream_base, dead_base, gateway_log):
    from proxy.logsetup import configure_logging

    raw = default_raw_config(upstream_base, dead_base)
    raw["litellm_settings"] = {"json_logs": True}
    raw["general_settings"]["log_file"] = str(gateway_log.path)
    config = parse_config(raw, env={})
    configure_logging(config.general, config.litellm)
    gw = await gateway_factory(raw)
    await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    gw.flush()
    entries = [json.loads(line) for line in gateway_log.stop().splitlines()]
    assert [e["status"] for e in entries if e["logger"] == "proxy.access"] == [200]


@pytest.mark.parametrize("section", ["general_settings", "litellm_settings"])
async def test_require_auth_for_metrics_endpoint(gateway_factory, upstream_base, dead_base, section):
    raw = default_raw_config(upstream_base, dead_base)
    raw.setdefault(section, {})["require_auth_for_metrics_endpoint"] = True
    raw.setdefault("litellm_settings", {})["callbacks"] = ["prometheus"]
    gw = await gateway_factory(raw)
    key = (await generate(gw, models=["gpt-4o-mini"]))["key"]
    async with aiohttp.ClientSession() as http:
        async def scrape(token):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.get(f"{gw.url}/metrics", headers=headers) as resp:
                return resp.status, await resp.text()

        assert (await scrape(None))[0] == 401
        assert (await scrape("sk-not-a-key"))[0] == 401
        status, text = await scrape(key)  # any valid key, as in LiteLLM
        assert status == 200 and "litellm_requests_metric" in text
        assert (await scrape(MASTER_KEY))[0] == 200


def test_callbacks_are_success_and_failure_callbacks(caplog):
    from proxy.callbacks import build_subscriptions
    from proxy.callbacks.batch import FAILURE, SUCCESS

    config = parse_config({
        "litellm_settings": {"callbacks": ["prometheus", "webhook"]},
        "environment_variables": {"GENERIC_LOGGER_ENDPOINT": "http://127.0.0.1:9/hook"},
    }, env={})
    (subscription,) = build_subscriptions(config)
    assert {SUCCESS, FAILURE} <= subscription.kinds
    assert not any("prometheus" in m for m in caplog.messages)  # /metrics is always on


def test_config_warnings_reach_gateway_log_and_stderr(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "m", "litellm_params": {
            "model": "openai/m", "api_base": "http://127.0.0.1:9/v1", "input_cost_per_token": 0,
            "mock_timeout": True}}],
        "litellm_settings": {"success_callback": ["langfuse"], "langfuse_secret": "os.environ/SHIN_UNSET_LF"},
        "general_settings": {"master_key": MASTER_KEY},
    }))
    log_file = tmp_path / "gateway.log"
    proc, _url = start(["proxy", "serve", "--config", str(config), "--port", "0", "--db", str(tmp_path / "x.db"),
                        "--log-file", str(log_file)], tmp_path / "out.log")
    try:
        logged = log_file.read_text()
        for text in ("model_list[].litellm_params.mock_timeout", "SHIN_UNSET_LF", "litellm_settings.langfuse_secret"):
            assert text in logged and text in (tmp_path / "out.log").read_text()
    finally:
        assert stop(proc) == 0
