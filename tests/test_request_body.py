"""The body is read only for a known caller, only up to general_settings.max_request_body_mb,
and a stranger's upload is answered before it is finished."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from proxy.api.body import model_from_prefix
from proxy.config import parse_config
from proxy.errors import ConfigError

from .conftest import MASTER_KEY, default_raw_config

BIG = 24 * 1024 * 1024
HEAD = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'


async def upload_and_answer(gw, token: str, declared: int, sent: int) -> tuple[int, bytes]:
    """Declare a `declared`-byte body, send only `sent` bytes of it, and read the answer.

    A gateway that waited for the whole body would never answer: the read times out.
    """
    reader, writer = await asyncio.open_connection(gw.server.host, gw.server.port)
    try:
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {declared}\r\n\r\n".encode()
            + HEAD + b"x" * (sent - len(HEAD))
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        body = await asyncio.wait_for(reader.readexactly(length), 10)
        return int(head.split(b" ")[1]), body
    finally:
        writer.close()


async def test_a_stranger_is_refused_before_its_upload_ends(gateway):
    status, body = await upload_and_answer(gateway, "sk-stranger", BIG, 200_000)
    assert status == 401 and b"authentication_error" in body
    # /health answers meanwhile, and the gateway keeps serving
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/health") as resp:
            assert resp.status == 200
    await gateway.client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    rows = gateway.rows()
    # the failed-auth row names the model, read from the body's first bytes only
    assert [(r["status_code"], r["model"]) for r in rows] == [(401, "gpt-4o-mini"), (200, "gpt-4o-mini")]


async def test_a_declared_oversized_body_is_413_before_its_upload_ends(gateway):
    status, body = await upload_and_answer(gateway, MASTER_KEY, 33 * 1024 * 1024, 100_000)
    assert status == 413 and b"max_request_body_mb" in body and b"request_too_large" in body
    assert [(r["status_code"], r["model"]) for r in gateway.rows()] == [(413, "gpt-4o-mini")]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_max_request_body_mb_is_the_limit(gateway_factory, upstream_base, dead_base, chunked):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["max_request_body_mb"] = 0.01  # 10 KiB
    gw = await gateway_factory(raw)
    small = HEAD + b'hi"}]}'
    big = HEAD + b"x" * 20_000 + b'"}]}'

    async def chunks(data: bytes):
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    async with aiohttp.ClientSession() as http:
        for data in (big, small):
            payload = chunks(data) if chunked else data
            async with http.post(f"{gw.url}/v1/chat/completions", data=payload, headers={
                "Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}) as resp:
                answer = await resp.json()
                if data is big:
                    assert resp.status == 413 and answer["error"]["type"] == "invalid_request_error"
                    assert "0.01 MiB" in answer["error"]["message"]
                else:
                    assert resp.status == 200, answer
    assert [(r["status_code"], r["model"]) for r in gw.rows()] == [(413, "gpt-4o-mini"), (200, "gpt-4o-mini")]


def test_max_request_bytes_still_accepted_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="proxy.config"):
        old = parse_config({"general_settings": {"max_request_bytes": 2 * 1024 * 1024}}, env={})
    assert old.general.max_request_body_mb == 2 and old.general.max_request_body_bytes == 2 * 1024 * 1024
    assert "max_request_bytes is deprecated" in caplog.text
    both = parse_config({"general_settings": {"max_request_bytes": 2048, "max_request_body_mb": 5}}, env={})
    assert both.general.max_request_body_mb == 5
    assert parse_config({}, env={}).general.max_request_body_bytes == 32 * 1024 * 1024
    # LiteLLM's name for it works as is
    litellm = parse_config({"general_settings": {"max_request_size_mb": 4}}, env={})
    assert litellm.general.max_request_body_bytes == 4 * 1024 * 1024
    with pytest.raises(ConfigError, match="max_request_body_mb: must be > 0"):
        parse_config({"general_settings": {"max_request_body_mb": 0}}, env={})


@pytest.mark.parametrize(
    "prefix, model",
    [
        (b'{"model": "gpt-4o-mini", "messages": [', "gpt-4o-mini"),
        (b'  {"stream": true, "n": 2, "tools": [{"a": [1, {"b": "}"}]}], "model" : "m\\u00e9"}', "m\u00e9"),
        (b'{"messages": [{"role": "user", "content": "cut he', ""),  # model after the cut
        (b'{"model": 5}', ""),
        (b"[1, 2]", ""),
        (b"\xff\xfe", ""),
        (b'{"model": "caf\xc3', ""),
        (b'{"a": ' + b"[" * 50_000, ""),
    ],
)
def test_model_from_prefix(prefix, model):
    assert model_from_prefix(prefix) == model


async def raw_post(gw, headers: bytes, body: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(gw.server.host, gw.server.port)
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n" + headers
                     + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        return int(answer.split(b" ")[1]), answer.split(b"\r\n\r\n", 1)[1]
    finally:
        writer.close()


GOOD = HEAD + b'hi"}]}'


@pytest.mark.parametrize(
    "headers, body, status, code",
    [
        # a key that is not UTF-8 (aiohttp hands it over as lone surrogates) is just a wrong key
        (b"Authorization: Bearer \xe9\xff\r\n", GOOD, 401, b'"authentication_error"'),
        (b"x-api-key: \xff\r\n", GOOD, 401, b'"authentication_error"'),
        # a body that is not what its Content-Encoding says
        (f"Authorization: Bearer {MASTER_KEY}\r\nContent-Encoding: gzip\r\n".encode(), GOOD, 400, b'"invalid_body"'),
        # bytes that spell a UTF-16 surrogate are not UTF-8 (json.loads alone would take them)
        (f"Authorization: Bearer {MASTER_KEY}\r\n".encode(), GOOD.replace(b"hi", b"\xed\xa0\x80"), 400, b'"invalid_json"'),
    ],
    ids=["auth-not-utf8", "api-key-not-utf8", "gzip-lie", "encoded-surrogate"],
)
async def test_odd_bytes_are_4xx_in_the_envelope(gateway, headers, body, status, code):
    got, answer = await raw_post(gateway, headers, body)
    assert got == status and code in answer and b'"error"' in answer
    assert [r["status_code"] for r in gateway.rows()] == [status]
