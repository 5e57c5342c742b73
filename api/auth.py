"""Bearer tokens: who is calling and in which roles.

Tokens are JWTs with ``sub`` (the person, written into the audit log) and ``roles`` (from
coordinator, clinician, modeler, admin). By default they are signed with HS256 and
``PATHWAY_JWT_SECRET``; a hospital identity provider's RS256 keys can be configured instead
with ``PATHWAY_JWT_JWKS`` (a JWKS file or URL).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from engine import CARE_ROLES, Role, identifier_problem

from . import sessions
from .settings import ApiSettings

log = logging.getLogger(__name__)

# The roles by name, to check strings from a token or the command line against (membership
# of a plain string in the enum class itself is a TypeError before Python 3.12).
_ROLE_NAMES = frozenset(Role)
MAX_SUB = 200
"""The longest ``sub``: the width of the audit log's actor column."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    sub: str
    roles: frozenset[Role]

    def has_any(self, roles: frozenset[Role]) -> bool:
        """Tell whether the caller holds one of the roles (admin holds them all)."""
        return Role.ADMIN in self.roles or bool(self.roles & roles)


class AuthError(Exception):
    """The request carries no usable token (401)."""

    def __init__(self, detail: str, *, error: str = "invalid_token") -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error


class Forbidden(Exception):
    """The token is fine but its roles do not allow this (403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def issue_token(settings: ApiSettings, *, sub: str, roles: list[str], hours: float = 8) -> str:
    """Sign a token for local use with the service's HS256 secret."""
    if settings.jwt_jwks:
        raise ValueError(
            "tokens come from the identity provider (PATHWAY_JWT_JWKS is set); "
            "this service cannot sign them"
        )
    unknown = [r for r in roles if r not in _ROLE_NAMES]
    if unknown or not roles:
        raise ValueError(f"roles must be among {', '.join(Role)}; got {', '.join(roles) or 'none'}")
    if not sub.strip():
        raise ValueError("the token needs a subject (--sub)")
    if len(sub) > MAX_SUB or identifier_problem(sub) is not None:
        raise ValueError(f"--sub must be plain text of at most {MAX_SUB} characters")
    if hours <= 0:
        raise ValueError("--hours must be positive")
    if hours > settings.jwt_max_hours:
        raise ValueError(
            f"--hours may be at most {settings.jwt_max_hours:g} (PATHWAY_JWT_MAX_HOURS): "
            "the service refuses tokens that live longer"
        )
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": roles,
        "iat": now,
        "exp": now + timedelta(hours=hours),
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.signing_secret(), algorithm="HS256")


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300)


@lru_cache(maxsize=4)
def _jwks_file(path: str, _mtime: float) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict(json.loads(Path(path).read_text()))


class TokenVerifier:
    """Checks bearer tokens against the configured keys."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.secret = None if settings.jwt_jwks else settings.signing_secret()

    def _key(self, token: str) -> Any:
        if self.secret is not None:
            return self.secret
        source = self.settings.jwt_jwks or ""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        try:
            if source.startswith(("http://", "https://")):
                return _jwks_client(source).get_signing_key_from_jwt(token).key
            keys = _jwks_file(source, Path(source).stat().st_mtime)
        except (OSError, ValueError, jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            log.error("cannot read the identity provider's keys: %s", exc.__class__.__name__)
            raise AuthError("the identity provider's keys cannot be read") from None
        for key in keys.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise AuthError("the token is signed with a key this service does not know")

    def verify(self, token: str) -> Principal:
        """Return the caller named by a valid token, or raise AuthError."""
        algorithms = ["HS256"] if self.secret is not None else ["RS256", "RS384", "RS512"]
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=30,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self.settings.jwt_audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"the token is not valid: {exc}") from None
        self._check_lifetime(claims)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise AuthError("the token does not say who it is for (an empty sub)")
        # sub is written into the audit log: it must fit its column and be plain text.
        if len(sub) > MAX_SUB:
            raise AuthError(f"the token's sub is longer than {MAX_SUB} characters")
        if (problem := identifier_problem(sub)) is not None:
            raise AuthError(f"the token's sub {problem}")
        raw = claims.get("roles", [])
        if isinstance(raw, str):
            raw = raw.replace(",", " ").split()
        elif not isinstance(raw, list | tuple):
            raw = []  # anything else grants nothing
        roles = frozenset(Role(r) for r in raw if isinstance(r, str) and r in _ROLE_NAMES)
        return Principal(sub=sub.strip(), roles=roles)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A token's ``exp`` (and ``iat``) must be numbers, and it may not live longer than
        PATHWAY_JWT_MAX_HOURS: PyJWT lets an ``exp`` of 1e308 through as never expiring."""
        exp, iat = claims.get("exp"), claims.get("iat", time.time())
        for name, value in (("exp", exp), ("iat", iat)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AuthError(f"the token's {name} is not a time (seconds since 1970)")
        assert isinstance(exp, int | float) and isinstance(iat, int | float)
        if not math.isfinite(exp) or exp - iat > self.settings.jwt_max_hours * 3600:
            raise AuthError(
                f"the token lives longer than {self.settings.jwt_max_hours:g} hours "
                "(PATHWAY_JWT_MAX_HOURS): ask for a shorter one"
            )


def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, from the Authorization header or, for the pages, from
    the session cookie (whose state-changing requests must pass the CSRF checks)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        cookie = sessions.session_token(request)
        if cookie is None:
            raise AuthError("no bearer token: send Authorization: Bearer <token>", error="")
        caller = request.app.state.verifier.verify(cookie)
        if request.method not in sessions.SAFE_METHODS:
            try:
                sessions.check_csrf(request)
            except sessions.CrossSite as exc:
                raise Forbidden(exc.detail) from None
        assert isinstance(caller, Principal)
        return caller
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("the Authorization header must be 'Bearer <token>'")
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(token.strip())


async def care_team(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """FastAPI dependency: the caller, who must be of the care team or an admin, since cases
    hold patient data (403 otherwise)."""
    if not caller.has_any(CARE_ROLES):
        raise Forbidden("cases are for coordinators, clinicians and admins")
    return caller
