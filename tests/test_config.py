"""config.yaml: LiteLLM's format, os.environ/ indirection, clear errors, the shipped example."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import load_config, parse_config, parse_duration
from proxy.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_example_config_loads():
    config = load_config(ROOT / "config.yaml", env={"OPENAI_API_KEY": "sk-example"})
    assert config.model_names == ["gpt-4o-mini"]
    assert config.models[0].litellm_params.api_key == "sk-example"
    assert config.general.store_prompts is True and config.general.database_path == "litellm.db"


def test_environment_variables_section_feeds_os_environ_references():
    raw = {
        "environment_variables": {"UPSTREAM_KEY": "os.environ/REAL_KEY", "SLACK_WEBHOOK_URL": "http://hook"},
        "model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "os.environ/UPSTREAM_KEY"}}],
    }
    config = parse_config(raw, env={"REAL_KEY": "k-123"})
    assert config.models[0].litellm_params.api_key == "k-123"
    assert config.env("SLACK_WEBHOOK_URL") == "http://hook"


def test_ui_credentials_fall_back_to_environment():
    config = parse_config({}, env={"UI_USERNAME": "admin", "UI_PASSWORD": "pw"})
    assert (config.general.ui_username, config.general.ui_password) == ("admin", "pw")


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"general_settings": {"json_logs": "maybe"}}, "general_settings.json_logs: expected true or false"),
        ({"general_settings": {"log_level": "LOUD"}}, "general_settings.log_level"),
        ({"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "timeout": -1}}]}, "timeout: must be > 0"),
        ({"general_settings": "oops"}, "general_settings: expected a mapping"),
        ({"litellm_settings": {"max_budget": "lots"}}, "litellm_settings.max_budget: expected a number"),
    ],
)
def test_invalid_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(raw, env={})


def test_unknown_keys_warn(caplog):
    parse_config({"general_settings": {"shiny": True}, "mystery": 1}, env={})
    assert "general_settings.shiny" in caplog.text and "mystery" in caplog.text


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("5m", 300), ("1h", 3600), ("7d", 604800), ("1mo", 2592000)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_yaml_is_one_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model_list: [unclosed\n  - x: :")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value) and "not valid YAML" in str(info.value)


PROVIDER_CONFIG = """
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/SHIN_UNSET_PROVIDER_KEY}
general_settings:
  master_key: os.environ/SHIN_UNSET_MASTER_KEY
  database_path: logs/litellm.db
environment_variables:
  SLACK_WEBHOOK_URL: os.environ/SHIN_UNSET_SLACK
report:
  title: Team report
alerts:
  state_file: alerts.json
"""


def test_partial_reads_leave_provider_keys_unread(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(PROVIDER_CONFIG)
    with pytest.raises(ConfigError, match="SHIN_UNSET_.* is not set"):
        load_config(path, env={})
    config = load_config(path, env={}, only={"report": None, "alerts": None})
    assert config.report.title == "Team report" and config.alerts == {"state_file": "alerts.json"}
    assert config.models == () and config.env("SLACK_WEBHOOK_URL") is None
    paths = load_config(path, env={}, only={"general_settings": ("database_path",)})
    assert paths.general.database_path == "logs/litellm.db" and paths.general.master_key is None


def test_partial_read_still_names_a_missing_variable_it_needs(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("report:\n  datasette_url: os.environ/SHIN_UNSET_DATASETTE\n")
    with pytest.raises(ConfigError, match=r"report\.datasette_url: environment variable SHIN_UNSET_DATASETTE"):
        load_config(path, env={}, only={"report": None})


def test_cron_jobs_run_without_provider_keys(tmp_path):
    """make report (alerts + build), make backup and the keys CLI with the shipped config.yaml
    and none of the API keys it references in the environment."""
    import os
    import subprocess
    import sys

    from proxy.logdb.writer import LogWriter

    db = tmp_path / "litellm.db"
    writer = LogWriter(db)
    writer.start()
    writer.stop()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "LITELLM_MASTER_KEY")}
    config = str(ROOT / "config.yaml")
    commands = [
        ["sitegen", "alerts", "--db", str(db), "--config", config, "-q"],
        ["sitegen", "build", "--db", str(db), "--out", str(tmp_path / "public"), "--config", config, "-q"],
        ["proxy", "backup", "--config", config, "--db", str(db), "--dest", str(tmp_path / "backups")],
        ["proxy", "keys", "--config", config, "--db", str(db), "list"],
    ]
    for command in commands:
        done = subprocess.run([sys.executable, "-m", *command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stderr)


def test_default_config_is_optional_any_other_must_exist(tmp_path, monkeypatch):
    from proxy.config import config_path

    monkeypatch.chdir(tmp_path)
    assert config_path(None) is None and config_path("config.yaml") is None
    (tmp_path / "config.yaml").write_text("report: {title: here}\n")
    assert config_path(None) == config_path("config.yaml") == Path("config.yaml")
    with pytest.raises(ConfigError, match="missing.yaml: file not found"):
        load_config(config_path("missing.yaml"))


@pytest.mark.parametrize(("breakdowns", "message"), [
    ("project", r"report\.breakdowns: expected a list"),
    (["project", "x\"y"], r"report\.breakdowns\[1\]: 'x\"y' is not a metadata key"),
    (["", "a"], r"report\.breakdowns\[0\]: '' is not a metadata key"),
    (["tags", "tags"], r"report\.breakdowns\[1\]: 'tags' is listed twice"),
])
def test_report_breakdowns_must_be_metadata_keys(breakdowns, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"report": {"breakdowns": breakdowns}}, env={})
    ok = parse_config({"report": {"breakdowns": ["project", "feature.v2", "env-name", "tags"]}}, env={})
    assert ok.report.breakdowns == ["project", "feature.v2", "env-name", "tags"]
