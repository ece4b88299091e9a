"""`make explore` with a login configured (DATASETTE_PASSWORD_HASH): every route needs it, the
datasette-auth-passwords form grants it, and even a logged-in user cannot write.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.datasette_harness import (
    METADATA,
    REPO,
    Server,
    clean_env,
    count_rows,
    explore_command,
    log_in,
    rows,
    run_to_exit,
    running_log,
    start,
    stop,
)

PASSWORD = "correct horse battery staple"
# Served under another name, as `make explore DB=backups/litellm-20240101.db` would.
DB_NAME = "litellm-20240101"


def hash_password(password: str) -> str:
    """The way the README tells users to make the hash."""
    return subprocess.run(
        [str(REPO / ".venv/bin/datasette"), "hash-password", "--no-confirm"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def backup(tmp_path_factory) -> Iterator[Path]:
    with running_log(tmp_path_factory.mktemp("guarded") / f"{DB_NAME}.db") as log:
        yield log.path


@pytest.fixture(scope="module")
def guarded(backup) -> Iterator[Server]:
    # A write query planted in the metadata, as a careless edit or a plugin could.
    metadata = yaml.safe_load(METADATA.read_text())
    metadata["databases"]["litellm"]["queries"]["planted_delete"] = {
        "sql": "DELETE FROM request_log",
        "write": True,
    }
    planted = backup.with_name("metadata.yml")
    planted.write_text(yaml.safe_dump(metadata))
    command = [*explore_command(backup), "--metadata", str(planted)]
    env = clean_env(
        DATASETTE_PASSWORD_HASH=hash_password(PASSWORD),
        DATASETTE_USERNAME="ops",
        DATASETTE_REPORT_URL="https://reports.example/shin/",
    )
    server = start(command, env, backup.with_name("datasette.log"))
    yield server
    stop(server)


GUARDED_PATHS = (
    "/",
    f"/{DB_NAME}",
    f"/{DB_NAME}.json",
    f"/{DB_NAME}/request_log.json",
    f"/{DB_NAME}/usage_by_model.json?days=30",
    f"/{DB_NAME}.json?sql=select+1",
    f"/{DB_NAME}.db",
    "/-/metadata.json",
    "/-/databases.json",
)


@pytest.mark.parametrize("path", GUARDED_PATHS)
def test_login_is_required_everywhere(guarded, path):
    response = httpx.get(guarded.url + path, follow_redirects=False)
    if path.endswith(".json") or ".json?" in path:
        assert response.status_code == 403
    else:  # a browser is sent to the login form
        assert response.status_code == 302
        assert response.headers["location"] == "/-/login"


def test_wrong_password_is_refused(guarded):
    with log_in(guarded.url, "ops", "not the password") as client:
        assert "ds_actor" not in client.cookies
        assert client.get(f"/{DB_NAME}.json").status_code == 403


def test_logged_in_user_gets_everything(guarded):
    with log_in(guarded.url, "ops", PASSWORD) as client:
        assert "ds_actor" in client.cookies
        # The canned queries follow the log to its other name.
        assert rows(client, f"/{DB_NAME}/usage_by_model.json", days=30)
        assert rows(client, f"/{DB_NAME}/todays_stats.json")
        assert 'href="https://reports.example/shin/"' in client.get("/").text
        metadata = client.get("/-/metadata.json").text
        assert "pbkdf2_sha256" not in metadata and "DATASETTE_PASSWORD_HASH" in metadata
        assert client.get(f"/{DB_NAME}.db").status_code == 403


def test_query_only_stops_a_planted_write_query(guarded, backup):
    before = count_rows(backup)
    with log_in(guarded.url, "ops", PASSWORD) as client:
        page = client.get(f"/{DB_NAME}/planted_delete")
        assert page.status_code == 200
        token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
        response = client.post(
            f"/{DB_NAME}/planted_delete",
            data={"csrftoken": token, "_json": "1"},
        )
    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert "readonly" in response.json()["message"]
    assert count_rows(backup) == before > 0


def test_refuses_a_plain_text_password(backup):
    env = clean_env(DATASETTE_PASSWORD_HASH=PASSWORD)
    result = run_to_exit(explore_command(backup), env)
    assert result.returncode != 0
    assert "datasette hash-password" in result.stderr
    assert PASSWORD not in result.stderr
