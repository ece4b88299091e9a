"""orjson on the request path (proxy/jsonio.py) reads and writes what the json module did."""

from __future__ import annotations

import json
import math

import aiohttp
import pytest

from proxy import jsonio

from .conftest import MASTER_KEY, default_raw_config

READ_ALIKE = [
    b'{"model": "m", "messages": [{"role": "user", "content": "h\\u00e9llo \\ud83d\\ude00"}]}',
    b'{"a": 1, "a": 2, "n": -922337203685477580, "u": 184467440737095516, "f": 1e-400}',
    b'  [1.5, -0.0, 1E5, true, false, null, "\\"q\\"", {}]  ',
    '{"é": "ü"}'.encode(),
]
LEFT_TO_JSON = [
    b'{"t": NaN}', b'{"t": Infinity}', b'{"s": "\\ud800"}', b'\xef\xbb\xbf{}', b'{} trailing',
    b'{"n": 18446744073709551616}', b'{"n": -9223372036854775809}', b'{"x": 1e999}', b"{'a': 1}",
    b'{"a": "\xff"}',
]


@pytest.mark.parametrize("raw", READ_ALIKE)
def test_what_orjson_reads_equals_json(raw):
    value = jsonio.loads(raw)
    assert value is not jsonio.NOT_READ
    assert value == json.loads(raw.decode("utf-8"))
    assert repr(value) == repr(json.loads(raw.decode("utf-8")))  # ints stay ints, -0.0 stays


@pytest.mark.parametrize("raw", LEFT_TO_JSON)
def test_what_orjson_might_read_differently_is_left_to_json(raw):
    assert jsonio.loads(raw) is jsonio.NOT_READ


def test_writing():
    value = jsonio.loads(READ_ALIKE[0])
    assert json.loads(jsonio.dumps(value, read_by_orjson=True)) == value
    odd = {"t": math.nan, "n": 2**70, "s": "\ud800", "deep": [[[[]]]]}
    assert jsonio.dumps(odd, read_by_orjson=False) == json.dumps(odd).encode()
    deep: list = []
    for _ in range(300):  # past orjson's nesting limit: json writes it
        deep = [deep]
    assert jsonio.dumps(deep, read_by_orjson=True) == json.dumps(deep).encode()
    assert not jsonio.plain({"temperature": math.inf}) and not jsonio.plain([2**64])
    assert not jsonio.plain({1: "x"}) and jsonio.plain({"a": [1, 0.5, None, True, "x"]})


async def test_bodies_orjson_would_change_reach_the_upstream_as_sent(gateway_factory, upstream_base, dead_base):
    """NaN, huge integers, lone surrogates and non-ASCII text arrive upstream as json wrote them."""
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append({"model_name": "echo", "litellm_params": {
        "model": "openai/echo", "api_base": upstream_base, "temperature": 0.25}})
    gw = await gateway_factory(raw)
    bodies = [
        b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "seed": 123456789012345678901234}',
        b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "top_p": NaN, "x": -Infinity}',
        b'{"model": "echo", "messages": [{"role": "user", "content": "half \\ud83d an emoji"}]}',
        '{"model": "echo", "messages": [{"role": "user", "content": "déjà vu 😀"}], "n": 1}'.encode(),
    ]
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            async with http.post(f"{gw.url}/v1/chat/completions", data=body, headers=headers) as resp:
                answer = await resp.json()
            assert resp.status == 200, answer
            sent = json.loads(body.decode("utf-8"))
            expected = json.dumps({"temperature": 0.25, **sent}, sort_keys=True)
            assert answer["choices"][0]["message"]["content"] == expected
