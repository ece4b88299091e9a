"""The gateway serves the built report at /ui, behind basic auth when configured."""

from __future__ import annotations

import base64

import aiohttp

from .conftest import default_raw_config


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def site(tmp_path):
    folder = tmp_path / "public"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>Overview</h1>")
    (folder / "assets" / "site.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("do not serve")
    return folder


async def test_ui_served_by_the_gateway(gateway_factory, upstream_base, dead_base, tmp_path):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["ui_dir"] = str(site(tmp_path))
    gw = await gateway_factory(raw)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/ui") as resp:
            assert resp.status == 200 and "Overview" in await resp.text()
        async with http.get(f"{gw.url}/ui/assets/site.css") as resp:
            assert resp.status == 200
        async with http.get(f"{gw.url}/ui/..%2Fsecret.txt") as resp:
            assert resp.status == 404
            assert "do not serve" not in await resp.text()


async def test_ui_basic_auth_from_config(gateway_factory, upstream_base, dead_base, tmp_path):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"].update(ui_dir=str(site(tmp_path)), ui_username="admin", ui_password="hunter2")
    gw = await gateway_factory(raw)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/ui/") as resp:
            assert resp.status == 401 and "Basic" in resp.headers["WWW-Authenticate"]
        async with http.get(f"{gw.url}/ui/", headers=basic("admin", "wrong")) as resp:
            assert resp.status == 401
        async with http.get(f"{gw.url}/ui/", headers=basic("admin", "hunter2")) as resp:
            assert resp.status == 200 and "Overview" in await resp.text()
