"""The web pages: static HTML shells and the bundled assets, built on the JSON API.

A page is a shell (``web/pages``) whose script module (``web/static/dist``, bundled by
``web/build.mjs``) calls the JSON routes with the session cookie: there is no second path
into the engine. ``/`` and ``/cases/{id}`` answer HTML only to a browser (``Accept``
preferring text/html to JSON); an API client gets the JSON routes as before, so the links
sent in reminders open the case page. Sign-in, sign-out and the sessions: ``sessions``.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import Role

from . import sessions
from .auth import AuthError, Principal, TokenVerifier
from .settings import ApiSettings

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds the strict policy to every answer (pages, assets and JSON alike): scripts only
    from this site and none inline, no framing, no referrer, no sniffing of types."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name.decode()] = value.decode()
            await send(message)

        await self.app(scope, receive, send_with_headers)


def web_root() -> Path:
    """The ``web`` folder: the checkout's, or the wheel's (a namespace package, like bpmn)."""
    spec = importlib.util.find_spec("web")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if (Path(location) / "pages").is_dir():
            return Path(location)
    raise RuntimeError("the web folder (pages and assets) is not installed")


_HASHED = re.compile(r"-[A-Z0-9]{8}\.[a-z0-9]+$")


class Assets(StaticFiles):
    """The bundled assets: a hashed name never changes content, so it is cached for a year;
    anything else is checked again each time."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        path = str(args[0]) if args else ""
        if _HASHED.search(path):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def static_files() -> Assets:
    try:
        folder = web_root() / "static"
    except RuntimeError:
        folder = Path("web/static")
    return Assets(directory=folder, check_dir=False)


class NotBuilt(Exception):
    """The assets were never built (``make install`` builds them)."""


@lru_cache(maxsize=1)
def _manifest() -> dict[str, Any]:
    """An entry's name to its file, and under ``imports`` a script to the chunks it imports."""
    path = web_root() / "static" / "dist" / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except OSError:
        raise NotBuilt() from None
    return manifest


_SCRIPT = re.compile(r'<script type="module" src="\{\{asset:([\w.-]+)\}\}"></script>')


@lru_cache(maxsize=8)
def _shell(name: str) -> str:
    """A page's HTML with its header and asset addresses in place (read once). A script's
    chunks are named before it (modulepreload): fetched with it, not once it has run."""
    root = web_root() / "pages"
    text = (root / f"{name}.html").read_text()
    text = text.replace("{{header}}", (root / "_header.html").read_text().strip())
    manifest = _manifest()

    def address(file: str) -> str:
        return f"/static/dist/{quote(file)}"

    def preloaded(match: re.Match[str]) -> str:
        chunks = manifest.get("imports", {}).get(match.group(1), [])
        links = [f'<link rel="modulepreload" href="{address(chunk)}">\n' for chunk in chunks]
        return "".join(links) + match.group(0)

    text = _SCRIPT.sub(preloaded, text)
    return re.sub(r"\{\{asset:([\w.-]+)\}\}", lambda m: address(manifest[m.group(1)]), text)


_CHANGE_BLOCK = re.compile(r"<!--change-->.*?<!--/change-->", re.S)


def render(
    name: str, *, status: int = 200, error: str = "", can_change: bool = True, **values: str
) -> HTMLResponse:
    """A page, its ``{{name}}`` placeholders filled with escaped text. Without
    ``can_change`` the page's ``<!--change-->`` blocks (actions that change definitions)
    are left out."""
    try:
        text = _shell(name)
        if not can_change:
            text = _CHANGE_BLOCK.sub("", text)
    except NotBuilt:
        return HTMLResponse(
            "<!doctype html><title>Pathway</title><p>The pages' assets are not built: run "
            "<code>make install</code> (web/build.mjs).</p>",
            status_code=503,
        )
    values["error"] = error
    for key, value in values.items():
        replacement = html.escape(value, quote=True)
        if key == "error" and value:
            replacement = f'<p class="error" role="alert">{replacement}</p>'
        text = text.replace("{{" + key + "}}", replacement)
    return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


def prefers_html(accept: str) -> bool:
    """Whether an Accept header ranks HTML above JSON (a browser's does; ``*/*``, an API
    client's default, and a tie go to JSON, as before the pages)."""
    best_html = best_json = 0.0
    for part in accept.split(",")[:50]:
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            if param.lower().startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, quality)
        elif media in ("application/json", "application/problem+json", "application/*", "*/*"):
            best_json = max(best_json, quality)
    return best_html > best_json


class BrowserRoute(APIRoute):
    """A route taken only by a browser asking for HTML; any other request goes on to the
    JSON route at the same path, untouched."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        accept = dict(scope.get("headers") or ()).get(b"accept", b"").decode("latin-1")
        if not prefers_html(accept):
            return Match.NONE, {}
        return match, child


router = APIRouter(include_in_schema=False)
browser = APIRouter(include_in_schema=False, route_class=BrowserRoute)


def _signed_in(request: Request) -> Principal | None:
    token = sessions.session_token(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    try:
        return verifier.verify(token)
    except AuthError:
        return None


def _to_signin(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/signin?next={quote(here, safe='/')}", status_code=303)
    if sessions.session_token(request) is not None:
        sessions.end_session(response)  # expired or no longer valid
    return response


def _page(request: Request, name: str, *, changed_by: frozenset[Role] | None = None) -> Response:
    """A page for the signed-in caller; with ``changed_by``, its change blocks only for
    those roles (and admins)."""
    caller = _signed_in(request)
    if caller is None:
        return _to_signin(request)
    settings: ApiSettings = request.app.state.settings
    return render(
        name,
        can_change=changed_by is None or caller.has_any(changed_by),
        sub=caller.sub,
        csrf=request.cookies.get(sessions.CSRF_COOKIE, ""),
        timezone=settings.timezone,
        roles=" ".join(sorted(str(role) for role in caller.roles)),
    )


@browser.get("/")
def worklist_page(request: Request) -> Response:
    """The worklist: the caller's queue, most urgent first."""
    return _page(request, "worklist")


@browser.get("/cases/{case_id}")
def case_page(request: Request) -> Response:
    """A case: its diagram with the case's position, the step forms, timeline and record."""
    return _page(request, "case")


@router.get("/modeler")
def modeler_page(request: Request) -> Response:
    """The modeler: pathways and their versions, the diagram editor and, for modelers and
    admins, validation, the diff, deployment and migrations (others only read)."""
    return _page(request, "modeler", changed_by=frozenset({Role.MODELER}))


@router.get("/signin")
def signin_page(request: Request) -> Response:
    return render("signin", next=sessions.safe_next(request.query_params.get("next")))


def _refused(detail: str) -> Response:
    return render("signin", status=403, error=detail, next="/")


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Sign in with a token pasted into the form: the session cookie, then the next page."""
    if not sessions.same_origin(request):
        return _refused("Sign in from this site's own sign-in page.")
    form = await request.form()
    token, wanted = form.get("token"), form.get("next")
    next_page = sessions.safe_next(wanted if isinstance(wanted, str) else None)
    token = token.strip() if isinstance(token, str) else ""
    verifier: TokenVerifier = request.app.state.verifier
    try:
        verifier.verify(token)
    except AuthError as exc:
        return render("signin", status=401, error=f"Not signed in: {exc.detail}.", next=next_page)
    response = RedirectResponse(next_page, status_code=303)
    sessions.start_session(response, request, token)
    return response


@router.get("/signin/once/{code}")
def signin_once_page(code: str) -> Response:
    """The page of a one-time sign-in address: a button, since opening an address (a link
    preview, say) must not use the code up."""
    return render("signin-once")


@router.post("/signin/once/{code}")
def signin_once(request: Request, code: str) -> Response:
    """Exchange a one-time code (``pathway token --link``) for the session."""
    if not sessions.same_origin(request):
        return _refused("Sign in from this site's own sign-in page.")
    settings: ApiSettings = request.app.state.settings
    token = sessions.redeem_code(settings, code)
    verifier: TokenVerifier = request.app.state.verifier
    try:
        if token is None:
            raise AuthError("this sign-in address was used already or has expired")
        verifier.verify(token)
    except AuthError as exc:
        return render("signin", status=401, error=f"Not signed in: {exc.detail}.", next="/")
    response = RedirectResponse("/", status_code=303)
    sessions.start_session(response, request, token)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End the session: both cookies go."""
    form = await request.form()
    given = form.get("csrf")
    try:
        sessions.check_csrf(request, form_value=given if isinstance(given, str) else None)
    except sessions.CrossSite as exc:
        return render("signin", status=403, error=exc.detail, next="/")
    response = RedirectResponse("/signin", status_code=303)
    sessions.end_session(response)
    return response
