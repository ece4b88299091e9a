"""`python -m sitegen build`: exit codes, one-line errors, empty and older databases, publishing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.plan import site_plan
from tests.site_fixtures import NOW, build, empty_db, guide_only_db, history_db

TABLES = site_plan().tables  # no report.breakdowns in these builds

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(NOW))


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from proxy.history import generate_history
    from tests.site_fixtures import write_records

    path = tmp_path_factory.mktemp("small") / "litellm.db"
    write_records(path, generate_history(days=3, rows=200, seed=5, now=NOW - 60))
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_module_entry_point_builds_and_reports(small_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(NOW)}
    result = subprocess.run(
        [sys.executable, "-m", "sitegen", "build", "--db", str(small_db), "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("sitegen: reading ") and "2025-12-31 14:30 UTC" in lines[0]
    assert lines[-1].startswith(f"sitegen: 200 rows read, 10 pages, 16 charts, {len(TABLES)} tables")
    assert "\r" not in result.stderr  # not a terminal: no progress bar
    assert (out / "index.html").is_file()


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["build", "--help"])
    assert exc.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_missing_database_fails_and_keeps_the_previous_site(
    small_db: Path, tmp_path: Path, epoch: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "public"
    assert main(["build", "--db", str(small_db), "--out", str(out), "-q"]) == 0
    before = snapshot(out)
    capsys.readouterr()
    code = main(["build", "--db", str(tmp_path / "nope.db"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 2  # the first stage line, then the one-line error
    assert err.splitlines()[-1] == f"sitegen: error: {tmp_path / 'nope.db'}: database not found"
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize("content", [b"this is not a database" * 200, b""])
def test_corrupt_database_fails_and_keeps_the_previous_site(
    small_db: Path, tmp_path: Path, epoch: None, content: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "public"
    build(small_db, out)
    before = snapshot(out)
    bad = tmp_path / "bad.db"
    bad.write_bytes(content)
    code = main(["build", "--db", str(bad), "--out", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith(f"sitegen: error: {bad}: ")
    assert snapshot(out) == before
    assert bad.read_bytes() == content
    assert leftovers(tmp_path) == []


def test_empty_database_builds_a_real_site(tmp_path: Path, epoch: None) -> None:
    db = empty_db(tmp_path / "litellm.db")
    out = tmp_path / "public"
    assert main(["build", "--db", str(db), "--out", str(out), "-q"]) == 0
    for page in out.glob("*.html"):
        assert "No requests have been logged yet" in page.read_text()
    assert "No requests in this period." in (out / "cost.html").read_text()
    assert (out / "data" / "usage_by_model.csv").read_text() == (
        "model,requests,prompt_tokens,completion_tokens,total_tokens,total_cost\n")
    # Aggregates with no rows draw no chart; zero-filled series draw honest zeros.
    assert not (out / "data" / "chart-cost_by_model.vl.json").exists()
    trend = json.loads((out / "data" / "daily_cost_trend.json").read_text())["rows"]
    assert len(trend) == 30 and {r["daily_cost"] for r in trend} == {0}


def test_older_guide_only_database_says_not_recorded(tmp_path: Path, epoch: None) -> None:
    db = guide_only_db(tmp_path / "old.db")
    out = tmp_path / "public"
    assert main(["build", "--db", str(db), "--out", str(out), "-q"]) == 0
    pricing = (out / "pricing.html").read_text()
    assert "Not recorded: this database has no cost_status, tokens_estimated columns" in pricing
    assert "gpt-4o" in (out / "cost.html").read_text()
    assert "Not recorded: this database has no key_alias column" in (out / "usage.html").read_text()
    assert not (out / "data" / "usage_by_key.csv").exists()
    assert "llama3-local" in (out / "data" / "zero_cost_models.csv").read_text()
    # The explanations need only the guide's columns; what needs more says so.
    overview = (out / "index.html").read_text()
    assert "Why cost moved" in overview and 'id="chart-cost_waterfall"' in overview
    assert 'id="chart-daily_health"' in overview
    performance = (out / "performance.html").read_text()
    assert "Not recorded: this database has no upstream_latency column" in performance
    assert "Not recorded: this database has no stream, time_to_first_token columns" in performance
    assert "Not recorded: this database has no metadata column" in (out / "breakdowns.html").read_text()
    health = json.loads((out / "data" / "daily_health.json").read_text())["rows"]
    assert {r["metric"] for r in health} == {"Cost", "Error rate", "p95 latency"}


def test_refuses_to_replace_a_folder_it_did_not_build(
    small_db: Path, tmp_path: Path, epoch: None, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["build", "--db", str(small_db), "--out", str(precious), "-q"]) == 3
    assert "not a site built by shin-report" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"


def test_publish_swaps_whole_sites_and_keeps_gitkeep(small_db: Path, tmp_path: Path) -> None:
    history = history_db(tmp_path / "history.db")
    out = tmp_path / "public"
    out.mkdir()
    (out / ".gitkeep").write_text("")
    build(small_db, out)
    assert (out / ".gitkeep").exists()
    stale = out / "data" / "stale.csv"
    stale.write_text("left over by hand")
    build(history, out)
    assert not stale.exists()  # a swap, not an overlay
    assert (out / ".gitkeep").exists()
    assert "llama3-local" in (out / "data" / "unpriced_models.csv").read_text()
    assert leftovers(tmp_path) == []
    assert oct(out.stat().st_mode & 0o777) == "0o755"


def test_bad_source_date_epoch(small_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    assert main(["build", "--db", str(small_db), "--out", str(tmp_path / "o"), "-q"]) != 0
    assert "SOURCE_DATE_EPOCH" in capsys.readouterr().err


def test_config_report_section_sets_title_and_datasette(small_db: Path, tmp_path: Path,
                                                       epoch: None) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("report:\n  title: Team <LLM> usage\n  datasette_url: http://127.0.0.1:8001\n")
    out = tmp_path / "public"
    assert main(["build", "--db", str(small_db), "--out", str(out), "--config", str(config),
                 "-q"]) == 0
    html = (out / "usage.html").read_text()
    assert "Team &lt;LLM&gt; usage" in html
    assert 'href="http://127.0.0.1:8001/litellm/usage_by_model?days=7"' in html


def test_config_breakdowns_budget_and_keys_db(small_db: Path, tmp_path: Path, epoch: None) -> None:
    """report.breakdowns and litellm_settings.max_budget from config.yaml; keys.db from
    general_settings.keys_database_path, and --keys-db over it."""
    from tests.site_fixtures import keys_db

    keys = keys_db(tmp_path / "elsewhere.db", [
        {"raw": "sk-cli-test-key-0001", "key_alias": "cli-key", "max_budget": 5.0, "spend": 1.0}],
        global_spend=3.0)
    config = tmp_path / "config.yaml"
    config.write_text("report:\n  breakdowns: [project, tags]\n"
                      "litellm_settings:\n  max_budget: 10\n  budget_duration: 30d\n"
                      f"general_settings:\n  keys_database_path: {keys}\n"
                      "model_list:\n  - model_name: x\n    litellm_params:\n"
                      "      model: openai/x\n      api_key: os.environ/SHIN_UNSET_PROVIDER_KEY\n")
    out = tmp_path / "public"
    assert main(["build", "--db", str(small_db), "--out", str(out), "--config", str(config), "-q"]) == 0
    page = (out / "breakdowns.html").read_text()
    assert 'id="by_project"' in page and 'id="by_tags_daily"' in page
    budgets = json.loads((out / "data" / "budgets.json").read_text())["rows"]
    assert {(r["name"], r["max_budget"], r["spend"]) for r in budgets} == {
        ("cli-key", 5.0, 1.0), ("the gateway", 10.0, 3.0)}
    other = keys_db(tmp_path / "other.db", [], global_spend=7.0)
    assert main(["build", "--db", str(small_db), "--out", str(out), "--config", str(config),
                 "--keys-db", str(other), "-q"]) == 0
    budgets = json.loads((out / "data" / "budgets.json").read_text())["rows"]
    assert [(r["name"], r["spend"]) for r in budgets] == [("the gateway", 7.0)]


def test_explicit_missing_config_is_an_error(small_db: Path, tmp_path: Path, epoch: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "--db", str(small_db), "--out", str(tmp_path / "o"),
                 "--config", str(tmp_path / "missing.yaml")])
    assert code == 2
    assert "missing.yaml: file not found" in capsys.readouterr().err


def test_overview_shows_active_alerts_escaped(small_db: Path, tmp_path: Path, epoch: None) -> None:
    from sitegen.alerts.state import AlertRecord, save

    state = tmp_path / "alerts.json"
    save(state, {
        "model_p95_latency:<b>x</b>": AlertRecord(
            rule="model_p95_latency", status="firing", value=12.5, since="2025-12-31 13:00:00",
            message="p95 latency of <script>alert(1)</script> is 12.5 s"),
        "daily_cost": AlertRecord(rule="daily_cost", status="resolved", value=1.0,
                                  since="2025-12-30 10:00:00", message="resolved one"),
    }, now=NOW)
    config = tmp_path / "config.yaml"
    config.write_text(f"alerts:\n  state_file: {state}\n")
    out = tmp_path / "public"
    assert main(["build", "--db", str(small_db), "--out", str(out), "--config", str(config), "-q"]) == 0
    html = (out / "index.html").read_text()
    assert 'id="active_alerts"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "resolved one" not in html  # only firing alerts are shown


def test_no_alert_panel_without_firing_alerts(small_db: Path, tmp_path: Path, epoch: None) -> None:
    out = tmp_path / "public"
    assert main(["build", "--db", str(small_db), "--out", str(out), "-q"]) == 0
    assert 'id="active_alerts"' not in (out / "index.html").read_text()


def test_progress_bar_in_a_terminal(small_db: Path, tmp_path: Path) -> None:
    """Run the real command on a pseudo-terminal: the bar is drawn and cleared, stage lines stay."""
    import pty
    import select

    out = tmp_path / "public"
    primary, secondary = pty.openpty()
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(NOW)}
    proc = subprocess.Popen([sys.executable, "-m", "sitegen", "build", "--db", str(small_db), "--out", str(out)],
                            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    seen = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(60) == 0
    os.close(primary)
    text = seen.decode()
    assert "\r  [" in text and f"{len(TABLES)}/{len(TABLES)}" in text  # the bar reached the last query
    assert "sitegen: 200 rows read" in text
