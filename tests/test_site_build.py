"""The static site built from a fixed history: golden data and specs, safety, determinism.

Golden files live in tests/golden/site/. After an intended change to a query, a chart or the
history generator, regenerate them with:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_site_build.py -k golden
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from sitegen.plan import site_plan
from tests.site_fixtures import BREAKDOWNS, HOSTILE, HOSTILE_ATTR, NOW, build, history_db

PLAN = site_plan(BREAKDOWNS)
PAGES, TABLES = PLAN.pages, PLAN.tables

GOLDEN = Path(__file__).parent / "golden" / "site"


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return history_db(tmp_path_factory.mktemp("db") / "litellm.db")


@pytest.fixture(scope="session")
def site(history: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "public"
    build(history, out, datasette_url="https://datasette.example/")
    return out


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_golden_data_and_chart_specs(site: Path) -> None:
    produced = {p.name: p.read_text() for p in sorted((site / "data").glob("*.json"))}
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for old in GOLDEN.glob("*.json"):
            old.unlink()
        for name, text in produced.items():
            # Stored pretty-printed so a diff in review shows what changed.
            (GOLDEN / name).write_text(json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n")
    expected = {p.name: json.loads(p.read_text()) for p in sorted(GOLDEN.glob("*.json"))}
    assert expected, "no golden files: run with UPDATE_GOLDEN=1 once"
    assert sorted(produced) == sorted(expected)
    for name, text in produced.items():
        assert json.loads(text) == expected[name], f"{name} differs from tests/golden/site/{name}"


def test_every_page_table_and_chart_is_there(site: Path) -> None:
    assert sorted(p.name for p in site.glob("*.html")) == sorted(p.filename for p in PAGES)
    for page in PAGES:
        html = (site / page.filename).read_text()
        for section in page.sections:
            assert f'id="{section.table}"' in html
            assert f'href="data/{section.table}.csv"' in html
            if section.chart:
                assert f'id="chart-{section.chart}"' in html
                assert f'<script type="application/json" id="spec-{section.chart}">' in html
    for spec in TABLES:
        rows = json.loads((site / "data" / f"{spec.name}.json").read_text())["rows"]
        with open(site / "data" / f"{spec.name}.csv", newline="") as f:
            table = list(csv.reader(f))
        assert table[0] == [c.key for c in spec.columns]
        assert len(table) - 1 == len(rows)
    # One local copy of the JavaScript, shared; no CDN anywhere.
    assert (site / "assets" / "vendor" / "vega-lite.min.js").is_file()
    for page in site.glob("*.html"):
        text = page.read_text()
        assert "cdn.jsdelivr" not in text and "https://vega" not in text.replace(
            "https://vega.github.io/schema", "")
        own = {"models.html": ["assets/gateway.js", "assets/admin-tables.js", "assets/models-actions.js"],
               "keys.html": ["assets/gateway.js", "assets/admin-tables.js", "assets/keys-actions.js"],
               "logs.html": ["data/logs.js", "assets/logs.js"]}.get(page.name, [])
        scripts = re.findall(r'src="([^"]+)"', text)
        assert [s for s in scripts if s not in own] == [
            "assets/vendor/vega.min.js", "assets/vendor/vega-interpreter.js",
            "assets/vendor/vega-lite.min.js", "assets/vendor/vega-embed.min.js", "assets/site.js"]
        assert sorted(s for s in scripts if s in own) == sorted(own)


def test_numbers_answer_the_guides_questions(site: Path, history: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(history)
    day_start = "2025-12-31 00:00:00.000"
    end = "2025-12-31 14:30:00.000"
    requests, cost = conn.execute(
        "SELECT COUNT(*), ROUND(SUM(cost), 6) FROM request_log WHERE timestamp >= ? AND timestamp < ?",
        (day_start, end)).fetchone()
    today = json.loads((site / "data" / "todays_stats.json").read_text())["rows"][0]
    assert (today["requests"], today["cost"]) == (requests, cost)
    trend = json.loads((site / "data" / "daily_cost_trend.json").read_text())["rows"]
    assert len(trend) == 30 and trend[-1]["date"] == "2025-12-31"
    assert [r["date"] for r in trend] == sorted(r["date"] for r in trend)
    percentiles = json.loads((site / "data" / "latency_percentiles.json").read_text())["rows"]
    for row in percentiles:
        assert row["p50"] <= row["p95"] <= row["p99"]
    # The unpriced model is called out, so its $0 does not hide its usage.
    unpriced = json.loads((site / "data" / "unpriced_models.json").read_text())["rows"]
    assert "llama3-local" in [r["model"] for r in unpriced]


def test_datasette_links_use_the_canned_query_names(site: Path) -> None:
    html = (site / "cost.html").read_text()
    assert 'href="https://datasette.example/litellm/daily_cost_trend?days=30"' in html
    assert 'href="https://datasette.example/litellm/most_expensive_requests"' in html
    perf = (site / "performance.html").read_text()
    assert 'href="https://datasette.example/litellm/latency_percentiles?days=7"' in perf


def test_hostile_text_never_appears_raw(site: Path) -> None:
    html_files = list(site.rglob("*.html"))
    assert html_files
    for path in html_files:
        text = path.read_text()
        assert HOSTILE not in text, path
        assert HOSTILE_ATTR not in text, path
        assert "<script>alert" not in text, path
        # Outside the site's own scripts (assets/, and the Logs page's data/logs.js), the only
        # script elements are JSON specs.
        scripts = re.findall(r"<script([^>]*)>", text)
        assert all(s.startswith(' src="assets/') or s.startswith(' type="application/json"')
                   or s == ' src="data/logs.js"' for s in scripts), scripts
    # The Logs page's data scripts hold request text JSON-escaped: nothing can close a tag.
    for path in (site / "data").rglob("*.js"):
        text = path.read_text()
        assert "<" not in text and ">" not in text, path
    overview = (site / "index.html").read_text()
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in overview
    # Inside embedded JSON, < > & are escaped; the spec still parses back to the text.
    cost = (site / "cost.html").read_text()
    blocks = re.findall(r'<script type="application/json" id="spec-[^"]+">(.*?)</script>', cost,
                        re.S)
    assert blocks and any("\\u003c/script\\u003e" in b for b in blocks)
    assert any(HOSTILE in json.dumps(json.loads(b)) or HOSTILE in str(json.loads(b))
               for b in blocks)
    # CSV cells that a spreadsheet would run as a formula are neutralised.
    failed = (site / "data" / "failed_requests.csv").read_text()
    assert "=cmd" in failed and "\n=" not in failed and ",=" not in failed


def test_double_build_is_identical(history: Path, site: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build(history, again, datasette_url="https://datasette.example/")
    assert tree(again) == tree(site)
    assert {int(p.stat().st_mtime) for p in again.rglob("*")} == {NOW}


def test_build_never_writes_to_the_log(history: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(history.read_bytes()).hexdigest()
    siblings = sorted(p.name for p in history.parent.iterdir())
    os.chmod(history, 0o444)
    try:
        build(history, tmp_path / "out")
    finally:
        os.chmod(history, 0o644)
    assert hashlib.sha256(history.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in history.parent.iterdir()) == siblings


def test_tables_without_a_canned_query_link_their_own_sql(site: Path) -> None:
    """Each table links to Datasette: the canned query when the guide has one, else the same
    SQL with the same window, bound from the URL."""
    import html as html_lib
    import re
    from urllib.parse import parse_qs, urlsplit

    pages = "".join(p.read_text() for p in site.glob("*.html"))
    links = [html_lib.unescape(h) for h in re.findall(r'href="(https://datasette\.example/litellm\?[^"]+)"', pages)]
    assert links, "no ad-hoc Datasette links"
    by_sql = {t.sql.strip(): t for t in TABLES if t.compute is None}
    for link in links:
        query = parse_qs(urlsplit(link).query)
        spec = by_sql[query["sql"][0]]
        assert spec.datasette is None
        for name in re.findall(r":(\w+)", spec.sql):
            assert name in query, (spec.name, name)
    linked = {by_sql[parse_qs(urlsplit(link).query)["sql"][0]].name for link in links}
    computed = {t.name for t in TABLES if t.compute is not None and not t.datasette}
    assert linked | {t.name for t in TABLES if t.datasette} | {"period_summary"} | computed == {
        t.name for t in TABLES}
    # Breakdowns link to their canned queries with the key as a parameter.
    assert 'href="https://datasette.example/litellm/breakdown?key=project&amp;days=30"' in pages
    assert 'href="https://datasette.example/litellm/breakdown_daily_cost?key=tags&amp;days=30"' in pages


def _units(spec: object) -> list[dict]:
    """Every single-view spec (mark + encoding) inside a chart: layers, facets, concatenations."""
    found = []
    if isinstance(spec, dict):
        if "mark" in spec and "encoding" in spec:
            found.append(spec)
        for value in spec.values():
            found += _units(value)
    elif isinstance(spec, list):
        for value in spec:
            found += _units(value)
    return found


def test_every_chart_is_valid_vega_lite_with_tooltips_and_legend_highlighting(site: Path) -> None:
    """The build skips altair's schema validation (for speed); this is where it happens."""
    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema import load_schema

    schema = load_schema()
    charts = sorted((site / "data").glob("chart-*.vl.json"))
    assert len(charts) == len(PLAN.charts())
    for path in charts:
        spec = json.loads(path.read_text())
        validate_jsonschema(spec, schema, rootschema=schema)
        units = _units(spec)
        assert units, path.name
        for unit in units:
            assert "tooltip" in unit["encoding"], (path.name, unit["mark"])
        legends = [u for u in units if "field" in u["encoding"].get("color", {})
                   and u["encoding"]["color"].get("legend", {}) is not None]
        bound = {p["name"] for p in _params(spec) if p.get("bind") == "legend"}
        for unit in legends:  # clicking a legend entry highlights that series
            assert unit["encoding"]["opacity"]["condition"]["param"] in bound, path.name


def _params(spec: object) -> list[dict]:
    """Every parameter of a chart, wherever altair put it (layers hoist theirs to the top)."""
    if isinstance(spec, dict):
        return list(spec.get("params", [])) + [p for v in spec.values() for p in _params(v)]
    if isinstance(spec, list):
        return [p for v in spec for p in _params(v)]
    return []
