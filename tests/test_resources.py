"""The files the programs read beside their code (proxy.resources) in the editable install the
tests run in, and what each program says when an installation lacks them. The installed wheel
is tested in test_wheel.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proxy import cli as proxy_cli
from proxy import resources
from sitegen import cli as sitegen_cli
from sitegen import explore
from tests.site_fixtures import empty_db

ROOT = Path(__file__).resolve().parent.parent


def test_an_editable_install_reads_the_checkout():
    assert resources.data_path("site_templates") == ROOT / "site_templates"
    assert resources.data_path("datasette", "metadata.yml") == ROOT / "datasette" / "metadata.yml"
    assert resources.example_config() == (ROOT / "config.yaml").read_text()


def test_explore_runs_the_shipped_read_only_setup():
    args = explore.datasette_args(Path("litellm.db"), "127.0.0.1", 8001)
    assert args[:2] == ["serve", "litellm.db"]
    assert args[args.index("--metadata") + 1] == str(ROOT / "datasette" / "metadata.yml")
    assert args[args.index("--plugins-dir") + 1] == str(ROOT / "datasette" / "plugins")
    assert "--immutable" not in args and "-i" not in args


@pytest.fixture
def missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation without its data files (a partial copy, a broken wheel)."""
    monkeypatch.setattr(resources, "DATA_PACKAGE", "shin_gateway_not_installed")


def test_a_missing_file_names_itself(missing):
    with pytest.raises(resources.MissingResource, match="site_templates not found .* reinstall"):
        resources.data_path("site_templates")


def test_report_says_the_install_is_incomplete(missing, tmp_path: Path, capsys):
    db = empty_db(tmp_path / "litellm.db")
    status = sitegen_cli.main(["build", "--db", str(db), "--out", str(tmp_path / "site"), "-q"])
    assert status == 1
    assert "site_templates not found" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


def test_explore_says_the_install_is_incomplete(missing, tmp_path: Path, capsys):
    db = tmp_path / "litellm.db"
    sqlite3.connect(db).close()
    assert explore.main(["--db", str(db)]) == 1
    assert "metadata.yml not found" in capsys.readouterr().err


def test_example_config_says_the_install_is_incomplete(missing, capsys):
    assert proxy_cli.main(["example-config"]) == 1
    assert "config.yaml not found" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["missing.db", "."])
def test_explore_wants_a_database_file(tmp_path: Path, capsys, name):
    # A folder would make Datasette serve every database in it, keys.db included.
    assert explore.main(["--db", str(tmp_path / name)]) == 2
    assert "no such database file" in capsys.readouterr().err
