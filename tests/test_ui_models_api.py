"""/model/new, /model/update, /model/delete: deployments added, changed, switched off and removed
at run time, persisted in keys.db (applied again after a restart, and by a second gateway on
the same keys.db), a disabled model answering 404 and hidden from /v1/models but for the admin."""

from __future__ import annotations

import asyncio
import sqlite3

import aiohttp
import openai
import pytest

from .conftest import MASTER_KEY, default_raw_config
from .keys_helpers import generate, sdk

SECRET = "sk-upstream-added-secret-9d1"


async def call(gw, method, path, body=None, token=MASTER_KEY):
    async with aiohttp.ClientSession() as http:
        async with http.request(method, gw.url + path, json=body,
                                headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()


async def chat(client, model):
    return await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def stored(gw):
    conn = sqlite3.connect(gw.db_path.with_name("keys.db"))
    try:
        return conn.execute("SELECT model_id, model_name, origin, enabled, litellm_params FROM models").fetchall()
    finally:
        conn.close()


async def test_add_use_update_disable_delete_a_deployment(gateway, upstream_base):
    status, body = await call(gateway, "POST", "/model/new", {
        "model_name": "added-model",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream_base, "api_key": SECRET},
        "model_info": {"description": "added at run time"},
    })
    assert status == 200, body
    ident = body["model_id"]
    assert body["model_name"] == "added-model" and body["model_info"]["id"] == ident
    assert body["model_info"]["db_model"] is True and body["deployment_state"]["enabled"] is True
    assert SECRET not in str(body) and "api_key" not in body["litellm_params"]
    # /model/info says which deployments were added at run time, as LiteLLM's db_model does.
    status, info = await call(gateway, "GET", "/model/info")
    db_model = {d["model_info"]["id"]: d["model_info"]["db_model"] for d in info["data"]}
    assert db_model.pop(ident) is True and db_model and not any(db_model.values())
    reply = await chat(gateway.client, "added-model")
    assert reply.choices[0].message.content
    assert [r[:4] for r in stored(gateway)] == [(ident, "added-model", "api", 1)]

    # Switched off: 404 to every client, hidden from /v1/models but for the master key.
    status, body = await call(gateway, "POST", "/model/update", {"model_info": {"id": ident, "disabled": True}})
    assert status == 200 and body["deployment_state"]["enabled"] is False
    with pytest.raises(openai.NotFoundError) as info:
        await chat(gateway.client, "added-model")
    assert "disabled" in info.value.message and info.value.code == "model_not_found"
    raw_key = (await generate(gateway))["key"]
    async with sdk(gateway, raw_key) as client:
        listed = [m.id for m in (await client.models.list()).data]
        assert "added-model" not in listed and "gpt-4o-mini" in listed
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("added-model")
    status, body = await call(gateway, "GET", "/v1/models")
    assert {"id": "added-model", "disabled": True}.items() <= next(
        m for m in body["data"] if m["id"] == "added-model").items()

    # On again, pointed at another upstream model (PATCH form); then deleted.
    status, body = await call(gateway, "PATCH", f"/model/{ident}/update", {
        "model_info": {"disabled": False}, "litellm_params": {"model": "openai/house-model"}})
    assert status == 200 and body["litellm_params"]["model"] == "openai/house-model"
    assert (await chat(gateway.client, "added-model")).model
    status, body = await call(gateway, "POST", "/model/delete", {"id": ident})
    assert (status, body) == (200, {"message": f"Model: {ident} deleted successfully"})
    with pytest.raises(openai.NotFoundError):
        await chat(gateway.client, "added-model")
    assert stored(gateway) == []
    rows = gateway.rows("SELECT model, status_code, upstream_model FROM request_log WHERE model = 'added-model'")
    assert [tuple(r) for r in rows] == [
        ("added-model", 200, "openai/gpt-4o-mini"), ("added-model", 404, None),
        ("added-model", 200, "openai/house-model"), ("added-model", 404, None)]


async def test_a_whole_config_model_switched_off_and_on(gateway):
    status, body = await call(gateway, "POST", "/model/update",
                              {"model_name": "gpt-4o-mini", "model_info": {"disabled": True}})
    assert status == 200 and [e["deployment_state"]["enabled"] for e in body["data"]] == [False]
    with pytest.raises(openai.NotFoundError):
        await chat(gateway.client, "gpt-4o-mini")
    # Only the switch is stored for a config deployment: nothing of config.yaml (its api_key).
    assert [(r[2], r[3], r[4]) for r in stored(gateway)] == [("config", 0, "{}")]
    status, _ = await call(gateway, "POST", "/model/update",
                           {"model_name": "gpt-4o-mini", "model_info": {"disabled": False}})
    assert status == 200 and (await chat(gateway.client, "gpt-4o-mini")).choices
    # A config deployment cannot be deleted through the API.
    ident = body["data"][0]["model_id"]
    status, body = await call(gateway, "POST", "/model/delete", {"id": ident})
    assert status == 400 and "config.yaml" in body["error"]["message"]


async def test_changes_survive_a_restart_and_reach_a_second_gateway(gateway_factory, upstream_base,
                                                                   dead_base, tmp_path):
    raw = default_raw_config(upstream_base, dead_base)
    for name in "abc":
        (tmp_path / name).mkdir()
    first = await gateway_factory(raw, db_path=tmp_path / "a" / "litellm.db",
                                  keys_db_path=tmp_path / "keys.db")
    second = await gateway_factory(raw, db_path=tmp_path / "b" / "litellm.db",
                                   keys_db_path=tmp_path / "keys.db")
    status, body = await call(first, "POST", "/model/new", {
        "model_name": "shared-model", "model_info": {"id": "shared-1"},
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream_base}})
    assert status == 200
    await call(first, "POST", "/model/update", {"model_name": "house-model", "model_info": {"disabled": True}})
    # The other process notices the change token on its next sync (0.5 s).
    for _ in range(100):
        try:
            await chat(second.client, "shared-model")
            break
        except openai.NotFoundError:
            await asyncio.sleep(0.05)
    assert (await chat(second.client, "shared-model")).choices
    with pytest.raises(openai.NotFoundError):
        await chat(second.client, "house-model")
    # A third gateway started afterwards applies both from keys.db.
    third = await gateway_factory(raw, db_path=tmp_path / "c" / "litellm.db", keys_db_path=tmp_path / "keys.db")
    assert (await chat(third.client, "shared-model")).choices
    with pytest.raises(openai.NotFoundError):
        await chat(third.client, "house-model")


@pytest.mark.parametrize("body, status, words", [
    ({"litellm_params": {"model": "openai/x"}}, 400, "model_name"),
    ({"model_name": "x", "litellm_params": {}}, 400, "litellm_params.model"),
    ({"model_name": "x", "litellm_params": {"model": "bedrock/x"}}, 400, "not OpenAI-compatible"),
    ({"model_name": "x", "litellm_params": {"model": "azure/x"}}, 400, "api_base is required"),
    ({"model_name": "x", "litellm_params": {"model": "openai/x", "timeout": "soon"}}, 400, "timeout"),
    ({"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "os.environ/NOPE_UNSET_1"}},
     400, "NOPE_UNSET_1"),
    ({"model_name": "x", "litellm_params": "openai/x"}, 400, "must be an object"),
])
async def test_bad_deployments_are_refused_and_nothing_is_stored(gateway, body, status, words):
    got, answer = await call(gateway, "POST", "/model/new", body)
    assert got == status and words in answer["error"]["message"], answer
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert stored(gateway) == []


async def test_model_admin_needs_the_master_key_and_names_unknown_ids(gateway):
    raw_key = (await generate(gateway))["key"]
    for path, body in (("/model/new", {"model_name": "x", "litellm_params": {"model": "openai/x"}}),
                       ("/model/update", {"model_info": {"id": "nope"}}), ("/model/delete", {"id": "nope"})):
        status, answer = await call(gateway, "POST", path, body, token=raw_key)
        assert status == 401, (path, answer)
    status, answer = await call(gateway, "POST", "/model/update", {"model_info": {"id": "nope", "disabled": True}})
    assert status == 404 and "nope" in answer["error"]["message"]
    status, answer = await call(gateway, "POST", "/model/delete", {"id": "nope"})
    assert status == 404
    status, answer = await call(gateway, "POST", "/model/new", {
        "model_name": "dup", "model_info": {"id": "dup-1"}, "litellm_params": {"model": "openai/a"}})
    assert status == 200
    status, answer = await call(gateway, "POST", "/model/new", {
        "model_name": "dup", "model_info": {"id": "dup-1"}, "litellm_params": {"model": "openai/a"}})
    assert status == 400 and "exists already" in answer["error"]["message"]


async def test_a_stored_deployment_that_no_longer_works_is_skipped_not_fatal(gateway_factory, tmp_path, caplog):
    from proxy.admin.records import ModelRecord
    from proxy.admin.store.sqlite import KeysDB

    store = KeysDB(tmp_path / "keys.db")
    store.insert(ModelRecord(model_id="gone-env", model_name="env-model",
                             litellm_params={"model": "openai/x", "api_key": "os.environ/SHIN_TEST_UNSET_9"}))
    store.insert(ModelRecord(model_id="not-in-config", origin="config", enabled=False))
    store.close()
    gw = await gateway_factory(keys_db_path=tmp_path / "keys.db")
    assert (await chat(gw.client, "gpt-4o-mini")).choices
    with pytest.raises(openai.NotFoundError):
        await chat(gw.client, "env-model")
    text = " ".join(caplog.messages)
    assert "gone-env" in text and "SHIN_TEST_UNSET_9" in text and "not-in-config" in text
