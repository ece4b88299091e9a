"""The user's guide (docs/monitoring-guide.md) is true of what we ship: every SQL query in it,
its dashboard.py, its log greps and its /health run unchanged against a gateway's output."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import openai

from .conftest import MASTER_KEY, default_raw_config

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "monitoring-guide.md"
PROMPT = [{"role": "user", "content": "Summarise the incident report"}]


def guide_queries() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    queries = re.findall(r"```sql\n(.*?)```", text, re.S)
    queries += re.findall(r'"""\n(\s*SELECT.*?)"""', text, re.S)
    queries += re.findall(r'sqlite3 litellm\.db "(SELECT[^"]*)"', text)
    queries += re.findall(r'cursor\.execute\("(SELECT[^"]*)"\)', text)
    return [q.strip() for q in queries if "CREATE TABLE" not in q]


def dashboard_script() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    block = re.search(r"Create `dashboard.py`:\s*```python\n(.*?)```", text, re.S)
    assert block, "dashboard.py not found in the guide"
    return block.group(1)


def test_guide_has_the_queries_we_expect():
    # Guards the extraction itself: if the guide changes shape, this test says so.
    assert len(guide_queries()) == 18


async def drive_traffic(gw) -> None:
    for user in ("alice", "bob", "carol"):
        await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, user=user)
    stream = await gw.client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True, user="bob")
    async for _ in stream:
        pass
    await gw.client.embeddings.create(model="text-embedding-3-small", input="hello")
    await gw.client.chat.completions.create(model="local-llama", messages=PROMPT)
    for model in ("broken", "nope"):
        try:
            await gw.client.chat.completions.create(model=model, messages=PROMPT)
        except openai.APIStatusError:
            pass
    try:
        await gw.client.with_options(api_key="sk-not-a-key").chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    except openai.AuthenticationError:
        pass


async def test_every_guide_query_runs_on_a_database_the_gateway_wrote(gateway):
    await drive_traffic(gateway)
    gateway.flush()
    conn = sqlite3.connect(gateway.db_path)
    results = {}
    for query in guide_queries():
        results[query] = conn.execute(query).fetchall()
    conn.close()
    by_model = next(rows for q, rows in results.items() if "GROUP BY model\n    ORDER BY total_cost DESC" in q)
    assert {r[0] for r in by_model} >= {"gpt-4o-mini", "local-llama", "broken", "nope"}
    failed = next(rows for q, rows in results.items() if "error_message" in q)
    assert sorted(r[2] for r in failed) == [401, 404, 503]
    hourly = next(rows for q, rows in results.items() if "requests_per_hour" in q)
    assert sum(r[1] for r in hourly) == 9


async def test_dashboard_script_runs_unchanged(gateway, tmp_path):
    await drive_traffic(gateway)
    gateway.flush()
    script = tmp_path / "dashboard.py"
    script.write_text(dashboard_script(), encoding="utf-8")
    # dashboard.py opens 'litellm.db' in its working directory
    assert gateway.db_path.name == "litellm.db"
    done = subprocess.run([sys.executable, str(script)], cwd=gateway.db_path.parent, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "Requests: 9" in done.stdout
    assert "ERRORS TODAY: 3" in done.stdout
    assert re.search(r"gpt-4o-mini\s+\|\s+5 reqs", done.stdout)


async def test_log_greps_from_the_guide(gateway_factory, upstream_base, dead_base, gateway_log):
    raw = default_raw_config(upstream_base, dead_base)
    raw["general_settings"] = gateway_log.start(raw["general_settings"])
    gw = await gateway_factory(raw)
    await drive_traffic(gw)
    gw.flush()
    gateway_log.stop()
    log_file = gateway_log.path

    def grep(pattern: str) -> list[str]:
        done = subprocess.run(["grep", pattern, str(log_file)], capture_output=True, text=True)
        return done.stdout.splitlines()

    assert len(grep("model=gpt-4")) >= 5  # the guide's `grep "model=gpt-4"`
    assert len(grep("auth.*failed")) >= 1
    assert any("model=broken" in line for line in grep("ERROR"))
    text = log_file.read_text()
    assert MASTER_KEY not in text and "sk-not-a-key" not in text and "sk-upstream-secret" not in text


async def test_health_matches_the_guide(gateway):
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/health") as resp:
        body = await resp.json()
    assert body["status"] == "healthy"
    assert isinstance(body["uptime"], (int, float)) and re.fullmatch(r"\d+\.\d+\.\d+", body["version"])
