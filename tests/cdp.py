"""A small Chrome DevTools Protocol driver for the browser tests: headless Chromium, one tab at
a time, over the websocket Chromium opens (aiohttp's client). Enough to load a page at a given
viewport, evaluate JavaScript, click and hover at a point, switch to print media, and collect
every console error and uncaught exception the page produced.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class Tab:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        self.errors: list[str] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, session=self.session, **params)

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                awaitPromise=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression!r}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def load(self, url: str, width: int, height: int = 900, timeout: float = 60) -> str:
        """Open `url` at this viewport; wait for site.js to say the charts are drawn."""
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=width < 600)
        await self.send("Page.navigate", url=url)
        state = None
        for _ in range(int(timeout * 10)):
            await asyncio.sleep(0.1)
            state = await self.evaluate(
                "document.readyState === 'complete' && document.documentElement.getAttribute('data-charts')")
            if state in ("ready", "failed"):
                return str(state)
        raise AssertionError(f"{url}: charts not drawn in {timeout} s (data-charts={state!r})")

    async def mouse(self, kind: str, x: float, y: float) -> None:
        if kind == "click":
            for event in ("mousePressed", "mouseReleased"):
                await self.send("Input.dispatchMouseEvent", type=event, x=x, y=y, button="left",
                                clickCount=1)
        else:
            await self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)


class Browser:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.tabs: dict[str, Tab] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(AssertionError(f"CDP error: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                continue
            tab = self.tabs.get(data.get("sessionId", ""))
            if tab is None:
                continue
            params = data.get("params", {})
            if data["method"] == "Runtime.exceptionThrown":
                tab.errors.append(json.dumps(params["exceptionDetails"])[:500])
            elif data["method"] == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                tab.errors.append(json.dumps(params["args"])[:500])
            elif data["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                tab.errors.append(f"{entry.get('text', '')[:400]} {entry.get('url', '')}")

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, 60)

    @asynccontextmanager
    async def tab(self) -> AsyncIterator[Tab]:
        target = (await self.send("Target.createTarget", url="about:blank"))["targetId"]
        session = (await self.send("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
        tab = Tab(self, session)
        self.tabs[session] = tab
        for domain in ("Page", "Runtime", "Log"):
            await tab.send(f"{domain}.enable")
        try:
            yield tab
        finally:
            await self.send("Target.closeTarget", targetId=target)
            self.tabs.pop(session, None)


@asynccontextmanager
async def chromium(executable: str, profile: Path) -> AsyncIterator[Browser]:
    profile.mkdir(parents=True, exist_ok=True)
    log = profile / "chromium.log"  # a file, not a pipe: nobody has to keep reading it
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-dev-shm-usage", "--remote-debugging-port=0",
             f"--user-data-dir={profile / 'data'}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,  # its own process group: every helper process is ended with it
        )
    try:
        url = None
        for _ in range(600):
            found = LISTENING.search(log.read_text(errors="replace"))
            if found:
                url = found.group(1)
                break
            assert proc.poll() is None, log.read_text()[-2000:]
            await asyncio.sleep(0.05)
        assert url, "Chromium did not open its DevTools websocket"
        async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
            browser = Browser(ws)
            try:
                yield browser
            finally:
                browser.reader.cancel()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await _end_group(proc.pid)


async def _end_group(group: int) -> None:
    """Chromium's zygote and renderers may outlive the browser process for a moment: end what
    is left of its process group and wait until none of it remains."""
    for attempt in range(200):
        try:
            os.killpg(group, signal.SIGKILL if attempt else signal.SIGTERM)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"Chromium's process group {group} did not end")
