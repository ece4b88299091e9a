"""`python -m proxy keys export|import` (keys.db <-> Redis), the admin commands on Redis, and
where the Redis settings come from."""

from __future__ import annotations

import json
import subprocess
import sys

from redis.asyncio import Redis

from proxy.admin.store.redis_config import public_url, redis_url
from proxy.config import parse_config
from proxy.settings import describe

from .keys_helpers import chat
from .processes import ROOT
from .redis_helpers import needs_redis
from .test_redis_shared import eventually, redis_config


def proxy_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "proxy", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    if check:
        assert done.returncode == 0, done.stderr
    return done


@needs_redis
async def test_export_moves_keys_db_into_redis_and_import_brings_it_back(
    redis_server, gateway_factory, upstream_base, dead_base, tmp_path
):
    keys_db = tmp_path / "keys.db"
    made = json.loads(proxy_cli("keys", "--keys-db", str(keys_db), "create", "--alias", "old-key", "--max-budget", "3",
                                "--json").stdout)
    proxy_cli("teams", "--keys-db", str(keys_db), "create", "--team-id", "ops")
    done = proxy_cli("keys", "--keys-db", str(keys_db), "--redis-url", redis_server.url, "export")
    assert "2 records written" in done.stdout and "0 already in Redis kept" in done.stdout
    again = proxy_cli("keys", "--keys-db", str(keys_db), "--redis-url", redis_server.url, "export")
    assert "0 records written" in again.stdout and "2 already in Redis kept" in again.stdout

    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        stored = await client.hgetall("shin:e:key")
    finally:
        await client.aclose()
    assert list(stored) == [made["token_id"]]
    assert made["key"] not in json.dumps(stored)  # hashes only, never the raw key

    (tmp_path / "gw").mkdir()
    gw = await gateway_factory(redis_config(upstream_base, dead_base, redis_server.url), db_path=tmp_path / "gw" / "litellm.db")
    assert (await chat(gw, made["key"]))[0] == 200
    # The admin commands work on Redis when it is configured: a key made there, imported back.
    proxy_cli("keys", "--keys-db", str(tmp_path / "gw" / "keys.db"), "--redis-url", redis_server.url,
              "create", "--alias", "new-key")
    copy = tmp_path / "copy.db"
    done = proxy_cli("keys", "--keys-db", str(copy), "--redis-url", redis_server.url, "import")
    assert "2 key" in done.stdout and "1 team" in done.stdout
    listed = proxy_cli("keys", "--keys-db", str(copy), "list").stdout
    assert "old-key" in listed and "new-key" in listed


def test_export_without_redis_says_what_to_set(tmp_path):
    done = proxy_cli("keys", "--keys-db", str(tmp_path / "keys.db"), "export", check=False)
    assert done.returncode == 1 and "general_settings.redis_url" in done.stderr


def test_where_the_redis_settings_come_from():
    def url(raw: dict, env: dict | None = None) -> str | None:
        config = parse_config(raw, env={})
        return redis_url(config.__class__(**{**config.__dict__, "environment": env or {}}))

    assert url({}) is None  # nothing set: keys.db, no Redis
    assert url({"general_settings": {"redis_url": "redis://r1:7000/2"}}) == "redis://r1:7000/2"
    assert url({"router_settings": {"redis_url": "redis://r2:7000/0"}}) == "redis://r2:7000/0"
    host = {"router_settings": {"redis_host": "cache", "redis_port": 6380, "redis_password": "p@ss"}}
    assert url(host) == "redis://:p%40ss@cache:6380/0"
    assert url({"router_settings": {"redis_host": "cache"}}, {"REDIS_PORT": "7001", "REDIS_PASSWORD": "e"}) == "redis://:e@cache:7001/0"
    assert url({}, {"REDIS_HOST": "envhost"}) == "redis://envhost:6379/0"
    assert url({}, {"REDIS_URL": "redis://u:6379/1", "REDIS_HOST": "ignored"}) == "redis://u:6379/1"
    # Config before the environment; a URL before a host.
    assert url(host, {"REDIS_URL": "redis://env:1/0"}) == "redis://:p%40ss@cache:6380/0"
    assert url({"general_settings": {"redis_url": "redis://g:1/0"}, **host}) == "redis://g:1/0"
    assert public_url("redis://:secret@cache:6380/0") == "redis://cache:6380/0"
    text = describe()
    for name in ("redis_url", "redis_host", "redis_port", "redis_password"):
        assert f"  {name}:" in text


@needs_redis
async def test_the_first_gateway_on_an_empty_redis_seeds_it_from_keys_db(
    redis_server, gateway_factory, upstream_base, dead_base, tmp_path
):
    raw = redis_config(upstream_base, dead_base, redis_server.url)
    made = {}
    for host in ("a", "b"):  # two hosts, each with keys of its own from before Redis
        (tmp_path / host).mkdir()
        made[host] = json.loads(proxy_cli("keys", "--keys-db", str(tmp_path / host / "keys.db"), "create",
                                          "--alias", f"from-{host}", "--json").stdout)
    a = await gateway_factory(raw, db_path=tmp_path / "a" / "litellm.db")
    assert (await chat(a, made["a"]["key"]))[0] == 200  # seeded into the empty Redis
    assert not (tmp_path / "a" / "keys.db.pre-redis").exists()  # its keys are in Redis now

    b = await gateway_factory(raw, db_path=tmp_path / "b" / "litellm.db")
    assert (await chat(b, made["a"]["key"]))[0] == 200
    assert (await chat(b, made["b"]["key"]))[0] == 401  # Redis had data: B's own keys wait
    backup = tmp_path / "b" / "keys.db.pre-redis"
    assert backup.exists()  # ... saved before keys.db became the copy of Redis
    proxy_cli("keys", "--keys-db", str(backup), "--redis-url", redis_server.url, "export")

    async def served_by_both():  # B remembered the key as unknown: the export's message reloads it
        return [(await chat(gw, made["b"]["key"]))[0] for gw in (a, b)] == [200, 200]

    assert await eventually(served_by_both)
