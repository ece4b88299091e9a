"""Runtime metadata for `make explore`: optional login, the link back to the report, and the
log's metadata for a log file served under another name.

Environment (read on every lookup, nothing is cached):
  DATASETTE_PASSWORD_HASH  a hash from `datasette hash-password`; when set, every page, query
                           and API call requires logging in at /-/login
  DATASETTE_USERNAME       the account name for that login (default: admin)
  DATASETTE_REPORT_URL     where the static report lives (default: the gateway's /ui)
"""

from __future__ import annotations

import copy
import os
import re

import click
from datasette.utils.asgi import Response

from datasette import hookimpl

PASSWORD_HASH_ENV = "DATASETTE_PASSWORD_HASH"
USERNAME_ENV = "DATASETTE_USERNAME"
REPORT_URL_ENV = "DATASETTE_REPORT_URL"
DEFAULT_USERNAME = "admin"
DEFAULT_REPORT_URL = "http://127.0.0.1:4000/ui"

#: metadata.yml describes the log under this name (the stem of litellm.db); the report's links
#: use it too.
LOG_DATABASE = "litellm"
INTERNAL_DATABASE = "_internal"

# datasette-auth-passwords finds accounts as "<username>_password_hash" keys, so the name must
# be a plain word; its hashes look like pbkdf2_sha256$<iterations>$<salt>$<hash>.
USERNAME_RE = re.compile(r"[A-Za-z0-9.@-]+")
PASSWORD_HASH_RE = re.compile(r"pbkdf2_sha256\$\d+\$[^$\s]+\$[^$\s]+")


def _login_username() -> str | None:
    """The account that must log in, or None when no password is configured."""
    if not os.environ.get(PASSWORD_HASH_ENV, "").strip():
        return None
    return os.environ.get(USERNAME_ENV, "").strip() or DEFAULT_USERNAME


@hookimpl
def get_metadata(datasette, key, database, table):
    extra: dict = {
        "about": "Monitoring report",
        "about_url": os.environ.get(REPORT_URL_ENV, "").strip() or DEFAULT_REPORT_URL,
    }
    username = _login_username()
    if username:
        actor = {"id": username}
        extra["allow"] = actor  # view-instance: every page, query, JSON and download route
        extra["allow_sql"] = actor  # belt and braces for ad-hoc SQL
        extra["plugins"] = {
            "datasette-auth-passwords": {
                # Resolved by Datasette at use: /-/metadata shows the variable name, not the hash.
                f"{username}_password_hash": {"$env": PASSWORD_HASH_ENV}
            }
        }
    # `make explore DB=backups/litellm-20240101.db` serves the log as /litellm-20240101: give it
    # the canned queries and column docs written for /litellm.
    local_databases = datasette._metadata_local.get("databases") or {}
    log_metadata = local_databases.get(LOG_DATABASE)
    if log_metadata:
        aliases = {
            name: copy.deepcopy(log_metadata)
            for name, db in datasette.databases.items()
            if name not in (LOG_DATABASE, INTERNAL_DATABASE)
            and not db.is_memory
            and name not in local_databases
        }
        if aliases:
            extra["databases"] = aliases
    return extra


@hookimpl
def startup(datasette):
    username = _login_username()
    if username is None:
        return
    if not USERNAME_RE.fullmatch(username):
        raise click.ClickException(
            f"{USERNAME_ENV}={username!r}: use letters, digits, '.', '@' or '-' only"
        )
    # Checked unstripped: datasette-auth-passwords uses the raw value, so stray whitespace would
    # make every login fail silently.
    if not PASSWORD_HASH_RE.fullmatch(os.environ[PASSWORD_HASH_ENV]):
        raise click.ClickException(
            f"{PASSWORD_HASH_ENV} must be a password hash, not the password itself: "
            "create one with `datasette hash-password` (installed beside shin-explore)"
        )


@hookimpl
def forbidden(datasette, request, message):
    # A browser that is not logged in goes to the login form; API clients keep the 403.
    if _login_username() and request.actor is None and not _wants_json(request):
        return Response.redirect(datasette.urls.path("/-/login"))


def _wants_json(request) -> bool:
    return request.path.endswith(".json") or request.args.get("_format") == "json"
