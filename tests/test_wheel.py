"""`pip install` of the built wheel, as an operator does it: a fresh virtualenv outside the
checkout, every dependency installed from the wheel's own metadata, and from an empty folder the
gateway (against the fake upstream of the installed package), `shin-report build` and
`shin-explore` — running only the installed files, never the checkout's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from proxy import __version__

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

#: What the build does not read; everything else of the checkout is copied, so the wheel is
#: built from a clean tree (no stale egg-info deciding what ships, nothing written into ROOT).
NOT_SOURCES_AT_TOP = {".git", ".venv", ".bench", "build", "dist", "public", "demo", "backups",
                      "tests", "bench", ".pytest_cache", ".ruff_cache"}
NOT_SOURCES = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.db", "*.db-*", "gateway.log*")


def not_sources(folder: str, names: list[str]) -> set[str]:
    top = NOT_SOURCES_AT_TOP if Path(folder) == ROOT else set()
    return top & set(names) | NOT_SOURCES(folder, names)


@dataclass
class Venv:
    root: Path
    site_packages: Path
    build_log: str
    wheel: Path

    def bin(self, name: str) -> str:
        return str(self.root / "bin" / name)


def clean_env() -> dict[str, str]:
    """No way back into the checkout: no PYTHONPATH, no active virtualenv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DATASETTE_")}


def run(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env={**clean_env(), **env}, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    base = tmp_path_factory.mktemp("wheel")
    source, dist, root = base / "source", base / "dist", base / "venv"
    shutil.copytree(ROOT, source, ignore=not_sources)
    # -v shows the build backend's own output (setuptools' warnings) indented under pip's.
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(dist),
                 str(source)], cwd=base)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("shin_gateway-*.whl")
    # A venv with no packages of its own; this pip installs the wheel and everything it
    # declares, skipping the .pyc compilation that would double the time.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    installed = run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                     "--no-compile", str(wheel)], cwd=base)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    [site_packages] = root.glob("lib/python3*/site-packages")
    return Venv(root, site_packages, built.stdout + built.stderr, wheel)


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


@contextmanager
def running(args: list[str], cwd: Path, banner: str) -> Iterator[str]:
    """Run a server until the `banner` regex (its URL as group 1) shows in its output."""
    log = cwd / f"{Path(args[0]).name}-{time.monotonic_ns()}.out"
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=cwd, env=clean_env(), stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            found = re.search(banner, log.read_text(errors="replace"))
            if found:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{args} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield found.group(1)
    finally:
        process.terminate()  # SIGTERM: the gateway flushes the request log before it exits
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_build_prints_no_warnings(venv: Venv):
    # pip's own notices start with "WARNING:" at the margin (e.g. a find-links folder of this
    # machine); everything else is ours, setuptools reading pyproject.toml and setup.py.
    ours = [line for line in venv.build_log.splitlines()
            if re.search("warn", line, re.I) and not line.startswith("WARNING: ")]
    assert ours == [], "\n".join(ours)


def test_the_wheel_carries_the_code_and_every_file_the_programs_read(venv: Venv):
    installed = {p.relative_to(venv.site_packages).as_posix()
                 for p in venv.site_packages.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}

    def shipped(folder: str, into: str) -> set[str]:
        return {f"{into}/{p.relative_to(ROOT / folder).as_posix()}"
                for p in (ROOT / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}

    for folder, into in (("proxy", "proxy"), ("sitegen", "sitegen"),
                         ("site_templates", "shin_gateway/site_templates"),
                         ("datasette", "shin_gateway/datasette")):
        assert shipped(folder, into) - installed == set(), f"{folder}/ is not all in the wheel"
    assert "shin_gateway/config.yaml" in installed
    assert {p.name for p in (venv.site_packages / "shin_gateway").iterdir()} == {
        "config.yaml", "site_templates", "datasette"}  # data only: no .py of the checkout's top
    assert {"proxy/logdb/migrations/0001_request_log.sql",
            "proxy/admin/migrations/0001_keys.sql"} <= installed
    licenses = venv.site_packages / f"shin_gateway-{__version__}.dist-info" / "licenses"
    assert (licenses / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()


def test_runs_from_the_installed_files_only(venv: Venv, empty: Path):
    probe = (
        "import json, sys, proxy, sitegen, sitegen.explore\n"
        "from proxy.resources import data_path\n"
        "print(json.dumps({'modules': [proxy.__file__, sitegen.__file__, sitegen.explore.__file__,"
        " str(data_path('site_templates')), str(data_path('datasette', 'plugins'))],"
        " 'path': sys.path}))\n"
    )
    answer = json.loads(run([venv.bin("python"), "-c", probe], cwd=empty).stdout)
    for path in answer["modules"]:
        assert Path(path).is_relative_to(venv.site_packages), path
    assert not any(entry and Path(entry).resolve().is_relative_to(ROOT) for entry in answer["path"])


def test_every_program_prints_the_version(venv: Venv, empty: Path):
    for script in ("shin-proxy", "shin-report", "shin-explore"):
        result = run([venv.bin(script), "--version"], cwd=empty)
        assert (result.returncode, result.stdout.strip()) == (0, f"{script} {__version__}")


def test_prints_the_example_config(venv: Venv, empty: Path):
    result = run([venv.bin("shin-proxy"), "example-config"], cwd=empty)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "config.yaml").read_text()


def test_gateway_report_and_explorer_from_an_empty_folder(venv: Venv, empty: Path):
    with running([venv.bin("python"), "-m", "proxy.fake_upstream", "--port", "0"], empty,
                 r"Running on (http://[\d.]+:\d+)") as upstream:
        (empty / "config.yaml").write_text(
            "model_list:\n"
            "  - model_name: gpt-4o-mini\n"
            "    litellm_params:\n"
            "      model: openai/gpt-4o-mini\n"
            f"      api_base: {upstream}/v1\n"
            "      api_key: sk-upstream\n"
        )
        with running([venv.bin("shin-proxy"), "serve", "--config", "config.yaml", "--port", "0"],
                     empty, r"Running on (http://[\d.]+:\d+)") as gateway:
            client = OpenAI(base_url=f"{gateway}/v1", api_key="sk-anything", max_retries=0)
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello from a wheel"}])
            assert reply.choices[0].message.content
            assert httpx.get(f"{gateway}/health").json()["version"] == __version__
    with sqlite3.connect(empty / "litellm.db") as db:
        assert db.execute("SELECT model, status_code FROM request_log").fetchall() == [
            ("gpt-4o-mini", 200)]

    # The report's "now" is whole seconds and its windows end before it: name the next second,
    # or a request logged in the second of the build is not in it yet.
    built = run([venv.bin("shin-report"), "build", "--db", "litellm.db", "--out", "site", "-q"],
                cwd=empty, SOURCE_DATE_EPOCH=str(int(time.time()) + 1))
    assert built.returncode == 0, built.stderr
    assert (empty / "site" / "index.html").is_file()
    usage = json.loads((empty / "site" / "data" / "usage_by_model.json").read_text())
    assert [(r["model"], r["requests"]) for r in usage["rows"]] == [("gpt-4o-mini", 1)], usage
    for asset in ("site.css", "site.js", "vendor/vega.min.js", "vendor/vega-lite.min.js"):
        assert (empty / "site" / "assets" / asset).read_bytes() == (
            ROOT / "site_templates" / "static" / asset).read_bytes()

    with running([venv.bin("shin-explore"), "--db", "litellm.db", "--port", "0"], empty,
                 r"Uvicorn running on (http://[\d.]+:\d+)") as explore:
        rows = httpx.get(f"{explore}/litellm/recent_requests.json",
                         params={"_shape": "array"}, timeout=30).json()
        assert [(r["model"], r["status_code"]) for r in rows] == [("gpt-4o-mini", 200)]
        plugins = {p["name"] for p in httpx.get(f"{explore}/-/plugins.json").json()}
        assert {"shin_readonly.py", "shin_access.py"} <= plugins

    with sqlite3.connect(empty / "keys.db") as keys:
        keys.execute("CREATE TABLE IF NOT EXISTS keys (key_hash TEXT)")
    refused = run([venv.bin("shin-explore"), "--db", "keys.db", "--port", "0"], cwd=empty,
                  timeout=60)
    assert refused.returncode != 0
    assert "never keys.db" in refused.stderr
