"""Upstream credentials sent to /model/new are encrypted in keys.db (and so in its backups and
in Redis), decrypted only to call the upstream; a changed master key without LITELLM_SALT_KEY
makes them unreadable (the deployment is skipped, the rest serves); an open gateway refuses to
store them in the clear."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import openai
import pytest

from proxy.fake_upstream import CALLS

from .conftest import MASTER_KEY, default_raw_config

SECRET = "sk-upstream-stored-secret-4e7"
PROMPT = [{"role": "user", "content": "hi"}]


async def model_new(gw, token: str | None, params: dict) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"model_name": "added", "litellm_params": {"model": "openai/gpt-4o-mini", **params}}
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.url + "/model/new", json=body, headers=headers) as resp:
            return resp.status, await resp.json()


def keys_db_bytes(gw) -> bytes:
    folder = Path(gw.db_path).parent
    return b"".join(p.read_bytes() for p in folder.glob("keys.db*"))


async def test_credentials_are_encrypted_at_rest_and_sent_upstream(gateway_factory, upstream_base, fake_upstream):
    gw = await gateway_factory()
    status, body = await model_new(gw, MASTER_KEY, {
        "api_base": upstream_base, "api_key": SECRET, "extra_headers": {"X-Tenant-Token": "tt-secret-55"}})
    assert status == 200, body
    await gw.client.chat.completions.create(model="added", messages=PROMPT)
    assert list(fake_upstream.app[CALLS])[-1][1] == "Bearer"  # the key reached the upstream
    at_rest = keys_db_bytes(gw)
    assert b"encrypted:" in at_rest
    assert SECRET.encode() not in at_rest and b"tt-secret-55" not in at_rest


@pytest.mark.parametrize("salt", [None, "a-salt-key-kept-across-rotations"])
async def test_a_rotated_master_key_needs_the_salt_key(
    gateway_factory, upstream_base, tmp_path, dead_base, caplog, monkeypatch, salt
):
    if salt:
        monkeypatch.setenv("LITELLM_SALT_KEY", salt)
    db = tmp_path / "litellm.db"
    first = await gateway_factory(db_path=db)
    status, _ = await model_new(first, MASTER_KEY, {"api_base": upstream_base, "api_key": SECRET})
    assert status == 200
    await first.server.close()

    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["master_key"] = "sk-rotated-master-91"
    caplog.set_level(logging.WARNING, logger="proxy.models")
    second = await gateway_factory(raw, db_path=db)
    client = second.client.with_options(api_key="sk-rotated-master-91")
    if salt:
        assert (await client.chat.completions.create(model="added", messages=PROMPT)).choices
    else:
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="added", messages=PROMPT)
        assert "encrypted with another key" in caplog.text
        assert SECRET not in caplog.text
    assert (await client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)).choices


async def test_an_open_gateway_refuses_to_store_credentials_in_the_clear(gateway_factory, upstream_base, dead_base, monkeypatch):
    monkeypatch.delenv("LITELLM_SALT_KEY", raising=False)
    monkeypatch.setenv("ADDED_KEY", SECRET)
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"].pop("master_key")
    gw = await gateway_factory(raw)
    status, body = await model_new(gw, None, {"api_base": upstream_base, "api_key": SECRET})
    assert status == 400 and body["error"]["param"] == "litellm_params.api_key"
    assert "in the clear" in body["error"]["message"] and SECRET not in str(body)
    status, body = await model_new(gw, None, {"api_base": upstream_base, "api_key": "os.environ/ADDED_KEY"})
    assert status == 200, body
    assert (await gw.client.chat.completions.create(model="added", messages=PROMPT)).choices
    assert b"os.environ/ADDED_KEY" in keys_db_bytes(gw) and SECRET.encode() not in keys_db_bytes(gw)
