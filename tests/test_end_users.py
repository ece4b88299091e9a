"""End users (the body's `user`, LiteLLM's customers) and budget tiers: /end_user/*,
/customer/*, /budget/*; their budgets and blocking enforced on requests."""

from __future__ import annotations

import pytest

from .conftest import MASTER_KEY
from .keys_helpers import admin, chat_body, generate, keys_config, ok, settle


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base):
    return await gateway_factory(keys_config(upstream_base, dead_base))


async def test_end_user_budget_is_enforced_and_charged(gw):
    made = await ok(gw, "POST", "/end_user/new", json={"user_id": "cust-1", "alias": "Acme", "max_budget": 1e-9,
                                                       "budget_duration": "1d"})
    assert made["user_id"] == "cust-1" and made["litellm_budget_table"]["max_budget"] == 1e-9
    assert made["budget_id"] == made["litellm_budget_table"]["budget_id"] and made["blocked"] is False
    key = await generate(gw)
    assert (await chat_body(gw, key["key"], {"user": "cust-1"}))[0] == 200
    status, body, _ = await chat_body(gw, key["key"], {"user": "cust-1"})
    assert status == 429 and body["error"]["code"] == "429"
    assert body["error"]["message"].startswith("Budget has been exceeded! End User=cust-1 Current cost: ")
    assert (await chat_body(gw, MASTER_KEY, {"user": "cust-1"}))[0] == 429  # whoever calls for it
    assert (await chat_body(gw, key["key"], {"user": "someone-else"}))[0] == 200  # unknown: no budget
    await settle(gw)
    info = await ok(gw, "GET", "/end_user/info", params={"end_user_id": "cust-1"})
    logged = gw.rows("SELECT SUM(cost) AS c FROM request_log WHERE user_id = 'cust-1'")[0]["c"]
    assert info["spend"] == pytest.approx(logged) and logged > 0 and info["budget_reset_at"]
    updated = await ok(gw, "POST", "/end_user/update", json={"user_id": "cust-1", "max_budget": 1})
    assert updated["litellm_budget_table"]["max_budget"] == 1
    assert (await chat_body(gw, key["key"], {"user": "cust-1"}))[0] == 200


async def test_blocked_end_users_get_403(gw):
    await ok(gw, "POST", "/end_user/new", json={"user_id": "cust-2"})
    blocked = await ok(gw, "POST", "/end_user/block", json={"user_ids": ["cust-2", "cust-3"]})
    assert [u["user_id"] for u in blocked["blocked_users"]] == ["cust-2", "cust-3"]  # unknown ones are created
    key = await generate(gw)
    for user in ("cust-2", "cust-3"):
        status, body, _ = await chat_body(gw, key["key"], {"user": user})
        assert status == 403 and body["error"]["param"] == "user" and body["error"]["code"] == "403"
    row = gw.rows()[-1]
    assert (row["status_code"], row["user_id"]) == (403, "cust-3")
    unblocked = await ok(gw, "POST", "/end_user/unblock", json={"user_ids": ["cust-2"]})
    assert unblocked == {"blocked_users": ["cust-3"]}
    assert (await chat_body(gw, key["key"], {"user": "cust-2"}))[0] == 200


async def test_budget_tiers_shared_by_end_users(gw):
    tier = await ok(gw, "POST", "/budget/new", json={"budget_id": "free", "max_budget": 1e-9, "rpm_limit": 100,
                                                     "model_max_budget": {"x": 1}})
    assert (tier["budget_id"], tier["max_budget"], tier["model_max_budget"]) == ("free", 1e-9, {"x": 1})
    for user in ("a", "b"):
        await ok(gw, "POST", "/customer/new", json={"user_id": user, "budget_id": "free"})
    key = await generate(gw)
    assert (await chat_body(gw, key["key"], {"user": "a"}))[0] == 200
    assert (await chat_body(gw, key["key"], {"user": "a"}))[0] == 429
    assert (await chat_body(gw, key["key"], {"user": "b"}))[0] == 200  # its own spend, the tier's limits
    await ok(gw, "POST", "/budget/update", json={"budget_id": "free", "max_budget": 1})  # reaches both at once
    assert (await chat_body(gw, key["key"], {"user": "a"}))[0] == 200
    # Changing one end user's budget gives it its own tier; the shared one stays.
    mine = await ok(gw, "POST", "/end_user/update", json={"user_id": "b", "max_budget": 1e-9})
    assert mine["budget_id"] != "free" and mine["litellm_budget_table"]["rpm_limit"] == 100
    assert (await ok(gw, "POST", "/budget/info", json={"budgets": ["free"]}))[0]["max_budget"] == 1
    assert {t["budget_id"] for t in await ok(gw, "GET", "/budget/list")} == {"free", mine["budget_id"]}
    status, body, _ = await admin(gw, "POST", "/budget/delete", json={"id": "free"})
    assert status == 400 and "used by end users a" in body["error"]["message"]
    status, body, _ = await admin(gw, "POST", "/end_user/new", json={"user_id": "c", "budget_id": "free", "max_budget": 1})
    assert status == 400 and "not both" in body["error"]["message"]
    status, body, _ = await admin(gw, "POST", "/end_user/new", json={"user_id": "c", "budget_id": "missing"})
    assert status == 400 and body["error"]["param"] == "budget_id"


async def test_end_user_list_delete_and_errors(gw):
    for user in ("x", "y"):
        await ok(gw, "POST", "/end_user/new", json={"user_id": user, "allowed_model_region": "eu"})
    assert [u["user_id"] for u in await ok(gw, "GET", "/end_user/list")] == ["x", "y"]
    assert [u["user_id"] for u in await ok(gw, "GET", "/customer/list")] == ["x", "y"]
    status, body, _ = await admin(gw, "POST", "/end_user/new", json={"user_id": "x"})
    assert status == 400 and "already exists" in body["error"]["message"]
    status, body, _ = await admin(gw, "POST", "/end_user/delete", json={"user_ids": ["x", "zz"]})
    assert status == 404 and "zz" in body["error"]["message"]
    gone = await ok(gw, "POST", "/end_user/delete", json={"user_ids": ["x"]})
    assert gone["deleted_customers"] == 1
    status, body, _ = await admin(gw, "GET", "/end_user/info", params={"end_user_id": "x"})
    assert status == 404 and body["error"]["type"] == "not_found"
    status, body, _ = await admin(gw, "POST", "/end_user/new", json={"user_id": "z", "allowed_model_region": "mars"})
    assert status == 400 and body["error"]["param"] == "allowed_model_region"
    key = await generate(gw)
    assert (await admin(gw, "GET", "/end_user/list", token=key["key"]))[0] == 401
