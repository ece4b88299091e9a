"""`make demo` end to end, CI-sized: the real gateway and fake upstream as processes, keys made
through /key/generate, history through LogWriter, SDK traffic, then the site build on the result."""

from __future__ import annotations

import importlib.util
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from proxy.logdb.record import utc_timestamp

ROOT = Path(__file__).resolve().parent.parent


def _urls(output: str) -> list[str]:
    return re.findall(r"^(?:fake upstream|gateway)\s+(http://[\d.]+:\d+)", output, re.M)


def _refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/health", timeout=2)
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, ConnectionRefusedError)
    return False


def make_demo_commands(folder: Path, out: Path) -> list[list[str]]:
    """The commands `make demo` runs (CI-sized), as the Makefile prints them."""
    printed = subprocess.run(["make", "-s", "-n", "demo", f"DEMO_DIR={folder}", "DEMO_ARGS=--quick",
                              f"OUT={out}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [shlex.split(line) for line in printed.splitlines()
            if " -m proxy.demo " in line or " -m sitegen build " in line]


def test_make_demo_runs_end_to_end_and_the_site_builds(tmp_path: Path) -> None:
    folder, public = tmp_path / "demo", tmp_path / "public"
    demo_command, site_command = make_demo_commands(folder, public)
    started = time.time()
    run = subprocess.run(demo_command, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stdout + run.stderr
    urls = _urls(run.stdout)
    assert len(urls) == 2 and all(_refused(u) for u in urls)  # everything it started has stopped
    assert "every process the demo started has stopped" in run.stdout

    db = folder / "litellm.db"
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        history = conn.execute("SELECT COUNT(*), MIN(timestamp) FROM request_log WHERE request_id LIKE 'hist-%'").fetchone()
        live = conn.execute("SELECT * FROM request_log WHERE request_id NOT LIKE 'hist-%'").fetchall()
        same_key = conn.execute(
            "SELECT COUNT(DISTINCT key_hash) FROM request_log WHERE key_alias = 'team-web'").fetchone()[0]
    finally:
        conn.close()
    assert history[0] == 600 and history[1] < time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * 86400))
    assert len(live) == 40  # every live request logged exactly once, failures included
    statuses = {row["status_code"] for row in live}
    assert 200 in statuses and statuses & {401, 403, 404, 429, 503, 504}
    assert any(row["stream"] for row in live) and any(row["endpoint"] == "/v1/embeddings" for row in live)
    assert min(row["timestamp"] for row in live) >= utc_timestamp(started)  # today's, sent now
    if "skipped" not in run.stdout.split("virtual keys", 1)[1].splitlines()[0]:
        # History rows carry the hashes of the keys made through /key/generate.
        assert same_key == 1
        assert (folder / "keys.db").exists()
    log = (folder / "gateway.log").read_text()
    assert "proxy.access" in log and "request log flushed" in log
    assert "sk-demo-master" not in log  # never a key in the log

    if importlib.util.find_spec("sitegen") is None:
        pytest.skip("sitegen is not installed")
    site = subprocess.run(site_command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert site.returncode == 0, site.stdout + site.stderr
    assert (public / "index.html").stat().st_size > 0


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "proxy.demo", "--dir", str(tmp_path / "demo"), "--days", "2",
         "--rows", "200", "--requests", "100000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # wait until live traffic is flowing through both children
            seen += line
            if line.startswith("history"):
                break
        time.sleep(0.5)
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    urls = _urls(seen)
    assert len(urls) == 2, seen + err
    assert demo.returncode == 130, err
    assert "every process it started has been stopped" in err
    assert all(_refused(u) for u in urls)


def test_demo_never_replaces_a_database_outside_its_folder(tmp_path: Path) -> None:
    precious = tmp_path / "litellm.db"
    precious.write_bytes(b"production data")
    run = subprocess.run([sys.executable, "-m", "proxy.demo", "--quick", "--dir", str(tmp_path / "demo"),
                          "--db", str(precious)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "will not replace it" in run.stderr
    assert precious.read_bytes() == b"production data"
