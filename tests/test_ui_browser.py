"""The admin actions in a real browser (headless Chromium over DevTools, tests/cdp.py) against
the real gateway serving a built report at /ui: sign in with the master key, create a key and
use it through the openai SDK, set its budget to $0 (429), revoke it (401), disable a model
(404); filter the Logs page and export CSV (the downloaded file checked). The same pages from
file:// show no sign-in and no controls. Every page loads under the gateway's strict CSP with no
console error, and no Chromium process outlives the test.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
from pathlib import Path

import openai
import pytest

from tests.cdp import Tab, chromium
from tests.site_fixtures import build, history_db

from .conftest import MASTER_KEY, default_raw_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


async def wait_for(tab: Tab, expression: str, timeout: float = 20) -> object:
    value = None
    for _ in range(int(timeout * 20)):
        try:
            value = await tab.evaluate(expression)
        except AssertionError as exc:  # between two documents while a navigation commits
            value = exc
        else:
            if value:
                return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expression!r} (last: {value!r}); errors: {tab.errors}")


async def open_page(tab: Tab, url: str) -> None:
    await tab.send("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    await tab.send("Page.navigate", url=url)
    await wait_for(tab, f"location.href === {js(url)} && document.readyState === 'complete' && "
                        "document.documentElement.getAttribute('data-gateway')")


def js(value: object) -> str:
    return json.dumps(value)


async def fill(tab: Tab, form: str, values: dict[str, object], submit: bool = True) -> None:
    await tab.evaluate(f"""(() => {{
        const form = document.querySelector({js(form)});
        const values = {js(values)};
        for (const [name, value] of Object.entries(values)) {{ form.elements[name].value = String(value); }}
        {"form.requestSubmit();" if submit else ""}
    }})()""")


async def click(tab: Tab, selector: str) -> None:
    await wait_for(tab, f"!!document.querySelector({js(selector)})")
    await tab.evaluate(f"document.querySelector({js(selector)}).click()")


def chromium_processes(profile: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(profile) in cmdline:
                found.append(pid)
    return found


@pytest.fixture
async def served(gateway_factory, upstream_base, dead_base, tmp_path):
    (tmp_path / "report").mkdir()
    db = history_db(tmp_path / "report" / "litellm.db")
    build(db, tmp_path / "public")
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["ui_dir"] = str(tmp_path / "public")
    return await gateway_factory(raw), tmp_path / "public"


async def test_admin_actions_in_a_real_browser(served, tmp_path):
    gw, site = served
    profile = tmp_path / "profile"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    async with chromium(CHROMIUM, profile) as browser, browser.tab() as tab:  # type: ignore[arg-type]
        # Charts draw under /ui's CSP (no 'unsafe-eval': Vega's interpreter).
        assert await tab.load(f"{gw.url}/ui/index.html", 1280) == "ready"
        assert await tab.evaluate("document.querySelectorAll('.vega svg').length") >= 3

        await open_page(tab, f"{gw.url}/ui/keys.html")
        assert await tab.evaluate("document.documentElement.getAttribute('data-gateway')") == "signed-out"
        await fill(tab, "#gateway form", {"master_key": MASTER_KEY})
        await wait_for(tab, "document.documentElement.getAttribute('data-gateway') === 'signed-in'")
        assert await tab.evaluate("sessionStorage.getItem('shin-gateway-session').includes('shin-ui.')")
        assert MASTER_KEY not in await tab.evaluate("JSON.stringify(sessionStorage)")
        await wait_for(tab, "document.documentElement.hasAttribute('data-live-keys')")

        # Create a key: shown once, then used through the SDK.
        await fill(tab, "#keys details.create form", {"key_alias": "browser-key", "max_budget": "5"})
        secret = await wait_for(tab, "(document.querySelector('#keys #new-secret') || {}).textContent")
        assert str(secret).startswith("sk-")
        await wait_for(tab, "!!document.querySelector('#keys tr[data-entity=\"browser-key\"]')")
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=str(secret), max_retries=0, timeout=10)
        try:
            reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content

            # Budget to $0: the next request is refused with 429.
            row = '#keys tr[data-entity="browser-key"]'
            await click(tab, f"{row} button[data-action=edit]")
            await fill(tab, "#keys tr.edit-row form", {"max_budget": "0"})
            await wait_for(tab, f"(document.querySelector('{row} td[data-field=max_budget]') || {{}}).textContent === '0'")
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

            # Revoke (two clicks: the second confirms): 401.
            await click(tab, f"{row} button[data-action=revoke]")
            await click(tab, f"{row} button[data-action=revoke]")
            await wait_for(tab, f"!document.querySelector('{row}')")
            with pytest.raises(openai.AuthenticationError):
                await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        finally:
            await client.close()

        # Models: test one now, then disable the whole model: clients get 404.
        await open_page(tab, f"{gw.url}/ui/models.html")
        assert await tab.evaluate("document.documentElement.getAttribute('data-gateway')") == "signed-in"
        await wait_for(tab, "document.documentElement.hasAttribute('data-live-models')")
        row = await tab.evaluate("""(() => { const r = Array.from(document.querySelectorAll('#models tbody tr'))
            .find(r => r.querySelector('td').textContent === 'gpt-4o-mini'); return r && r.getAttribute('data-entity'); })()""")
        assert row
        await click(tab, f'#models tr[data-entity="{row}"] button[data-action=test]')
        assert await wait_for(tab, "document.documentElement.getAttribute('data-model-test')") == "healthy"
        await click(tab, f'#models tr[data-entity="{row}"] button[data-action="disable model"]')
        await wait_for(tab, f"""(document.querySelector('#models tr[data-entity="{row}"] td[data-field=state]') || {{}})
            .textContent === 'disabled'""")
        with pytest.raises(openai.NotFoundError):
            await gw.client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

        # Logs: filter by model and status class, export what is shown as CSV.
        await tab.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        await tab.send("Page.navigate", url=f"{gw.url}/ui/logs.html")
        await wait_for(tab, "document.documentElement.getAttribute('data-logs') === 'ready'")
        total = int(await tab.evaluate("document.documentElement.getAttribute('data-logs-shown')"))
        await fill(tab, "#log-filters", {"model": "gpt-4o", "status": "2"}, submit=False)
        await tab.evaluate("document.querySelector('#log-filters').dispatchEvent(new Event('change'))")
        expected = await tab.evaluate("window.shinLogs.rows.filter(r => r.model === 'gpt-4o' && r.status_code >= 200 && r.status_code < 300).length")
        shown = int(await wait_for(tab, f"document.documentElement.getAttribute('data-logs-shown') !== '{total}' && "
                                        "document.documentElement.getAttribute('data-logs-shown')"))
        assert shown == expected and 0 < shown < total
        await click(tab, "#log-filters [data-export=csv]")
        path = downloads / "requests.csv"
        for _ in range(200):
            if path.is_file() and path.stat().st_size:
                break
            await asyncio.sleep(0.05)
        with path.open(newline="") as f:
            exported = list(csv.DictReader(f))
        assert len(exported) == shown
        assert {r["model"] for r in exported} == {"gpt-4o"} and all(r["status_code"].startswith("2") for r in exported)
        assert "key_hash" not in exported[0]

        # A row opens the request as stored.
        await click(tab, "#log-table tbody tr")
        await wait_for(tab, "document.documentElement.hasAttribute('data-log-detail')")
        assert "Messages (as stored)" in await tab.evaluate("document.querySelector('#log-detail').textContent")
        assert not tab.errors, tab.errors
    assert chromium_processes(profile) == []


async def test_from_file_the_pages_offer_no_sign_in_and_no_controls(tmp_path):
    db = history_db(tmp_path / "litellm.db")
    build(db, tmp_path / "public")
    async with chromium(CHROMIUM, tmp_path / "profile") as browser, browser.tab() as tab:  # type: ignore[arg-type]
        for page in ("keys.html", "models.html"):
            await open_page(tab, (tmp_path / "public" / page).as_uri())
            assert await tab.evaluate("document.documentElement.getAttribute('data-gateway')") == "none"
            assert await tab.evaluate("document.querySelectorAll('form, button:not(.fold-toggle)').length") == 0
            assert await tab.evaluate("document.getElementById('gateway').hidden") is True
        assert not tab.errors, tab.errors
    assert chromium_processes(tmp_path / "profile") == []
