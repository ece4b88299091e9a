"""/ui: the built report served by aiohttp, with basic auth, no traversal, cache headers."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from aiohttp import web
from yarl import URL

from proxy.history import generate_history
from proxy.server.ui import setup_ui
from tests.site_fixtures import NOW, build, write_records


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ui")
    db = root / "litellm.db"
    write_records(db, generate_history(days=2, rows=100, seed=2, now=NOW - 60))
    out = root / "www" / "public"
    build(db, out)
    (root / "www" / "secret.txt").write_text("outside the site")
    (out / "data" / "escape").symlink_to(root / "www")
    return out


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def client_for(aiohttp_client, site: Path, user: str | None = None,
                     password: str | None = None):
    app = web.Application()
    setup_ui(app, site, user, password)
    return await aiohttp_client(app)


async def test_serves_the_site_with_folder_redirect_and_headers(aiohttp_client, site: Path) -> None:
    client = await client_for(aiohttp_client, site)
    response = await client.get("/ui", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/ui/"
    response = await client.get("/ui/")
    assert response.status == 200
    body = await response.text()
    assert body == (site / "index.html").read_text()
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "public, no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    js = await client.get("/ui/assets/vendor/vega.min.js")
    assert js.status == 200 and js.headers["Cache-Control"] == "public, no-cache"
    assert len(await js.read()) == (site / "assets/vendor/vega.min.js").stat().st_size
    # Revalidated, not re-sent: an upgrade is seen at once, an unchanged file costs a 304.
    again = await client.get("/ui/assets/vendor/vega.min.js", headers={"If-None-Match": js.headers["ETag"]})
    assert again.status == 304
    csv = await client.get("/ui/data/usage_by_model.csv")
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert (await client.get("/ui/cost.html")).status == 200
    folder = await client.get("/ui/assets", allow_redirects=False)
    assert folder.status == 302 and folder.headers["Location"] == "/ui/assets/"
    assert (await client.get("/ui/nope.html")).status == 404


@pytest.mark.parametrize("raw", [
    "/ui/%2e%2e/secret.txt",
    "/ui/..%2fsecret.txt",
    "/ui/data/..%2f..%2fsecret.txt",
    "/ui/data/%2e%2e/%2e%2e/secret.txt",
    "/ui/data/escape/secret.txt",
    "/ui/.shin-report",
    "/ui/data%5c..%5c..%5csecret.txt",
    "/ui/%00index.html",
])
async def test_no_path_traversal(aiohttp_client, site: Path, raw: str) -> None:
    client = await client_for(aiohttp_client, site)
    response = await client.get(URL(raw, encoded=True), allow_redirects=False)
    assert response.status in (400, 404), raw
    assert "outside the site" not in await response.text()


async def test_basic_auth(aiohttp_client, site: Path) -> None:
    client = await client_for(aiohttp_client, site, "admin", "s3cret pass:word")
    for path in ("/ui", "/ui/", "/ui/data/usage_by_model.csv", "/ui/nope"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="Shin Gateway report"')
    for headers in (basic("admin", "wrong"), basic("root", "s3cret pass:word"),
                    {"Authorization": "Basic !!!not-base64"}, {"Authorization": "Bearer x"},
                    {"Authorization": "Basic " + base64.b64encode(b"admin").decode()}):
        assert (await client.get("/ui/", headers=headers)).status == 401, headers
    good = basic("admin", "s3cret pass:word")
    response = await client.get("/ui/", headers=good)
    assert response.status == 200 and response.headers["Cache-Control"] == "private, no-cache"
    assert (await client.get("/ui", headers=good, allow_redirects=False)).status == 302


async def test_not_built_yet(aiohttp_client, tmp_path: Path) -> None:
    client = await client_for(aiohttp_client, tmp_path / "public")
    response = await client.get("/ui/")
    assert response.status == 503
    assert "make report" in await response.text()
