"""The built pages in headless Chromium (driven over the DevTools protocol, tests/cdp.py), over
HTTP under a path prefix and from file://.

site.js sets data-charts="ready" on <html> once every vegaEmbed() promise resolved; the tests
wait for it, then check each chart holder drew an <svg>, the page logged no console error or
exception, nothing is wider than a phone's viewport, legends and tooltips answer the mouse,
long tables fold and unfold, and the print stylesheet applies.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sitegen.plan import site_plan
from tests.cdp import Tab, chromium
from tests.site_fixtures import BREAKDOWNS, HOSTILE, build, history_db

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (make test installs Debian's chromium)"
)
PAGES = site_plan(BREAKDOWNS).pages
PHONE, DESKTOP = 390, 1280


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


async def check_page(tab: Tab, url: str, page: str, width: int) -> None:
    assert await tab.load(url, width) == "ready", (page, width)
    assert await tab.evaluate("document.documentElement.getAttribute('data-errors')") is None
    drawn = await tab.evaluate("""Array.from(document.querySelectorAll('.vega[data-spec]'))
        .map(h => [h.getAttribute('data-spec').slice(5), !!h.querySelector('svg')])""")
    expected = [s.chart for p in PAGES if p.filename == page for s in p.sections if s.chart]
    assert sorted(name for name, _ in drawn) == sorted(expected), page
    assert all(ok for _, ok in drawn), (page, drawn)
    html = await tab.evaluate("document.documentElement.outerHTML")
    assert "<script>alert" not in html and HOSTILE not in html
    # Nothing scrolls sideways: the document is exactly as wide as the viewport.
    widths = await tab.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    assert widths == [width, width, width], (page, width, widths)
    assert not tab.errors, (page, width, tab.errors)


@pytest.mark.parametrize("page", [p.filename for p in PAGES])
async def test_pages_draw_and_fit_desktop_and_phone_over_http(server: str, tmp_path: Path,
                                                              page: str) -> None:
    async with chromium(CHROMIUM, tmp_path / "profile") as browser:  # type: ignore[arg-type]
        for width in (DESKTOP, PHONE):
            async with browser.tab() as tab:
                await check_page(tab, f"{server}/{page}", page, width)


@pytest.mark.parametrize("page", ["index.html", "performance.html"])
async def test_pages_draw_from_file_url(site: Path, tmp_path: Path, page: str) -> None:
    async with chromium(CHROMIUM, tmp_path / "profile") as browser, browser.tab() as tab:  # type: ignore[arg-type]
        await check_page(tab, (site / page).as_uri(), page, PHONE)


async def _center(tab: Tab, selector: str) -> tuple[float, float]:
    box = await tab.evaluate(f"""(() => {{ const e = document.querySelector({selector!r});
        if (!e) return null; e.scrollIntoView({{block: 'center'}});
        const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
    assert box, selector
    return box[0], box[1]


async def test_legend_click_highlights_a_series_and_marks_have_tooltips(server: str,
                                                                        tmp_path: Path) -> None:
    chart = "#chart-daily_cost_by_model"
    opacities = f"""Array.from(document.querySelectorAll('{chart} .mark-rect path'))
        .map(p => p.getAttribute('opacity') || p.style.opacity || '1')"""
    async with chromium(CHROMIUM, tmp_path / "profile") as browser, browser.tab() as tab:  # type: ignore[arg-type]
        assert await tab.load(f"{server}/cost.html", DESKTOP) == "ready"
        before = set(await tab.evaluate(opacities))
        assert before == {"1"}, before
        await tab.mouse("click", *await _center(tab, f"{chart} .role-legend-symbol path"))
        await tab.evaluate("new Promise(r => setTimeout(r, 300))")
        after = await tab.evaluate(opacities)
        assert set(after) == {"1", "0.15"}, set(after)  # one model stands out, the rest fade
        assert after.count("1") < len(after) / 2
        # Hovering a bar shows its tooltip (vega-embed's handler).
        await tab.mouse("move", *await _center(tab, f"{chart} .mark-rect path"))
        await tab.evaluate("new Promise(r => setTimeout(r, 300))")
        tooltip = await tab.evaluate(
            "(() => { const t = document.querySelector('#vg-tooltip-element');"
            " return t && t.classList.contains('visible') ? t.textContent : null; })()")
        assert tooltip and "Model" in tooltip, tooltip
        assert not tab.errors, tab.errors


async def test_long_tables_fold_and_print_shows_everything(server: str, tmp_path: Path) -> None:
    table = "#daily_cost_trend table"
    visible = f"""Array.from(document.querySelectorAll('{table} tbody tr'))
        .filter(r => getComputedStyle(r).display !== 'none').length"""
    async with chromium(CHROMIUM, tmp_path / "profile") as browser, browser.tab() as tab:  # type: ignore[arg-type]
        assert await tab.load(f"{server}/cost.html", PHONE) == "ready"
        total = await tab.evaluate(f"document.querySelectorAll('{table} tbody tr').length")
        assert total == 30 and await tab.evaluate(visible) == 10
        button = "#daily_cost_trend .fold-toggle"
        assert await tab.evaluate(f"document.querySelector('{button}').textContent") == "Show all 30 rows"
        await tab.mouse("click", *await _center(tab, button))
        assert await tab.evaluate(visible) == 30
        assert await tab.evaluate(f"document.querySelector('{button}').getAttribute('aria-expanded')") == "true"
        await tab.mouse("click", *await _center(tab, button))
        assert await tab.evaluate(visible) == 10
        # CSV and JSON links stay where they were.
        assert await tab.evaluate(
            "!!document.querySelector('#daily_cost_trend a[href=\"data/daily_cost_trend.csv\"]')")
        await tab.send("Emulation.setEmulatedMedia", media="print")
        assert await tab.evaluate(visible) == 30  # folded rows print
        hidden = await tab.evaluate("""['.top nav', '.fold-toggle', '.toc'].map(
            s => getComputedStyle(document.querySelector(s)).display)""")
        assert hidden == ["none", "none", "none"]
        assert await tab.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
        assert not tab.errors, tab.errors
