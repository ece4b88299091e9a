"""Property-based fuzzing of the HTTP surface (hypothesis) against the real gateway and the real
fake upstream: random bytes, truncated and deeply nested JSON, wrong types for every field the
gateway reads, invalid UTF-8, huge strings and odd headers. Every request gets an OpenAI error
envelope with a 4xx or 502/503/504, is logged exactly once, and the gateway stays healthy.

`make test` runs a small fixed (derandomized) profile; SHIN_FUZZ=long runs a larger random one:
    SHIN_FUZZ=long .venv/bin/python -m pytest -q tests/test_fuzz.py
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.config import parse_config
from proxy.demo.processes import free_port
from proxy.fake_upstream import FakeOptions, create_fake_app
from proxy.server.app import create_app
from proxy.state import WRITER

from .conftest import MASTER_KEY, default_raw_config

settings.register_profile(
    "shin-fuzz", max_examples=60, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "shin-fuzz-long", max_examples=2000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("shin-fuzz-long" if os.environ.get("SHIN_FUZZ") == "long" else "shin-fuzz")

LIMIT_MB = 0.25  # general_settings.max_request_body_mb for the fuzzed gateway
PATHS = {"/v1/chat/completions": "chat", "/chat/completions": "chat", "/v1/completions": "completion",
         "/v1/embeddings": "embedding"}
INPUT_FIELD = {"chat": "messages", "completion": "prompt", "embedding": "input"}
GOOD_INPUT = {"chat": [{"role": "user", "content": "hello"}], "completion": "hello", "embedding": ["hello"]}


# -- the gateway, in a thread of its own so hypothesis can drive it synchronously ------------

@dataclass
class Live:
    host: str
    port: int
    db_path: Path
    app: web.Application

    def row_of(self, request_id: str) -> list[tuple]:
        """The rows of one request. An answer the handler sent itself (a success) can reach
        the client just before its row is handed to the writer: wait a little for it."""
        for _ in range(100):
            found = self.rows("SELECT status_code FROM request_log WHERE request_id = ?", request_id)
            if found:
                return found
            time.sleep(0.05)
        return []

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        assert self.app[WRITER].wait_idle(10), "request log did not flush"
        conn = sqlite3.connect(self.db_path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runners: list[web.AppRunner] = []
    db_path = tmp_path_factory.mktemp("fuzz") / "litellm.db"
    upstream_port, gateway_port = free_port(), free_port()

    async def start() -> web.Application:
        upstream = web.AppRunner(create_fake_app(FakeOptions()))
        await upstream.setup()
        await web.TCPSite(upstream, "127.0.0.1", upstream_port).start()
        raw = default_raw_config(f"http://127.0.0.1:{upstream_port}/v1", f"http://127.0.0.1:{free_port()}/v1")
        raw["general_settings"]["max_request_body_mb"] = LIMIT_MB
        app = create_app(parse_config(raw, env={}), db_path=db_path)
        gateway = web.AppRunner(app)
        await gateway.setup()
        await web.TCPSite(gateway, "127.0.0.1", gateway_port).start()
        runners.extend([gateway, upstream])
        return app

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder.append(loop.run_until_complete(start()))
        ready.set()
        loop.run_forever()

    holder: list[web.Application] = []
    thread = threading.Thread(target=run, name="fuzzed-gateway", daemon=True)
    thread.start()
    assert ready.wait(30), "the gateway did not start"
    yield Live("127.0.0.1", gateway_port, db_path, holder[0])

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()


# -- what is sent --------------------------------------------------------------------------

@dataclass
class Case:
    path: str
    body: bytes
    headers: dict[str, str]


json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def wrong_for(field: str) -> st.SearchStrategy[Any]:
    """JSON values the gateway must refuse for `field` (it reads these itself)."""
    if field == "model":
        return json_values.filter(lambda v: not isinstance(v, str)) | st.just("")
    if field in ("stream",):
        return json_values.filter(lambda v: v is not None and not isinstance(v, bool))
    if field == "stream_options":
        return json_values.filter(lambda v: v is not None and not isinstance(v, dict))
    if field == "messages":
        not_a_list = json_values.filter(lambda v: not isinstance(v, list))
        bad_item = json_values.filter(lambda v: not isinstance(v, dict))
        bad_role = json_values.filter(lambda v: not isinstance(v, str))
        return (
            not_a_list | st.just([])
            | st.lists(bad_item, min_size=1, max_size=3)
            | bad_role.map(lambda r: [{"role": "user", "content": "hi"}, {"role": r, "content": "x"}])
            | st.just([{"content": "no role"}])
        )
    # prompt / input: text, texts, tokens or token lists; anything else is refused
    def valid(v: Any) -> bool:
        if isinstance(v, str):
            return True
        if not isinstance(v, list) or not v:
            return False
        ints = all(isinstance(i, int) and not isinstance(i, bool) for i in v)
        return ints or all(isinstance(i, str) for i in v) or all(
            isinstance(i, list) and i and all(isinstance(t, int) and not isinstance(t, bool) for t in i) for i in v)
    return json_values.filter(lambda v: not valid(v))


@st.composite
def valid_body(draw: st.DrawFn, kind: str, model: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model or draw(st.sampled_from(["gpt-4o-mini", "text-embedding-3-small"]))}
    body[INPUT_FIELD[kind]] = GOOD_INPUT[kind]
    if kind != "embedding" and draw(st.booleans()):
        body["stream"] = draw(st.booleans())
    return body


@st.composite
def wrong_types(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(sorted(PATHS)))
    kind = PATHS[path]
    body = draw(valid_body(kind))
    fields = ["model", INPUT_FIELD[kind]] + (["stream", "stream_options"] if kind != "embedding" else [])
    field = draw(st.sampled_from(fields))
    body[field] = draw(wrong_for(field))
    return path, json.dumps(body).encode()


@st.composite
def truncated(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(sorted(PATHS)))
    text = json.dumps(draw(valid_body(PATHS[path]))).encode()
    return path, text[: draw(st.integers(0, len(text) - 1))]


@st.composite
def deeply_nested(draw: st.DrawFn) -> tuple[str, bytes]:
    depth = draw(st.sampled_from([500, 990, 1_000, 5_000, 100_000]))
    nest = b"[" * depth + b"]" * depth
    where = draw(st.sampled_from(["top", "model", "messages", "stream"]))
    if where == "top":
        return "/v1/chat/completions", nest
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], where: "NEST"}
    return "/v1/chat/completions", json.dumps(body).encode().replace(b'"NEST"', nest)


@st.composite
def invalid_utf8(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(sorted(PATHS)))
    text = json.dumps(draw(valid_body(PATHS[path]))).encode()
    model_at, input_at = text.index(b'"model": "') + 10, text.index(b"hello")
    bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\x80\x80"]))
    at = draw(st.sampled_from([model_at, input_at]))
    if draw(st.booleans()):
        # a lone surrogate as a JSON escape (JavaScript's slice() through half an emoji): valid
        # JSON, so only where it makes the request wrong: an unknown model, stored as is
        bad, at = draw(st.sampled_from([b"\\ud83d", b"\\udc00x"])), model_at
    return path, text[:at] + bad + text[at:]


@st.composite
def huge_strings(draw: st.DrawFn) -> tuple[str, bytes]:
    size = draw(st.sampled_from([70_000, 200_000, 400_000]))  # around the 0.25 MiB limit
    filler = draw(st.sampled_from(["x", "é", "\U0001f600", "\\"])) * (size // 4)
    field = draw(st.sampled_from(["model", "stream", "messages"]))
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    body[field] = filler  # an unknown model, or a wrong type, or too large
    return "/v1/chat/completions", json.dumps(body).encode()


@st.composite
def upstream_failures(draw: st.DrawFn) -> tuple[str, bytes]:
    body = draw(valid_body("chat", draw(st.sampled_from(["broken", "down", "bad-request"]))))
    return "/v1/chat/completions", json.dumps(body).encode()


bodies = (
    st.tuples(st.sampled_from(sorted(PATHS)), st.binary(max_size=300))
    | truncated() | deeply_nested() | wrong_types() | invalid_utf8() | huge_strings() | upstream_failures()
)
bad_auth = st.sampled_from([
    {}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer sk-wrong"},
    {"Authorization": "Bearer " + "k" * 8000}, {"Authorization": "bearer \xe9\xff\xfe"}, {"x-api-key": "\xff"},
    {"api-key": "sk-" + MASTER_KEY[::-1]},
])
odd_headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["text/plain", "application/json; charset=latin-1", "multipart/form-data",
                                     "application/x-www-form-urlencoded", "\xff/\xfe"]),
    "X-Forwarded-For": st.sampled_from(["", "1.2.3.4, \xff", "::1, not-an-ip", ", , ,"]),
    "Accept-Encoding": st.sampled_from(["gzip", "*", "identity;q=0"]),
    # any byte HTTP allows in a header value (control characters are not HTTP: aiohttp's parser
    # answers those itself, before any handler)
    "User-Agent": st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                          max_size=40),
    "Content-Encoding": st.just("gzip"),
    "Expect": st.just("100-continue"),
})


@st.composite
def cases(draw: st.DrawFn) -> Case:
    path, body = draw(bodies)
    headers = draw(odd_headers)
    if "Content-Encoding" in headers and draw(st.booleans()):
        body = gzip.compress(body)  # sometimes honest: then the body below is what is read
    if draw(st.integers(0, 4)) == 0:
        headers.update(draw(bad_auth))
    else:
        headers["Authorization"] = f"Bearer {MASTER_KEY}"
    return Case(path, body, headers)


# -- sending and judging ---------------------------------------------------------------------

def send(live: Live, case: Case) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(live.host, live.port, timeout=30)
    try:
        conn.putrequest("POST", case.path, skip_accept_encoding=True)
        for name, value in {**case.headers, "Content-Length": str(len(case.body))}.items():
            conn.putheader(name, value.encode("latin-1"))
        conn.endheaders()
        try:
            conn.send(case.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (and closed) before the upload ended: read what it said
        resp = conn.getresponse()
        if resp.status == 100:  # Expect: 100-continue
            resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def assert_envelope(status: int, body: bytes) -> None:
    assert 400 <= status < 500 or status in (502, 503, 504), (status, body[:300])
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)


@settings(PROFILE)
@given(case=cases())
def test_every_request_is_refused_cleanly_and_logged_once(live: Live, case: Case) -> None:
    [(before,)] = live.rows("SELECT COUNT(*) FROM request_log")
    status, headers, body = send(live, case)
    assert_envelope(status, body)
    request_id = headers["x-litellm-call-id"]
    assert [r[0] for r in live.row_of(request_id)] == [status]
    [(after,)] = live.rows("SELECT COUNT(*) FROM request_log")
    assert after == before + 1


def test_the_gateway_is_healthy_after_the_fuzzing(live: Live) -> None:
    health = http.client.HTTPConnection(live.host, live.port, timeout=10)
    health.request("GET", "/health")
    assert health.getresponse().status == 200
    case = Case("/v1/chat/completions", json.dumps({"model": "gpt-4o-mini", "messages": GOOD_INPUT["chat"]}).encode(),
                {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"})
    status, _, body = send(live, case)
    assert status == 200 and json.loads(body)["choices"]
    [(failed,)] = live.rows("SELECT COUNT(*) FROM request_log WHERE status_code >= 500 AND status_code NOT IN (502, 503, 504)")
    assert failed == 0
