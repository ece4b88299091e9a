"""The LiteLLM key API carried over: aliases, every field it accepts, wildcards and access
groups, null clears, a key reading itself, regenerate/block/unblock, enforced params, temporary
budget increases, per-model limits, and LiteLLM's error codes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import openai
import pytest

from proxy.server.auth import hash_key

from .conftest import MASTER_KEY
from .keys_helpers import (
    PRICED,
    PROMPT,
    admin,
    chat,
    chat_body,
    generate,
    key_info,
    keys_config,
    ok,
    sdk,
    settle,
)


def litellm_config(upstream_base: str, dead_base: str) -> dict:
    raw = keys_config(upstream_base, dead_base)
    for deployment in raw["model_list"]:
        if deployment["model_name"] in ("gpt-4o-mini", PRICED):
            deployment["model_info"] = {"access_groups": ["cheap"]}
    raw["model_list"].append({
        "model_name": "mistral-small",
        "litellm_params": {"model": "mistral/mistral-small", "api_base": upstream_base},
    })
    return raw


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    return await gateway_factory(litellm_config(upstream_base, dead_base))


async def test_aliases_route_the_alias_and_log_both_names(gw):
    key = await generate(gw, aliases={"fast": PRICED})
    async with sdk(gw, key["key"]) as client:
        raw = await client.chat.completions.with_raw_response.create(model="fast", messages=PROMPT)
    assert float(raw.headers["x-litellm-response-cost"]) > 0  # priced as the routed model
    row = gw.rows()[-1]
    assert (row["model"], row["upstream_model"], row["status_code"]) == ("fast", f"openai/{PRICED}", 200)
    assert (await key_info(gw, key["key"]))["aliases"] == {"fast": PRICED}
    # Access: the alias or its target must be allowed, as LiteLLM checks both.
    only_alias = await generate(gw, models=["fast"], aliases={"fast": PRICED})
    assert (await chat(gw, only_alias["key"], "fast"))[0] == 200
    neither = await generate(gw, models=["gpt-4o-mini"], aliases={"fast": PRICED})
    status, body, _ = await chat(gw, neither["key"], "fast")
    assert status == 401 and body["error"]["type"] == "key_model_access_denied"


async def test_every_litellm_key_field_is_accepted_stored_and_returned(gw):
    stored = {
        "guardrails": ["pii"], "permissions": {"pii_masking": True}, "tags": ["ci"],
        "model_max_budget": {"gpt-4o-mini": {"budget_limit": 1, "time_period": "1d"}},
        "config": {}, "budget_id": "tier-1", "key_type": "llm_api", "object_permission": {"vector_stores": ["v1"]},
        "allowed_routes": ["/chat/completions"], "send_invite_email": False, "organization_id": "org-1",
        "allowed_cache_controls": ["no-cache"], "policies": ["p"], "prompts": ["x"], "rotation_interval": "30d",
    }
    made = await generate(gw, soft_budget=2.5, **stored)
    info = await key_info(gw, made["key"])
    for name, value in stored.items():
        assert info[name] == value, name
    assert info["soft_budget"] == 2.5
    body = await ok(gw, "POST", "/key/update", json={"key": made["key"], "guardrails": None, "tags": ["ci", "nightly"]})
    assert "guardrails" not in body and body["tags"] == ["ci", "nightly"] and body["permissions"] == {"pii_masking": True}
    assert (await chat(gw, made["key"]))[0] == 200  # stored fields change nothing on the request path


@pytest.mark.parametrize(("allowed", "model", "admitted"), [
    (["*"], "local-llama", True),
    (["openai/*"], "gpt-4o-mini", True),
    (["openai/*"], "mistral-small", False),
    (["mistral/*"], "mistral-small", True),
    (["gpt-4o*"], "gpt-4o-mini", True),
    (["gpt-4o*"], PRICED, False),
    (["cheap"], PRICED, True),        # an access group of model_info.access_groups
    (["cheap"], "local-llama", False),
    (["all-proxy-models"], "local-llama", True),
])
async def test_models_take_wildcards_and_access_groups(gw, allowed, model, admitted):
    key = await generate(gw, models=allowed)
    status, body, _ = await chat(gw, key["key"], model)
    assert status == (200 if admitted else 401), body
    async with sdk(gw, key["key"]) as client:
        listed = [m.id async for m in client.models.list()]
    assert (model in listed) == admitted


async def test_null_clears_a_field_on_update(gw):
    key = (await generate(gw, models=[PRICED], max_budget=1e-9, rpm_limit=100, metadata={"a": 1}))["key"]
    assert (await chat(gw, key))[0] == 200
    assert (await chat(gw, key))[0] == 429
    body = await ok(gw, "POST", "/key/update", json={"key": key, "max_budget": None, "models": None,
                                                     "rpm_limit": None, "metadata": None})
    assert (body["max_budget"], body["models"], body["rpm_limit"], body["metadata"]) == (None, [], None, {})
    assert (await chat(gw, key))[0] == 200 and (await chat(gw, key, "gpt-4o-mini"))[0] == 200


async def test_a_key_reads_its_own_info_and_no_one_elses(gw):
    mine = await generate(gw, key_alias="mine", user_id="u1")
    sibling = await generate(gw, key_alias="sibling", user_id="u1")
    stranger = await generate(gw, key_alias="stranger", user_id="u2")
    for params in ({}, {"key": mine["key"]}, {"key": hash_key(mine["key"])}):
        status, body, _ = await admin(gw, "GET", "/key/info", token=mine["key"], params=params)
        assert status == 200 and body["info"]["key_alias"] == "mine", params
    assert (await admin(gw, "GET", "/key/info", token=mine["key"], params={"key": sibling["key"]}))[0] == 200
    status, body, _ = await admin(gw, "GET", "/key/info", token=mine["key"], params={"key": stranger["key"]})
    assert status == 403 and body["error"]["code"] == "403"
    status, body, _ = await admin(gw, "GET", "/key/info", token=mine["key"], params={"key": "sk-never-issued-00"})
    assert status == 404 and body["error"]["code"] == "404"
    assert (await admin(gw, "GET", "/key/info", token=None))[0] == 401
    status, body, _ = await admin(gw, "GET", "/key/info")  # the master key names the key
    assert status == 400 and body["error"]["param"] == "key"


async def test_regenerate_gives_a_new_secret_with_the_same_settings_and_spend(gw):
    old = await generate(gw, key_alias="rotating", user_id="ops", max_budget=5, rpm_limit=50, models=[PRICED])
    for _ in range(2):
        assert (await chat(gw, old["key"]))[0] == 200
    before = await key_info(gw, old["key"])
    new = await ok(gw, "POST", "/key/regenerate", json={"key": old["key"]})
    assert new["key"] != old["key"] and new["token_id"] == hash_key(new["key"]) != old["token_id"]
    assert (await chat(gw, old["key"]))[0] == 401
    assert (await chat(gw, new["key"]))[0] == 200
    after = await key_info(gw, new["key"])
    for name in ("key_alias", "user_id", "max_budget", "rpm_limit", "models", "budget_reset_at"):
        assert after[name] == before[name], name
    await settle(gw)
    logged = gw.rows("SELECT SUM(cost) AS c FROM request_log WHERE status_code = 200")[0]["c"]
    assert after["spend"] == pytest.approx(logged)
    # The path form, with updates and a chosen secret.
    chosen = "sk-chosen-secret-0123456789"
    third = await ok(gw, "POST", f"/key/{new['key']}/regenerate", json={"new_key": chosen, "max_budget": 9})
    assert third["key"] == chosen and third["max_budget"] == 9 and third["spend"] == pytest.approx(logged)
    status, body, _ = await admin(gw, "POST", "/key/regenerate", json={"key": chosen, "new_master_key": "sk-x"})
    assert status == 400 and "general_settings.master_key" in body["error"]["message"]
    assert (await admin(gw, "POST", "/key/regenerate", json={"key": old["key"]}))[0] == 404


async def test_block_and_unblock(gw):
    key = await generate(gw, key_alias="flaky")
    blocked = await ok(gw, "POST", "/key/block", json={"key": key["key"]})
    assert blocked["blocked"] is True and blocked["key_alias"] == "flaky"
    status, body, _ = await chat(gw, key["key"])
    assert status == 401 and "blocked" in body["error"]["message"] and body["error"]["code"] == "401"
    assert (await ok(gw, "POST", "/key/unblock", json={"key": hash_key(key["key"])}))["blocked"] is False
    assert (await chat(gw, key["key"]))[0] == 200
    assert (await admin(gw, "POST", "/key/block", json={"key": "sk-never-issued-00"}))[0] == 404


async def test_enforced_params_must_be_in_the_request(gw):
    key = (await generate(gw, enforced_params=["user", "metadata.project"]))["key"]
    status, body, _ = await chat_body(gw, key, {"user": "erin"})
    assert status == 400 and body["error"]["param"] == "metadata.project"
    assert (await chat_body(gw, key, {"user": "erin", "metadata": {"project": "x"}}))[0] == 200


async def test_temporary_budget_increase_until_its_expiry(gw):
    key = (await generate(gw, max_budget=1e-9))["key"]
    assert (await chat(gw, key))[0] == 200
    assert (await chat(gw, key))[0] == 429
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    await ok(gw, "POST", "/key/update", json={"key": key, "temp_budget_increase": 1, "temp_budget_expiry": past})
    assert (await chat(gw, key))[0] == 429  # expired: no effect
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = await ok(gw, "POST", "/key/update", json={"key": key, "temp_budget_increase": 1, "temp_budget_expiry": future})
    assert body["metadata"]["temp_budget_increase"] == 1
    assert (await chat(gw, key))[0] == 200


async def test_per_model_rate_limits(gw):
    key = (await generate(gw, model_rpm_limit={PRICED: 1}))["key"]
    assert (await chat(gw, key))[0] == 200
    status, body, headers = await chat(gw, key)
    assert status == 429 and f"on model `{PRICED}`" in body["error"]["message"] and headers["Retry-After"]
    assert (await chat(gw, key, "gpt-4o-mini"))[0] == 200


async def test_error_codes_are_the_status_as_text(gw):
    got, body, _ = await chat(gw, "sk-never-issued-00", PRICED)
    assert got == 401 and body["error"]["code"] == "401"
    got, body, _ = await chat(gw, MASTER_KEY, "gpt-5-ultra")  # OpenAI's code, which its SDK users check
    assert got == 404 and body["error"]["code"] == "model_not_found"
    limited = (await generate(gw, rpm_limit=1))["key"]
    await chat(gw, limited)
    got, body, _ = await chat(gw, limited)
    assert got == 429 and body["error"]["code"] == "429"
    async with sdk(gw, "sk-never-issued-00") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model=PRICED, messages=PROMPT)


async def test_concurrent_admin_writes_do_not_interleave(gw):
    made = await asyncio.gather(*(generate(gw, key_alias=f"k{i}", user_id="same-user") for i in range(5)))
    listed = await ok(gw, "GET", "/user/info", params={"user_id": "same-user"})
    assert sorted(k["key_alias"] for k in listed["keys"]) == [f"k{i}" for i in range(5)] and len(made) == 5


def test_the_readme_names_every_field_stored_but_not_acted_on():
    from pathlib import Path

    from proxy.admin import fields

    readme = Path(__file__).resolve().parent.parent.joinpath("README.md").read_text()
    paragraph = readme[readme.index("**Stored, not acted on yet.**"):].split("\n\n")[0]
    stored = {*fields.KEY_STORED, *fields.USER_STORED, *fields.TEAM_STORED, *fields.END_USER_STORED, *fields.TIER_STORED}
    assert sorted(name for name in stored if f"`{name}`" not in paragraph) == []


async def test_access_through_the_routers_model_group_alias(gateway_factory, upstream_base, dead_base):
    raw = litellm_config(upstream_base, dead_base)
    raw["router_settings"] = {"model_group_alias": {"gpt4": "gpt-4o-mini"}}
    gw = await gateway_factory(raw)
    key = await generate(gw, models=["gpt-4o-mini"], aliases={"quick": "gpt4"})
    for asked in ("gpt4", "quick"):  # a router alias, and a key alias onto it
        assert (await chat(gw, key["key"], asked))[0] == 200, asked
    rows = gw.rows()[-2:]
    assert [(r["model"], r["model_group"]) for r in rows] == [("gpt4", "gpt-4o-mini"), ("quick", "gpt-4o-mini")]
    other = await generate(gw, models=[PRICED])
    status, body, _ = await chat(gw, other["key"], "gpt4")
    assert status == 401 and body["error"]["type"] == "key_model_access_denied"
