"""Sessions for the pages: a cookie holding the caller's token, CSRF checks, one-time codes.

The session cookie holds the token itself (HttpOnly, SameSite=Strict, Secure over https,
expiring with the token), not a server-side session id: every API worker process, on every
host, checks it with the same verifier as a bearer token, so a session needs no table, no
shared store, and cannot outlive its token or PATHWAY_JWT_MAX_HOURS. Signing out deletes the
cookie; a copy of it taken before then stays usable until the token expires, exactly as a
copied bearer token does.

State-changing requests that authenticate with the cookie must carry ``X-CSRF-Token`` equal
to the (readable, random) CSRF cookie, and an ``Origin`` of this very host: a cross-site page
can do neither (and SameSite=Strict keeps the cookie off its requests in the first place).
Where the browser says where a request comes from (``Sec-Fetch-Site``), that is the check;
``Origin`` otherwise.

``pathway token --link`` leaves a one-time code in ``<data_dir>/signin-codes`` (the file
named by the code's SHA-256, holding the token, private to the service's user); opening
``/signin/once/<code>`` takes it exactly once (an atomic rename) within a few minutes and
signs in, so no token ever appears in an address. The command and the service must share
the data folder: it is for local use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import jwt
from starlette.requests import Request
from starlette.responses import Response

from .settings import ApiSettings

SESSION_COOKIE = "pathway_session"
CSRF_COOKIE = "pathway_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CODE_SECONDS = 300
"""How long a one-time sign-in code lasts."""


class CrossSite(Exception):
    """A state-changing request on the session cookie that this site's pages did not send."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def session_token(request: Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE, "").strip()
    return token or None


def token_expiry(token: str) -> int:
    """The token's ``exp`` (already checked by the verifier), for the cookie's lifetime."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return int(claims["exp"])


def start_session(response: Response, request: Request, token: str) -> None:
    """Set the session and CSRF cookies, both expiring with the token."""
    max_age = max(0, token_expiry(token) - int(time.time()))
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=False,  # the pages read it and send it back as X-CSRF-Token
        samesite="strict",
    )


def end_session(response: Response) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")


def same_origin(request: Request) -> bool:
    """The request says it comes from a page of this host. A browser's ``Sec-Fetch-Site``
    decides where there is one (it must be same-origin): under ``Referrer-Policy:
    no-referrer`` browsers send ``Origin: null`` even from the site's own forms. Without it
    (an older browser, another client), an ``Origin`` naming the host the request was sent
    to."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def check_csrf(request: Request, *, form_value: str | None = None) -> None:
    """Raise CrossSite unless a state-changing request is from this site's own pages."""
    if not same_origin(request):
        raise CrossSite("refused: the request does not come from this site's pages")
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = request.headers.get(CSRF_HEADER) or form_value or ""
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CrossSite("refused: the X-CSRF-Token header does not match the session's")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this site (``/cases/…``), else the worklist.
    Nothing with a scheme, a host (``//evil``), a backslash or a control character."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _codes(settings: ApiSettings) -> Path:
    folder = settings.data_dir / "signin-codes"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _name(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create_code(settings: ApiSettings, token: str) -> str:
    """Leave a one-time sign-in code for ``token``; return the code."""
    folder = _codes(settings)
    now = time.time()
    for old in folder.iterdir():  # sweep the ones never used
        try:
            if old.stat().st_mtime < now - CODE_SECONDS:
                old.unlink()
        except OSError:
            pass
    code = secrets.token_urlsafe(32)
    fd = os.open(folder / _name(code), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"token": token, "expires": now + CODE_SECONDS}, out)
    return code


def redeem_code(settings: ApiSettings, code: str) -> str | None:
    """The token a code was left for, once: the code is gone afterwards (also when it had
    expired). None for a code unknown, used or expired."""
    if not code or len(code) > 100:
        return None
    folder = _codes(settings)
    path = folder / _name(code)
    taken = folder / f"{path.name}.taken-{secrets.token_hex(8)}"
    try:
        path.rename(taken)  # atomic: of two requests with the code, one gets it
    except OSError:
        return None
    try:
        record = json.loads(taken.read_text())
    except (OSError, ValueError):
        return None
    finally:
        taken.unlink(missing_ok=True)
    if not isinstance(record, dict) or float(record.get("expires", 0)) < time.time():
        return None
    token = record.get("token")
    return token if isinstance(token, str) else None
