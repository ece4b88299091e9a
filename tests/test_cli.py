"""`python -m proxy serve` as a process: start-up errors, --help, and SIGTERM/SIGINT flushing."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import openai
import pytest
import yaml

from .conftest import MASTER_KEY
from .processes import ROOT, start, stop


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proxy", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_help_has_examples():
    done = run_cli("serve", "--help")
    assert done.returncode == 0
    assert "examples:" in done.stdout and "--config" in done.stdout and "--db" in done.stdout


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/a", "timeout": "soon"}}]},
         "model_list[0].litellm_params.timeout: expected a number"),
        ({"general_settings": {"master_key": "os.environ/SHIN_TEST_UNSET_VAR"}},
         "general_settings.master_key: environment variable SHIN_TEST_UNSET_VAR is not set"),
        ({"litellm_settings": {"budget_duration": "fortnight"}}, "litellm_settings.budget_duration"),
        ({"model_list": [{"model_name": "a", "litellm_params": {}}]}, "model_list[0].litellm_params.model: required"),
    ],
)
def test_bad_config_stops_start_up_with_one_line(tmp_path, config, expected):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_cli("serve", "--config", str(path), "--port", "0", "--db", str(tmp_path / "x.db"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr


def test_unknown_keys_warn_but_start(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"general_settings": {"log_file": None, "colour": "teal"}, "frobnicate": 1}))
    proc, url = start(["proxy", "serve", "--config", str(path), "--port", "0", "--db", str(tmp_path / "x.db")], tmp_path / "out.log")
    try:
        text = (tmp_path / "out.log").read_text()
        assert "unknown key general_settings.colour" in text and "unknown key 'frobnicate'" in text
        assert "NO MASTER KEY CONFIGURED" in text
    finally:
        assert stop(proc) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_flushes_every_row(tmp_path, sig):
    upstream, upstream_url = start(["proxy.fake_upstream", "--port", "0"], tmp_path / "fake.log")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream_url + "/v1"}}],
        "general_settings": {"master_key": MASTER_KEY},
    }))
    db = tmp_path / "litellm.db"
    log_file = tmp_path / "gateway.log"
    gateway, url = start(["proxy", "serve", "--config", str(config), "--port", "0", "--db", str(db), "--log-file", str(log_file)], tmp_path / "gw.out")
    try:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0)
        for i in range(30):
            await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}], stream=i % 3 == 0)
        await client.close()
        gateway.send_signal(sig)
        assert gateway.wait(30) == 0
    finally:
        stop(gateway)
        stop(upstream)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*), SUM(status_code = 200) FROM request_log").fetchone() == (30, 30)
    conn.close()
    assert "request log flushed: 30 rows written" in log_file.read_text()


def test_settings_lists_every_setting_with_help():
    from dataclasses import fields

    from proxy.settings import SECTIONS

    done = run_cli("settings")
    assert done.returncode == 0
    for section, cls in SECTIONS.items():
        assert f"{section}:" in done.stdout
        for f in fields(cls):
            # A free-form section (model_info, extra litellm_params) is listed as "<any other key>".
            name = "<any other key>" if f.metadata.get("extra") else f"{f.name}: "
            assert f"  {name}" in done.stdout and f.metadata["help"] in done.stdout
