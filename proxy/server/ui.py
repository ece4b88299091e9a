"""`/ui`: the built static report (public/), behind HTTP basic auth when credentials are set.

The report uses relative links only, so it must be served from a folder URL: `/ui` redirects to
`/ui/`. Every path is resolved and checked to stay inside the site folder (no `..`, no
dotfiles, no symlinks leading out). HTML and data files are revalidated on each visit (cron
rebuilds them); the vendored JavaScript and CSS may be cached for a day.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

REALM = "Shin Gateway report"
#: Vega compiles its expressions with Function(), hence 'unsafe-eval'; inline scripts stay
#: forbidden, so even an unescaped string could not run.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'self'"
)
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


def setup_ui(
    app: web.Application, site_dir: Path, username: str | None, password: str | None
) -> None:
    """Serve `site_dir` at /ui/ (basic auth when a username or password is configured)."""
    app[UI_SETTINGS] = UiSettings(Path(site_dir), username or None, password or None)
    app.router.add_get("/ui", _redirect_to_folder)
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
            status=503, text=NOT_BUILT, content_type="text/html", headers=_headers(False, settings)
        )
    target = _resolve(root, relative)
    if target is not None and target.is_dir():
        if relative and not relative.endswith("/"):
            raise web.HTTPFound(f"/ui/{relative}/")  # relative links need the trailing slash
        target = target / "index.html"
    if target is None or not target.is_file():
        raise web.HTTPNotFound(text="Not found.\n")
    static = relative.startswith("assets/") and target.suffix in {".js", ".css"}
    return web.FileResponse(target, headers=_headers(static, settings))


def _headers(static: bool, settings: UiSettings) -> dict[str, str]:
    scope = "private" if settings.protected else "public"
    return {
        "Cache-Control": f"{scope}, max-age=86400" if static else f"{scope}, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": CSP,
    }
