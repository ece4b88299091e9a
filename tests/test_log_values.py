"""Issue 10, item 1: one bad value must not hide its batch (other people's rows included).

Each test sends 20 good requests beside the bad one, concurrently, so they share the writer's
batch, and checks that all 21 rows are logged — on the old writer none of them were.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

import aiohttp
import pytest

from proxy.logdb.storable import INT64_MAX, storable

from .conftest import MASTER_KEY, default_raw_config

GOOD = 20


def chat_body(content: str, model: str = "gpt-4o-mini") -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]}).encode()


async def post(http: aiohttp.ClientSession, url: str, body: bytes, key: str | None = MASTER_KEY) -> int:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    async with http.post(f"{url}/v1/chat/completions", data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


async def send_beside_good(url: str, bad: bytes, key: str | None = MASTER_KEY) -> tuple[list[int], int]:
    async with aiohttp.ClientSession() as http:
        *good, bad_status = await asyncio.gather(
            *(post(http, url, chat_body(f"good {i}")) for i in range(GOOD)), post(http, url, bad, key)
        )
    return good, bad_status


async def test_lone_surrogate_model_unauthenticated_hides_no_rows(gateway):
    # json.dumps writes the lone surrogate as the escape "\ud800", exactly as an attacker would.
    good, bad = await send_beside_good(gateway.url, chat_body("hi", model="x\ud800"), key=None)
    assert good == [200] * GOOD and bad == 401
    rows = gateway.rows()
    assert len(rows) == GOOD + 1
    (failed,) = [r for r in rows if r["status_code"] == 401]
    assert failed["model"] == "x\ufffd"  # readable, with the replacement character
    assert gateway.app_status().rows_refused == 0


async def test_half_an_emoji_in_content_hides_no_rows(gateway):
    half = "😀".encode("utf-16-le")[:2].decode("utf-16-le", "surrogatepass")  # JS "😀".slice(0, 1)
    good, bad = await send_beside_good(gateway.url, chat_body(f"smile {half}!"))
    assert good == [200] * GOOD and bad == 200
    rows = gateway.rows()
    assert len(rows) == GOOD + 1
    (row,) = [r for r in rows if "smile" in (r["messages"] or "")]
    assert "smile \ufffd!" in row["messages"]


async def test_upstream_reporting_1e19_prompt_tokens_hides_no_rows(gateway_factory, upstream_base, dead_base):
    raw = default_raw_config(upstream_base, dead_base)
    raw["model_list"].append({"model_name": "huge-usage", "litellm_params": {
        "model": "openai/hugeusage", "api_base": upstream_base, "input_cost_per_token": 1e-6}})
    gw = await gateway_factory(raw)
    good, bad = await send_beside_good(gw.url, chat_body("count me", model="huge-usage"))
    assert good == [200] * GOOD and bad == 200
    rows = gw.rows()
    assert len(rows) == GOOD + 1
    (row,) = [r for r in rows if r["model"] == "huge-usage"]
    assert row["prompt_tokens"] == INT64_MAX and row["total_tokens"] == INT64_MAX
    assert row["cost"] > 0 and row["cost"] < float("inf")


async def test_a_row_sqlite_still_refuses_is_set_aside_and_counted(gateway_factory, tmp_path):
    """A row no repair can make acceptable (here a trigger refuses it): the other rows of its
    batch are written, the refused one is kept readable with the reason, and counted."""
    from proxy.logdb.schema import connect_writer

    db = tmp_path / "litellm.db"
    conn = connect_writer(db)
    conn.execute("CREATE TRIGGER poison BEFORE INSERT ON request_log WHEN NEW.model = 'poison' "
                 "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END")
    conn.close()
    gw = await gateway_factory(db_path=db)
    good, bad = await send_beside_good(gw.url, chat_body("x", model="poison"))
    assert good == [200] * GOOD and bad == 404
    rows = gw.rows()
    assert len(rows) == GOOD and all(r["status_code"] == 200 for r in rows)
    status = gw.app_status()
    assert status.rows_refused == 1 and status.backlog == 0 and not status.degraded
    refused_file = tmp_path / "litellm.db-refused.jsonl"
    (entry,) = [json.loads(line) for line in refused_file.read_text().splitlines()]
    assert entry["refused"] is True and "poisoned row" in entry["reason"]
    assert entry["row"]["model"] == "poison" and entry["row"]["status_code"] == 404
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/metrics") as resp:
            metrics = await resp.text()
        async with http.get(f"{gw.url}/health") as resp:
            assert resp.status == 200
    assert "shin_request_log_rows_refused_total 1.0" in metrics


@pytest.mark.parametrize("json_logs", [False, True])
async def test_gateway_log_writes_lone_surrogates_without_a_logging_error(
    gateway_factory, upstream_base, dead_base, gateway_log, capsys, json_logs
):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"] = gateway_log.start({**raw["general_settings"], "json_logs": json_logs})
    logging.getLogger("proxy").warning("model %s from a client", "x\ud800")
    gw = await gateway_factory(raw)
    async with aiohttp.ClientSession() as http:
        assert await post(http, gw.url, chat_body("hi", model="x\ud800"), key=None) == 401
    gw.flush()
    text = gateway_log.stop()
    assert "Logging error" not in capsys.readouterr().err
    assert "x\\ud800 from a client" in text  # the line is there, the surrogate spelled out
    assert "status=401" in text or '"status": 401' in text


def test_storable_values():
    assert storable("ok") == "ok" and storable("é") == "é"
    assert storable("a\ud83d\ude00b") == "a😀b"  # a pair split into code points is rejoined
    assert storable("\ude00\ud83d") == "\ufffd\ufffd"
    assert storable(2**70) == INT64_MAX and storable(-(2**70)) == -(2**63)
    assert storable(float("nan")) == 0.0 and storable(float("-inf")) < -1e300
    assert storable(True) == 1 and storable(None) is None
    assert storable({"a": "\ud800"}) == '{"a": "\ufffd"}'
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (v)")
    for value in ("x\ud800", 10**19, float("nan"), b"\xff", object()):
        conn.execute("INSERT INTO t VALUES (?)", (storable(value),))
