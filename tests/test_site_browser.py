"""The built pages in headless Chromium, over HTTP under a path prefix and from file://.

site.js sets data-charts="ready" on <html> once every vegaEmbed() promise resolved, and keeps
any script or console error in data-errors; the test reads both from the DOM Chromium dumps
after a virtual time budget, and checks each chart holder contains a rendered <svg>.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sitegen.catalogue import PAGES
from tests.site_fixtures import HOSTILE, build, history_db

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (make test installs Debian's chromium)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    out = root / "www" / "reports" / "shin"
    build(history_db(root / "litellm.db"), out)
    return out


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site.parent.parent))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/reports/shin"
    httpd.shutdown()
    httpd.server_close()


def dump_dom(url: str, profile: Path) -> tuple[str, str]:
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
         "--window-size=390,844", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def check_page(dom: str, log: str, page: str) -> None:
    html_tag = re.search(r"<html[^>]*>", dom)
    assert html_tag, dom[:500]
    assert 'data-charts="ready"' in html_tag.group(0), (page, html_tag.group(0))
    assert "data-errors" not in html_tag.group(0), (page, html_tag.group(0))
    holders = re.findall(r'<div class="vega[^"]*" data-spec="spec-([^"]+)"[^>]*>(.*?)</div>',
                         dom, re.S)
    expected = [s.chart for p in PAGES if p.filename == page for s in p.sections if s.chart]
    assert sorted(name for name, _ in holders) == sorted(expected), page
    for name, inner in holders:
        assert "<svg" in inner, (page, name)
    assert "<script>alert" not in dom and HOSTILE not in dom
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console


@pytest.mark.parametrize("page", [p.filename for p in PAGES])
def test_pages_render_charts_over_http(server: str, tmp_path: Path, page: str) -> None:
    dom, log = dump_dom(f"{server}/{page}", tmp_path / "profile")
    check_page(dom, log, page)


@pytest.mark.parametrize("page", ["index.html", "performance.html"])
def test_pages_render_charts_from_file_url(site: Path, tmp_path: Path, page: str) -> None:
    dom, log = dump_dom((site / page).as_uri(), tmp_path / "profile")
    check_page(dom, log, page)
