"""Deployments resolved once: URLs, headers, environment proxies."""

from __future__ import annotations

import pytest

from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.routing.router import Router


def router(*models: dict) -> Router:
    config = parse_config({"model_list": list(models)}, env={})
    return Router(config)


def test_azure_deployment_url_and_header():
    target = router({"model_name": "gpt", "litellm_params": {
        "model": "azure/my-deploy", "api_base": "https://r.openai.azure.com/", "api_version": "2024-06-01", "api_key": "k"}}).targets("gpt")[0]
    assert target.url("/chat/completions") == "https://r.openai.azure.com/openai/deployments/my-deploy/chat/completions?api-version=2024-06-01"
    assert target.headers["api-key"] == "k" and "Authorization" not in target.headers


def test_openai_default_base_and_bearer():
    target = router({"model_name": "m", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "k"}}).targets("m")[0]
    assert target.url("/embeddings") == "https://api.openai.com/v1/embeddings"
    assert target.headers["Authorization"] == "Bearer k" and target.upstream_model == "gpt-4o-mini"


def test_provider_without_default_base_needs_api_base():
    with pytest.raises(ConfigError, match="api_base is required"):
        router({"model_name": "m", "litellm_params": {"model": "hosted_vllm/llama"}})


def test_environment_proxy_resolved_once_per_deployment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    r = router(
        {"model_name": "cloud", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "k"}},
        {"model_name": "local", "litellm_params": {"model": "openai/llama", "api_base": "http://127.0.0.1:8000/v1"}},
    )
    assert str(r.targets("cloud")[0].proxy) == "http://proxy.corp:3128"
    assert r.targets("local")[0].proxy is None


# -- providers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model, words", [
    ("bedrock/anthropic.claude-3-haiku", "needs AWS request signing"),
    ("vertex_ai/gemini-pro", "needs Google Cloud credentials"),
    ("anthropic/claude-3-5-sonnet", "Give litellm_params.api_base"),
    ("mistralai/mistral-7b-instruct", "Give litellm_params.api_base"),
])
def test_providers_that_do_not_speak_openai_are_refused_plainly(model, words):
    with pytest.raises(ConfigError) as info:
        router({"model_name": "the-model", "litellm_params": {"model": model}})
    message = str(info.value)
    assert "'the-model'" in message and "not OpenAI-compatible" in message and words in message
    assert "speaks only OpenAI's API" in message


def test_signed_providers_are_refused_even_with_an_api_base():
    with pytest.raises(ConfigError, match="not OpenAI-compatible"):
        router({"model_name": "m", "litellm_params": {"model": "bedrock/x", "api_base": "http://h/v1"}})


def test_other_providers_with_an_api_base_start_with_one_warning(caplog):
    r = router(
        {"model_name": "a", "litellm_params": {"model": "anthropic/claude", "api_base": "http://h:1/v1"}},
        {"model_name": "b", "litellm_params": {"model": "anthropic/claude-2", "api_base": "http://h:1/v1"}},
    )
    assert r.targets("a")[0].url("/chat/completions") == "http://h:1/v1/chat/completions"
    assert r.targets("b")[0].upstream_model == "claude-2"
    warnings = [m for m in caplog.messages if "spoken to in OpenAI's format" in m]
    assert len(warnings) == 1 and "anthropic" in warnings[0]


def test_openai_hosted_prefixes_default_to_openai():
    r = router(
        {"model_name": "instruct", "litellm_params": {"model": "text-completion-openai/gpt-3.5-turbo-instruct"}},
        {"model_name": "plain", "litellm_params": {"model": "gpt-4o-mini"}},
    )
    instruct, plain = r.targets("instruct")[0], r.targets("plain")[0]
    assert instruct.url("/completions") == "https://api.openai.com/v1/completions"
    assert instruct.upstream_model == "gpt-3.5-turbo-instruct" and instruct.mode == "completion"
    assert plain.provider == "openai" and plain.api_base == "https://api.openai.com/v1"


def test_public_api_base_drops_credentials_and_query():
    from proxy.routing.providers import public_api_base

    assert public_api_base("https://user:pw@h.example/v1?api-key=s3cret#x") == "https://h.example/v1"
    assert public_api_base("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


# -- names: wildcards and aliases ---------------------------------------------------------------


def wildcard_router(**router_settings):
    config = parse_config({
        "model_list": [
            {"model_name": "*", "litellm_params": {"model": "openai/*", "api_key": "k"}},
            {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_key": "k"}},
            {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
            {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "k"}},
        ],
        "router_settings": router_settings,
    }, env={})
    return Router(config)


def test_wildcards_pass_the_name_on_and_price_it():
    r = wildcard_router()
    group, (target,) = r.candidates("gpt-4o")
    assert group == "*" and target.upstream_model == "gpt-4o"
    assert target.deployment.litellm_params.model == "openai/gpt-4o"
    assert target.price.status == "priced" and target.price.matched.endswith("gpt-4o")
    group, (target,) = r.candidates("openai/gpt-4o-mini")  # the more specific pattern wins
    assert group == "openai/*" and target.upstream_model == "gpt-4o-mini"
    group, (target,) = r.candidates("groq/llama-3.1-8b-instant")
    assert group == "groq/*" and target.url("/x") == "https://api.groq.com/openai/v1/x"
    assert target.upstream_model == "llama-3.1-8b-instant"
    assert r.candidates("gpt-4o-mini")[0] == "gpt-4o-mini"  # an exact name beats any pattern
    assert r.candidates("my-own-model")[1][0].price.status == "unpriced"
    # Resolved once: the same object serves the next request for that name.
    assert r.candidates("gpt-4o")[1][0] is r.candidates("gpt-4o")[1][0]


def test_wildcard_cache_is_bounded():
    from proxy.routing.wildcards import ConcreteTargets

    r = wildcard_router()
    base = r.deployments("*")[0]
    cache = ConcreteTargets(lambda d: base.price, size=3)
    first = cache.get(base, "a")
    for name in "bcd":
        cache.get(base, name)
    assert len(cache._cache) == 3 and cache.get(base, "a") is not first


def test_model_group_alias_routes_and_hidden_aliases_are_not_listed():
    r = wildcard_router(model_group_alias={
        "gpt-4": "gpt-4o-mini", "GPT-4O-MINI": {"model": "gpt-4o-mini", "hidden": True},
        "smart": "gpt-4o",  # served by the "*" pattern
    })
    assert r.candidates("gpt-4")[0] == "gpt-4o-mini"
    assert r.candidates("GPT-4O-MINI")[0] == "gpt-4o-mini"
    group, (target,) = r.candidates("smart")
    assert group == "*" and target.upstream_model == "gpt-4o"
    assert "gpt-4" in r.visible_names and "smart" in r.visible_names
    assert "GPT-4O-MINI" not in r.visible_names


def test_unknown_model_names_what_is_available():
    from proxy.errors import NotFound

    with pytest.raises(NotFound, match="Available models: a"):
        router({"model_name": "a", "litellm_params": {"model": "openai/a", "api_key": "k"}}).candidates("b")


# -- strategies ----------------------------------------------------------------------------------


def test_simple_shuffle_weights_and_least_busy():
    r = router(*(
        {"model_name": "m", "litellm_params": {"model": f"openai/m{i}", "api_key": "k", "rpm": rpm}}
        for i, rpm in enumerate((0, 100, 0))
    ))
    for _ in range(20):  # rpm 0 is never picked first while another has some
        assert r.targets("m")[0].upstream_model == "m1"

    config = parse_config({
        "model_list": [{"model_name": "m", "litellm_params": {"model": f"openai/m{i}", "api_key": "k"}}
                       for i in range(3)],
        "router_settings": {"routing_strategy": "least-busy"},
    }, env={})
    busy = Router(config)
    first, second, third = busy.deployments("m")
    with busy.in_flight(first), busy.in_flight(first), busy.in_flight(second):
        assert [t.upstream_model for t in busy.targets("m")] == ["m2", "m1", "m0"]
    assert {s.in_flight for s in busy.stats()} == {0}


def test_unsupported_strategies_warn_and_shuffle(caplog):
    config = parse_config({"router_settings": {"routing_strategy": "usage-based-routing-v2"}}, env={})
    assert Router(config).strategy_name == "usage-based-routing-v2"
    assert any("usage-based-routing-v2" in m and "simple-shuffle" in m for m in caplog.messages)


# -- run-time changes and state -------------------------------------------------------------------


def test_deployments_change_at_run_time():
    from proxy.errors import NoDeploymentEnabled, NotFound
    from proxy.settings import Deployment, LitellmParams

    r = router({"model_name": "a", "litellm_params": {"model": "openai/a", "api_key": "k"}})
    new = Deployment(model_name="b", litellm_params=LitellmParams(model="openai/b", api_key="k"))
    ident = r.add_deployment(new)
    assert r.targets("b")[0].deployment_id == ident and "b" in r.model_names
    r.set_enabled(ident, False)
    with pytest.raises(NoDeploymentEnabled):
        r.candidates("b")
    r.set_enabled(ident, True)
    r.update_deployment(ident, Deployment(model_name="c", litellm_params=LitellmParams(model="openai/c2")))
    assert r.targets("c")[0].upstream_model == "c2" and r.targets("c")[0].deployment_id == ident
    assert "b" not in r.model_names
    assert r.remove_deployment(ident).model_name == "c"
    with pytest.raises(NotFound):
        r.candidates("c")
    with pytest.raises(ConfigError, match="not OpenAI-compatible"):
        r.add_deployment(Deployment(model_name="x", litellm_params=LitellmParams(model="bedrock/x")))
    with pytest.raises(KeyError):
        r.set_enabled("no-such-id", False)


def test_deployment_ids_are_stable_unique_and_free_of_secrets():
    entry = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "secret-1"}}
    twin = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "secret-2"}}
    named = {"model_name": "m", "litellm_params": {"model": "openai/m"}, "model_info": {"id": "mine"}}
    ids = [t.deployment_id for t in router(entry, twin, named).deployments()]
    assert ids == [t.deployment_id for t in router(entry, twin, named).deployments()]
    assert len(set(ids)) == 3 and ids[2] == "mine"
    rotated = dict(entry, litellm_params={"model": "openai/m", "api_key": "rotated"})
    assert router(rotated).deployments()[0].deployment_id == ids[0]  # the key is not part of it


def test_repeated_failures_cool_a_deployment_down_unless_it_is_alone():
    from proxy.errors import NoDeploymentAvailable

    config = parse_config({
        "model_list": [
            {"model_name": "pair", "litellm_params": {"model": "openai/a", "api_key": "k"}},
            {"model_name": "pair", "litellm_params": {"model": "openai/b", "api_key": "k"}},
            {"model_name": "solo", "litellm_params": {"model": "openai/c", "api_key": "k"}},
        ],
        "router_settings": {"allowed_fails": 2, "cooldown_time": 60},
    }, env={})
    r = Router(config)
    a, b = r.deployments("pair")
    assert [r.failed(a, "503") for _ in range(3)] == [False, False, True]
    assert [t.upstream_model for t in r.targets("pair")] == ["b"]
    for _ in range(3):
        r.failed(b, "timeout")
    with pytest.raises(NoDeploymentAvailable) as info:
        r.candidates("pair")
    assert info.value.status == 429 and int(info.value.headers["Retry-After"]) >= 59
    (solo,) = r.deployments("solo")
    assert not any(r.failed(solo, "503") for _ in range(10))
    stats = {s.model: s for s in r.stats()}
    assert stats["openai/a"].cooldowns == {"503": 1} and stats["openai/a"].cooling_down
    assert stats["openai/c"].failures == 10 and not stats["openai/c"].cooling_down


async def test_api_base_credentials_and_query_reach_the_upstream_but_never_the_log(
    gateway_factory, upstream_base, fake_upstream
):
    """user:password in api_base becomes basic auth (unless an api_key is sent, which wins and
    is not refused by aiohttp), the query string follows the path, and neither is stored."""
    from proxy.fake_upstream import CALLS

    secret_base = upstream_base.replace("http://", "http://ops:hunter2@") + "?tenant=t1"
    raw = {
        "model_list": [
            {"model_name": "basic", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": secret_base}},
            {"model_name": "both", "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_base": secret_base, "api_key": "sk-up"}},
        ],
        "general_settings": {"master_key": "sk-master-123456", "log_file": None},
    }
    gw = await gateway_factory(raw)
    for model in ("basic", "both"):
        reply = await gw.client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
    calls = list(fake_upstream.app[CALLS])
    assert calls == [("/v1/chat/completions?tenant=t1", "Basic ops"), ("/v1/chat/completions?tenant=t1", "Bearer")]
    rows = gw.rows()
    assert [r["status_code"] for r in rows] == [200, 200]
    stored = " ".join(str(v) for r in rows for v in dict(r).values())
    assert "hunter2" not in stored and "tenant" not in stored and "ops:" not in stored


async def test_netrc_login_is_sent_when_no_api_key_is(gateway_factory, upstream_base, fake_upstream, tmp_path, monkeypatch):
    """What aiohttp's trust_env did per request, resolved once per deployment: ~/.netrc."""
    from yarl import URL

    from proxy.fake_upstream import CALLS

    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {URL(upstream_base).host} login svc password pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    raw = {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream_base}}],
        "general_settings": {"master_key": "sk-master-123456", "log_file": None},
    }
    gw = await gateway_factory(raw)
    await gw.client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert list(fake_upstream.app[CALLS]) == [("/v1/chat/completions", "Basic svc")]
