"""The Models, API Keys and Logs pages built from a real log, keys.db and config.yaml: every
figure checked against the raw rows, and no key, key hash or upstream credential in any file
of the built site; without keys.db the pages say so and the site still builds."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from proxy.admin.records import ModelRecord
from proxy.admin.store.sqlite import KeysDB
from proxy.config import parse_config
from proxy.routing.router import Router
from sitegen.build import BuildOptions, build_site
from sitegen.data import Clock
from sitegen.progress import Progress
from sitegen.sources import Sources
from tests.site_fixtures import HOSTILE, NOW, history_db

UPSTREAM_SECRET = "sk-upstream-config-secret-5e1"
HEADER_SECRET = "header-secret-77"
URL_SECRET = "url-password-31"
QUERY_SECRET = "query-token-42"
ADDED_SECRET = "sk-added-at-runtime-secret-19"
RAW_KEYS = ("sk-demo-team-web", "sk-demo-team-data", "sk-demo-ci", "sk-hostile-key-0000",
            "sk-unbudgeted-key-1234")


def config_yaml(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "model_list": [
            {"model_name": "gpt-4o-mini", "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_key": UPSTREAM_SECRET, "rpm": 600,
                "extra_headers": {"X-Token": HEADER_SECRET}}},
            {"model_name": "house-model", "litellm_params": {
                "model": "openai/house-model", "api_base": f"https://bob:{URL_SECRET}@llm.example/v1?key={QUERY_SECRET}",
                "api_key": "os.environ/HOUSE_KEY_NOT_SET", "input_cost_per_token": 0.000001,
                "output_cost_per_token": 0.000002, "timeout": 30}},
            {"model_name": "from-env", "litellm_params": {
                "model": "openai/from-env", "api_base": "os.environ/UI_TEST_BASE_NOT_SET"}},
            {"model_name": "aws", "litellm_params": {"model": "bedrock/claude", "aws_secret_access_key": UPSTREAM_SECRET}},
        ],
        "general_settings": {"master_key": "sk-master-never-in-site-3"},
    }))
    return path


def gateway_ids(config: Path) -> dict[str, str]:
    """model_name -> deployment id as the gateway itself computes it (secrets resolved)."""
    raw = yaml.safe_load(config.read_text())
    raw["model_list"] = [m for m in raw["model_list"] if m["model_name"] != "aws"]
    for m in raw["model_list"]:
        m["litellm_params"].pop("api_key", None)
        if m["model_name"] == "from-env":
            m["litellm_params"]["api_base"] = "http://from-env.example/v1"
    router = Router(parse_config(raw, env={}))
    return {t.model_name: t.deployment_id for t in router.deployments()}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("ui-pages")
    db = history_db(root / "litellm.db")
    config = config_yaml(root / "config.yaml")
    ids = gateway_ids(config)
    store = KeysDB(root / "keys.db")
    try:
        store.insert(ModelRecord(model_id="added-1", model_name="added-model", origin="api", created_at=NOW,
                                 litellm_params={"model": "openai/gpt-4o", "api_key": ADDED_SECRET,
                                                 "api_base": "https://added.example/v1"}))
        store.insert(ModelRecord(model_id=ids["house-model"], origin="config", enabled=False, created_at=NOW))
    finally:
        store.close()
    out = root / "public"
    build_with(db, out, config=config, keys=root / "keys.db")
    return db, out, ids


def build_with(db: Path, out: Path, *, config: Path | None, keys: Path | None, logs_rows: int = 2000) -> None:
    sources = Sources(keys_db=keys, config=config, logs_rows=logs_rows)
    build_site(BuildOptions(db=db, out=out, sources=sources),
               Clock(datetime.fromtimestamp(NOW, UTC)), Progress(quiet=True))


def rows(out: Path, name: str) -> list[dict]:
    document = json.loads((out / "data" / f"{name}.json").read_text())
    return document["rows"]


def query(db: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]


def test_models_page_lists_config_and_run_time_deployments_without_secrets(site):
    db, out, ids = site
    found = {r["model"]: r for r in rows(out, "model_deployments")}
    assert set(found) == {"gpt-4o-mini", "house-model", "from-env", "aws", "added-model"}
    mini, house, env, aws = found["gpt-4o-mini"], found["house-model"], found["from-env"], found["aws"]
    assert mini["deployment_id"] == ids["gpt-4o-mini"] and house["deployment_id"] == ids["house-model"]
    assert mini["price_source"].startswith("genai-prices") and mini["input_per_million"] == pytest.approx(0.15)
    assert (house["input_per_million"], house["output_per_million"], house["price_source"]) == (1.0, 2.0, "config.yaml")
    assert house["api_base"] == "https://llm.example/v1" and house["limits"] == "timeout 30"
    assert house["state"] == "disabled" and house["origin"] == "config.yaml, changed at run time"
    assert mini["limits"] == "rpm 600" and mini["api_base"] == "https://api.openai.com/v1"
    assert env["api_base"].startswith("$UI_TEST_BASE_NOT_SET")
    assert "not OpenAI-compatible" in aws["problem"]
    added = found["added-model"]
    assert (added["deployment_id"], added["origin"], added["state"]) == ("added-1", "added at run time", "enabled")
    assert added["api_base"] == "https://added.example/v1"


def test_model_traffic_matches_the_raw_rows(site):
    """Counts exact over each window; percentiles within one histogram bucket (rollups and the
    report's cache hold whole hours, the edges come from the rows)."""
    db, out, _ = site
    stats = {(r["model"], r["window"]): r for r in rows(out, "model_stats")}
    for days, label in ((1, "1 day"), (7, "7 days"), (30, "30 days")):
        since = stamp(NOW - days * 86400)
        raw = query(db, "SELECT COUNT(*) n, SUM(total_tokens) t, SUM(cost) c, SUM(status_code >= 400) e "
                        "FROM request_log WHERE model = 'gpt-4o' AND timestamp >= ? AND timestamp < ?",
                    since, stamp(NOW))[0]
        got = stats[("gpt-4o", label)]
        assert (got["requests"], got["tokens"]) == (raw["n"], raw["t"])
        assert got["cost"] == pytest.approx(raw["c"], abs=1e-5)
        assert got["error_rate"] == round(100 * raw["e"] / raw["n"], 2)
        lat = [r[0] for r in query(db, "SELECT latency FROM request_log WHERE model = 'gpt-4o' AND timestamp >= ? "
                                       "AND timestamp < ? AND upstream_latency IS NOT NULL ORDER BY latency",
                                   since, stamp(NOW))]
        for share, column in ((95, "p95"), (50, "p50")):
            exact = lat[-(-share * len(lat) // 100) - 1]
            assert round(exact, 4) <= got[column] <= exact * 1.1 + 1e-4, (label, column)
    last = {r["model"]: r for r in rows(out, "model_last_errors")}
    newest = query(db, "SELECT timestamp, status_code FROM request_log WHERE model = 'gpt-4o' AND status_code >= 400 "
                       "ORDER BY timestamp DESC LIMIT 1")[0]
    assert last["gpt-4o"]["last_error"] == newest["timestamp"][:19] and last["gpt-4o"]["status_code"] == newest["status_code"]


def test_keys_page_shows_every_key_user_and_team_by_name_with_use(site):
    db, out, _ = site
    keys = {r["key"]: r for r in rows(out, "virtual_keys")}
    assert set(keys) == {"team-web", "team-data", "ci", "free", '"><img src=x onerror=alert(2)>' + HOSTILE}
    web = keys["team-web"]
    assert (web["max_budget"], web["spend"], web["left"], web["budget_duration"]) == (50.0, 45.0, 5.0, "30d")
    assert web["key_name"] == "sk-…-web" and web["status"] == "active"
    key_hash = hashlib.sha256(b"sk-demo-team-web").hexdigest()
    newest = query(db, "SELECT MAX(timestamp) FROM request_log WHERE key_hash = ?", key_hash)[0][0]
    assert web["last_used"] == newest[:19]
    # The 30 days end at the build's moment (its clock: 1 ms past SOURCE_DATE_EPOCH), exactly.
    since = datetime.fromtimestamp(NOW - 30 * 86400, UTC).strftime("%Y-%m-%d %H:%M:%S.001")
    raw = query(db, "SELECT COUNT(*), SUM(cost) FROM request_log WHERE key_hash = ? AND timestamp >= ?", key_hash, since)[0]
    assert web["requests_30d"] == raw[0] and web["cost_30d"] == pytest.approx(raw[1], abs=1e-6)
    assert keys["free"]["left"] is None and keys["free"]["requests_30d"] == 0
    users = {r["user_id"]: r for r in rows(out, "users")}
    assert users["carol"]["max_budget"] == 30.0 and users["carol"]["left"] == 18.0
    assert users["carol"]["requests_30d"] == query(
        db, "SELECT COUNT(*) FROM request_log WHERE user_id = 'carol' AND timestamp >= ?", since)[0][0]
    teams = {r["team_id"]: r for r in rows(out, "teams")}
    assert teams["platform"]["team"] == "Platform" and teams["platform"]["members"] == 1


def logs_data(out: Path) -> dict:
    text = (out / "data" / "logs.js").read_text()
    assert text.startswith("window.shinLogs = ") and text.endswith(";\n")
    return json.loads(text[len("window.shinLogs = "):-2])


def test_logs_page_data_holds_the_newest_requests_and_errors_with_details(site):
    db, out, _ = site
    data = logs_data(out)
    newest = [r[0] for r in query(db, "SELECT id FROM request_log ORDER BY timestamp DESC LIMIT 2000")]
    errors = [r[0] for r in query(db, "SELECT id FROM request_log WHERE status_code >= 400 ORDER BY timestamp DESC LIMIT 2000")]
    assert {r["id"] for r in data["rows"]} == set(newest) | set(errors)
    assert data["rows"][0]["id"] == newest[0]
    assert len(rows(out, "recent_requests_log")) == 2000 and "_detail" not in rows(out, "recent_requests_log")[0]
    row = next(r for r in data["rows"] if r["request_id"] == "hostile-err")
    chunk = (out / "data" / "logs" / f"detail-{row['chunk']}.js").read_text()
    assert chunk.startswith(f"window.shinLogs.detail({row['chunk']}, ")
    detail = json.loads(chunk[chunk.index(", ") + 2:-3])[str(row["id"])]
    stored = query(db, "SELECT response, latency, upstream_latency FROM request_log WHERE id = ?", row["id"])[0]
    assert detail["response"] == stored["response"] and row["status_code"] == 500
    assert "</script>" not in chunk and "\\u003c/script\\u003e" in chunk  # escaped, and round-trips
    ok = next(r for r in data["rows"] if r["status_code"] == 200 and r["stream"])
    chunk = (out / "data" / "logs" / f"detail-{ok['chunk']}.js").read_text()
    detail = json.loads(chunk[chunk.index(", ") + 2:-3])[str(ok["id"])]
    stored = query(db, "SELECT messages, latency, upstream_latency, cost_status FROM request_log WHERE id = ?", ok["id"])[0]
    assert detail["messages"] == stored["messages"] and detail["cost_status"] == stored["cost_status"]
    assert detail["gateway_latency"] == pytest.approx(stored["latency"] - stored["upstream_latency"])
    assert "genai-prices" in detail["how_priced"] or "config" in detail["how_priced"]


def test_logs_rows_is_a_setting(tmp_path):
    db = history_db(tmp_path / "litellm.db")
    build_with(db, tmp_path / "out", config=None, keys=None, logs_rows=50)
    data = logs_data(tmp_path / "out")
    assert len(rows(tmp_path / "out", "recent_requests_log")) == 50
    assert 50 < len(data["rows"]) <= 100  # plus the newest 50 errors not among them


def test_without_keys_db_the_pages_say_so_and_the_site_builds(tmp_path):
    (tmp_path / "logs").mkdir()
    db = history_db(tmp_path / "logs" / "litellm.db")
    (tmp_path / "logs" / "keys.db").unlink()
    out = tmp_path / "out"
    build_with(db, out, config=config_yaml(tmp_path / "config.yaml"), keys=tmp_path / "logs" / "keys.db")
    html = (out / "keys.html").read_text()
    assert html.count("No keys.db beside the log") == 3
    assert {r["model"] for r in rows(out, "model_deployments")} >= {"gpt-4o-mini", "house-model"}
    assert rows(out, "model_stats") and (out / "logs.html").is_file()


def test_no_key_hash_or_credential_reaches_any_file_of_the_site(site):
    db, out, _ = site
    hashes = {r[0] for r in query(db.with_name("keys.db"), "SELECT key_hash FROM keys")}
    hashes |= {r[0] for r in query(db, "SELECT DISTINCT key_hash FROM request_log WHERE key_hash IS NOT NULL")}
    assert len(hashes) >= 5
    secrets = [*RAW_KEYS, UPSTREAM_SECRET, HEADER_SECRET, URL_SECRET, QUERY_SECRET, ADDED_SECRET,
               "sk-master-never-in-site-3", *hashes, *(h[:12] for h in hashes)]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 100
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        for secret in secrets:
            assert secret not in text, (path.name, secret[:16])
    assert '"api_key"' not in "".join(p.read_text() for p in (out / "data").rglob("*.js"))


def test_pages_escape_what_requests_and_keys_db_hold(site):
    _, out, _ = site
    for page in ("models.html", "keys.html", "logs.html"):
        html = (out / page).read_text()
        assert HOSTILE not in html and "<img src=x" not in html, page
    keys_html = (out / "keys.html").read_text()
    assert "&lt;img src=x onerror=alert(2)&gt;" in keys_html
    # Action controls exist only as scripts that wait for a gateway: nothing to click in the file.
    for page in ("models.html", "keys.html"):
        html = (out / page).read_text()
        assert "<form" not in html and "<button" not in html and 'id="gateway" hidden' in html
        assert "assets/gateway.js" in html


def test_datasette_links_each_log_row(tmp_path, site):
    db, _, _ = site
    out = tmp_path / "out"
    sources = Sources(keys_db=db.with_name("keys.db"), logs_rows=10)
    build_site(BuildOptions(db=db, out=out, sources=sources, datasette_url="http://127.0.0.1:8001/"),
               Clock(datetime.fromtimestamp(NOW, UTC)), Progress(quiet=True))
    assert logs_data(out)["datasette"] == "http://127.0.0.1:8001/litellm/request_log/"
