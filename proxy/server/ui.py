"""`/ui`: the built static report (public/), behind HTTP basic auth when credentials are set.

The report uses relative links only, so it must be served from a folder URL: `/ui` redirects to
`/ui/`. Every path is resolved and checked to stay inside the site folder (no `..`, no
dotfiles, no symlinks leading out). HTML and data files are revalidated on each visit (cron
rebuilds them), and so are scripts and styles, which change with the gateway (a 304 when not).

Only here, not on file:// or a static host, the Models and Keys pages offer admin actions:
their script asks `_gateway` (beside the pages; only this handler answers it) whether a gateway
serves them, then signs in at `_gateway/session` (ui_session.py) and calls the admin API with
the token as a Bearer header. Every response carries a strict Content-Security-Policy: scripts
from the site only, none inline, no eval (charts use Vega's interpreter), nothing remote.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .. import __version__
from ..errors import AuthError, BadRequest
from ..settings import GeneralSettings
from ..state import CONFIG, MASTER
from .ui_session import UiSessions

log = logging.getLogger("proxy.auth")

REALM = "Shin Gateway report"
#: Scripts only from the site, never inline, never eval (Vega draws with its interpreter); so
#: even an unescaped string could not run. Styles allow inline attributes: Vega sets them on
#: the SVG it draws. The admin API is same-origin (connect-src 'self'); nothing is remote.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: What the page's script looks for to know a gateway serves it (and offers sign-in).
MARKER = "shin-gateway"
NOT_BUILT = (
    "<!doctype html><meta charset=utf-8><title>Report not built</title>"
    "<p>The monitoring report has not been built yet. Run <code>make report</code> "
    "(or <code>python -m sitegen build</code>) to create it.</p>\n"
)


@dataclass(frozen=True)
class UiSettings:
    site_dir: Path
    username: str | None
    password: str | None

    @property
    def protected(self) -> bool:
        return bool(self.username or self.password)


UI_SETTINGS: web.AppKey[UiSettings] = web.AppKey("ui_settings", UiSettings)
UI_SESSIONS: web.AppKey[UiSessions] = web.AppKey("ui_sessions", UiSessions)


def setup_ui(
    app: web.Application, site_dir: Path, username: str | None, password: str | None
) -> None:
    """Serve `site_dir` at /ui/ (basic auth when a username or password is configured), and the
    sign-in of its admin actions."""
    app[UI_SETTINGS] = UiSettings(Path(site_dir), username or None, password or None)
    general = app[CONFIG].general if CONFIG in app else GeneralSettings()
    sessions = UiSessions(general.master_key, username, password, general.ui_session_seconds)
    app[UI_SESSIONS] = sessions
    if MASTER in app:  # the report alone (tests) has no gateway behind it
        app[MASTER].accept_sessions(sessions.verify)
    app.router.add_get("/ui", _redirect_to_folder)
    app.router.add_get("/ui/_gateway", _gateway_info)
    app.router.add_post("/ui/_gateway/session", _sign_in)
    app.router.add_get("/ui/{path:.*}", _serve)


def _authorized(request: web.Request, settings: UiSettings) -> bool:
    if not settings.protected:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, password = decoded.partition(":")
    if not sep:
        return False
    # Compare both, always, in constant time: no early exit reveals which one was wrong.
    user_ok = hmac.compare_digest(user.encode(), (settings.username or "").encode())
    password_ok = hmac.compare_digest(password.encode(), (settings.password or "").encode())
    return user_ok and password_ok


def _challenge() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text="Authentication required for the report.\n",
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
    )


async def _redirect_to_folder(request: web.Request) -> web.StreamResponse:
    settings = request.app[UI_SETTINGS]
    if not _authorized(request, settings):
        raise _challenge()
    location = "/ui/" + (f"?{request.query_string}" if request.query_string else "")
    raise web.HTTPFound(location)


def _resolve(root: Path, relative: str) -> Path | None:
    """The file `relative` names inside `root`, or None when it would leave it or is hidden."""
    parts = [p for p in relative.split("/") if p]
    if any(p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    try:
        base = root.resolve(strict=True)
        target = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if target != base and not target.is_relative_to(base):
        return None
    return target


async def _serve(request: web.Request) -> web.StreamResponse:
    settings = request.app[UI_SETTINGS]
    if not _authorized(request, settings):
        raise _challenge()
    relative = request.match_info["path"]
    root = settings.site_dir
    if not (root / "index.html").is_file():
        return web.Response(
            status=503, text=NOT_BUILT, content_type="text/html", headers=_headers(settings)
        )
    target = _resolve(root, relative)
    if target is not None and target.is_dir():
        if relative and not relative.endswith("/"):
            raise web.HTTPFound(f"/ui/{relative}/")  # relative links need the trailing slash
        target = target / "index.html"
    if target is None or not target.is_file():
        raise web.HTTPNotFound(text="Not found.\n")
    # Everything is revalidated (a 304 while unchanged): scripts, styles and even the vendored
    # bundles keep their names across upgrades, and a page must never run yesterday's script
    # against today's API.
    return web.FileResponse(target, headers=_headers(settings))


async def _gateway_info(request: web.Request) -> web.Response:
    """The marker: a gateway serves these pages; how to sign in to their actions."""
    settings = request.app[UI_SETTINGS]
    if not _authorized(request, settings):
        raise _challenge()
    sessions = request.app[UI_SESSIONS]
    body = {
        "gateway": MARKER,
        "version": __version__,
        "open": request.app[MASTER].open if MASTER in request.app else False,  # no master key: the admin API needs no sign-in
        "sign_in": {"master_key": sessions.enabled, "password": sessions.passwords},
        "session_seconds": sessions.lifetime,
    }
    return web.json_response(body, headers=_api_headers())


async def _sign_in(request: web.Request) -> web.Response:
    """{"master_key"} or {"username", "password"} -> {"token", "expires_at"} (401 otherwise)."""
    settings = request.app[UI_SETTINGS]
    if not _authorized(request, settings):
        raise _challenge()
    try:
        data = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Send a JSON object: {\"master_key\": ...} or {\"username\", \"password\"}.") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise BadRequest("Send a JSON object of strings: {\"master_key\"} or {\"username\", \"password\"}.")
    sessions = request.app[UI_SESSIONS]
    if not sessions.enabled:
        raise BadRequest("This gateway has no master key: its admin API is open, there is nothing to sign in to.")
    session = sessions.sign_in(master_key=data.get("master_key"), username=data.get("username"),
                               password=data.get("password"))
    if session is None:
        raise AuthError("Sign-in failed: wrong master key, or wrong ui_username/ui_password.")
    log.info("ui sign-in: %s from %s, session until %d", session.subject, request.remote, session.expires_at)
    return web.json_response({"token": session.token, "expires_at": session.expires_at,
                              "signed_in_as": session.subject}, headers=_api_headers())


def _api_headers() -> dict[str, str]:
    return {**HARDENING, "Cache-Control": "no-store", "Content-Security-Policy": CSP}


#: Sent with every /ui response.
HARDENING = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def _headers(settings: UiSettings) -> dict[str, str]:
    scope = "private" if settings.protected else "public"
    return {
        **HARDENING,
        "Cache-Control": f"{scope}, no-cache",
        "Content-Security-Policy": CSP,
        "X-Shin-Gateway": MARKER,  # gateway.js: a gateway serves this page, actions may show
    }
