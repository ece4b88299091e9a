"""/ui's admin sign-in: the gateway marks the pages it serves, signs in with the master key or
ui_username/ui_password, and hands out a short-lived signed token that the admin API accepts as
the master key (any process with the same master key verifies it); strict headers on /ui."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import pytest

from proxy.server.ui_session import UiSessions

from .conftest import MASTER_KEY, default_raw_config


def site(tmp_path):
    folder = tmp_path / "public"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>Overview</h1>")
    (folder / "keys.html").write_text("<h1>Keys</h1>")
    return folder


async def request(gw, method, path, *, token=None, json=None, headers=None):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http:
        async with http.request(method, gw.url + path, json=json, headers=headers) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body, resp.headers


@pytest.fixture
async def gw(gateway_factory, upstream_base, dead_base, tmp_path):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"].update(ui_dir=str(site(tmp_path)), ui_username="admin", ui_password="hunter2")
    return await gateway_factory(raw)


def basic(user="admin", password="hunter2"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_pages_carry_the_marker_and_strict_headers(gw):
    status, _, headers = await request(gw, "GET", "/ui/keys.html", headers=basic())
    assert status == 200 and headers["X-Shin-Gateway"] == "shin-gateway"
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp and "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp and "http" not in csp  # no remote origin anywhere
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin" and "camera=()" in headers["Permissions-Policy"]
    status, _, headers = await request(gw, "HEAD", "/ui/keys.html", headers=basic())
    assert status == 200 and headers["X-Shin-Gateway"] == "shin-gateway"
    status, info, headers = await request(gw, "GET", "/ui/_gateway", headers=basic())
    assert status == 200 and info["gateway"] == "shin-gateway" and info["open"] is False
    assert info["sign_in"] == {"master_key": True, "password": True} and headers["Cache-Control"] == "no-store"
    status, _, _ = await request(gw, "GET", "/ui/_gateway")  # behind the same basic auth as /ui
    assert status == 401


async def test_sign_in_gives_a_token_the_admin_api_takes(gw):
    for creds in ({"master_key": MASTER_KEY}, {"username": "admin", "password": "hunter2"}):
        status, session, _ = await request(gw, "POST", "/ui/_gateway/session", json=creds, headers=basic())
        assert status == 200 and session["token"].startswith("shin-ui.") and MASTER_KEY not in session["token"]
        status, body, _ = await request(gw, "POST", "/key/generate", token=session["token"], json={"key_alias": None})
        assert status == 200 and body["key"].startswith("sk-")
        status, body, _ = await request(gw, "GET", "/model/info", token=session["token"])
        assert status == 200 and "deployment_state" in body["data"][0]
    for creds in ({"master_key": "sk-wrong"}, {"username": "admin", "password": "wrong"},
                  {"username": "root", "password": "hunter2"}, {}):
        status, body, _ = await request(gw, "POST", "/ui/_gateway/session", json=creds, headers=basic())
        assert status == 401 and body["error"]["type"] == "authentication_error", creds
    status, body, _ = await request(gw, "POST", "/ui/_gateway/session", json=["x"], headers=basic())
    assert status == 400 and set(body["error"]) == {"message", "type", "param", "code"}


async def test_tampered_expired_or_foreign_tokens_are_refused(gw):
    _, session, _ = await request(gw, "POST", "/ui/_gateway/session", json={"master_key": MASTER_KEY}, headers=basic())
    token = session["token"]
    body, _, signature = token.rpartition(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    other = UiSessions("sk-another-gateways-master", None, None, 60).sign_in(master_key="sk-another-gateways-master")
    expired = UiSessions(MASTER_KEY, None, None, 60).sign_in(master_key=MASTER_KEY, now=0)
    for bad in (forged, other.token, expired.token, token + "x", "shin-ui.", "shin-ui.e30.e30"):
        status, answer, _ = await request(gw, "GET", "/key/list", token=bad)
        assert status == 401, bad
    # The LLM endpoints log the call like a master-key call: no token in the log.
    status, _, _ = await request(gw, "GET", "/key/list", token=token)
    assert status == 200
    await asyncio.sleep(0)
    assert all(token not in (r["response"] or "") for r in gw.rows())


def test_a_session_ends_after_its_lifetime():
    sessions = UiSessions(MASTER_KEY, "admin", "pw", lifetime=60)
    session = sessions.sign_in(username="admin", password="pw", now=1000)
    assert sessions.verify(session.token, now=1059) and not sessions.verify(session.token, now=1060)
    assert session.subject == "ui:admin"
    assert UiSessions(MASTER_KEY, "admin", None, 60).sign_in(username="admin", password="") is None
    assert UiSessions(None, "admin", "pw", 60).sign_in(master_key="anything") is None


async def test_an_open_gateway_has_nothing_to_sign_in_to(gateway_factory, upstream_base, dead_base, tmp_path):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"] = {"log_file": None, "ui_dir": str(site(tmp_path))}
    gw = await gateway_factory(raw)
    status, info, _ = await request(gw, "GET", "/ui/_gateway")
    assert status == 200 and info["open"] is True and info["sign_in"]["master_key"] is False
    status, body, _ = await request(gw, "POST", "/ui/_gateway/session", json={"master_key": "x"})
    assert status == 400 and "open" in body["error"]["message"]
