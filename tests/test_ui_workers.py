"""Across the workers of `serve --workers 2`: a /ui sign-in made through one worker is accepted by
the other (signed, stateless token), and a model switched off or added through one worker is
applied by the other (keys.db's change token), on connections pinned to each worker."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import MASTER_KEY
from .processes import start, stop
from .workers_gateway import answer, post, start_workers


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    path = tmp_path_factory.mktemp("ui-workers")
    upstream, upstream_url = start(["proxy.fake_upstream", "--port", "0"], path / "fake.log")
    gateway = start_workers(path, upstream_url, 2)
    gateway.upstream_url = upstream_url
    yield gateway
    gateway.close()
    assert stop(gateway.proc, timeout=60) == 0
    stop(upstream)


def call(conn, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    return answer(conn)


def test_a_session_and_model_changes_hold_on_every_worker(gw):
    pinned = gw.pinned(per_worker=1)
    assert len(pinned) == 2
    (first,), (second,) = (conns for _, conns in sorted(pinned.items()))
    status, session, _ = call(first, "POST", "/ui/_gateway/session", {"master_key": MASTER_KEY})
    assert status == 200
    token = session["token"]
    status, body, _ = call(second, "GET", "/key/list", token=token)
    assert status == 200 and "keys" in body

    status, _, _ = call(first, "POST", "/model/update", {"model_name": "gpt-4o-mini", "model_info": {"disabled": True}}, token)
    assert status == 200
    assert post(first)[0] == 404
    deadline = time.monotonic() + 10
    while post(second)[0] != 404:
        assert time.monotonic() < deadline, "the other worker never applied the change"
        time.sleep(0.1)

    status, body, _ = call(second, "POST", "/model/new", {
        "model_name": "added-on-two", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": gw.upstream_url + "/v1"}}, token)
    assert status == 200, body
    deadline = time.monotonic() + 10
    while post(first, model="added-on-two")[0] != 200:
        assert time.monotonic() < deadline, "the other worker never added the deployment"
        time.sleep(0.1)
