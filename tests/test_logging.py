"""gateway.log in JSON, and oversized bodies refused with 413 and logged."""

from __future__ import annotations

import json
import logging

import aiohttp

from .conftest import MASTER_KEY, default_raw_config

PROMPT = [{"role": "user", "content": "hello"}]


async def test_json_logs_one_object_per_line(gateway_factory, upstream_base, dead_base, gateway_log):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"] = gateway_log.start({**raw["general_settings"], "json_logs": True})
    gw = await gateway_factory(raw)
    await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    try:
        await gw.client.with_options(api_key="sk-nope").chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    except Exception:
        pass
    gw.flush()
    text = gateway_log.stop()
    entries = [json.loads(line) for line in text.splitlines()]
    access = [e for e in entries if e["logger"] == "proxy.access"]
    assert [e["status"] for e in access] == [200, 401]
    assert access[0]["model"] == "gpt-4o-mini" and access[0]["cost"] > 0 and access[0]["level"] == "INFO"
    assert any("auth failed" in e["message"] for e in entries)
    assert "sk-nope" not in text and MASTER_KEY not in text


async def test_oversized_body_is_413_and_logged(gateway_factory, upstream_base, dead_base):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"]["max_request_bytes"] = 2048
    gw = await gateway_factory(raw)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.url}/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {MASTER_KEY}"}) as resp:
            assert resp.status == 413
            error = (await resp.json())["error"]
    assert "too large" in error["message"]
    assert [r["status_code"] for r in gw.rows()] == [413]
    # and the gateway keeps serving
    await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert len(gw.rows()) == 2


async def test_request_text_cannot_forge_log_lines(gateway_factory, upstream_base, dead_base, gateway_log):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"] = gateway_log.start(raw["general_settings"])
    forged = "gpt-4\n2026-01-01 00:00:00,000 INFO proxy.access: /v1/chat/completions model=gpt-4 status=200"
    gw = await gateway_factory(raw)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.url}/v1/chat/completions", json={"model": forged, "messages": PROMPT},
                             headers={"Authorization": f"Bearer {MASTER_KEY}"}) as resp:
            assert resp.status == 404
    gw.flush()
    lines = gateway_log.stop().splitlines()
    access = [line for line in lines if "proxy.access" in line]
    assert len(access) == 1 and "status=404" in access[0] and "\\n2026-01-01" in access[0]
    assert gw.rows()[0]["model"] == forged  # the database keeps the exact text


def test_buffered_log_file_flushes_soon_and_survives_logrotate(gateway_log, tmp_path):
    """The default file handler writes request lines within log_flush_seconds, warnings at once,
    and still follows the guide's logrotate recipe (rename, reopen by name)."""
    import time

    log_file = gateway_log.path
    gateway_log.start({"log_flush_seconds": 0.1})
    access = logging.getLogger("proxy.access")

    def eventually(path, text):
        for _ in range(100):
            if path.exists() and text in path.read_text():
                return True
            time.sleep(0.02)
        return False

    access.info("/v1/chat/completions model=gpt-4 status=200 first")
    assert eventually(log_file, "first")
    access.warning("/v1/chat/completions model=gpt-4 status=503 at once")
    assert "at once" in log_file.read_text()  # no waiting for warnings
    access.info("/v1/chat/completions model=gpt-4 status=200 before rotation")
    log_file.rename(tmp_path / "gateway.log.1")
    access.info("/v1/chat/completions model=gpt-4 status=200 after rotation")
    assert eventually(log_file, "after rotation")
    assert "before rotation" in (tmp_path / "gateway.log.1").read_text()
    access.info("/v1/chat/completions model=gpt-4 status=200 last")
    assert "last" in gateway_log.stop()  # replacing the handler flushed it
