"""What every route needs before its one engine call, as FastAPI dependencies: the caller
(authenticated, and from the care team), the request's one transaction, the clock, the case
version the caller saw (``If-Match``), only the query parameters the route takes; and how a
case is answered (JSON with its version as the ETag)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import anyio.to_thread
import orjson
from fastapi import Depends, Header, Path, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

import engine

from .auth import Principal, care_team
from .problems import PROBLEM, BadPrecondition, PreconditionRequired
from .schemas import (
    CaseOut,
    Identifier,
    Problem,
)

_ERRORS = {
    code: {"model": Problem, "content": {PROBLEM: {}}}
    for code in (400, 401, 403, 404, 409, 413, 415, 422, 428)
}


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    return {c: _ERRORS[c] for c in (401, 403, 422, *codes)}


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {field.alias for field in dependant.query_params}
    for inner in dependant.dependencies:
        names |= _query_names(inner)
    return frozenset(names)


_KNOWN_QUERY: dict[int, frozenset[str]] = {}


async def known_query_only(request: Request) -> None:
    """Dependency of every route: a query parameter the route does not take is a 422 naming
    it. A mistyped filter on a worklist (``?statsu=active``) must not quietly return
    everything."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _KNOWN_QUERY.get(id(route))
    if known is None:
        known = _KNOWN_QUERY[id(route)] = _query_names(dependant)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in known]
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "unknown_parameter",
                    "loc": ("query", name[:100]),
                    "msg": f"is not a parameter of this route (it takes: {takes})",
                }
                for name in unknown
            ]
        )


_VERSION = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


async def transaction(request: Request) -> AsyncIterator[Session]:
    """Dependency: the request's one transaction, committed once the route has answered (and
    before the answer is sent), rolled back when it raises."""
    # Opening takes no connection yet (that happens on first use, in the route's thread), so
    # it is done here on the event loop. Ending is I/O and runs on a thread outside the
    # request threads' limit: waiting for one of those while holding a pooled connection
    # could starve the pool (FastAPI ends sync generator dependencies the same way).
    session: Session = request.app.state.sessions()
    try:
        yield session
    except BaseException:
        await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
        raise
    await anyio.to_thread.run_sync(_commit, session, limiter=anyio.CapacityLimiter(1))


def _commit(session: Session) -> None:
    with session:  # closed afterwards, and rolled back if the commit fails
        session.commit()


async def service_clock(request: Request) -> engine.Clock:
    """Dependency: the service's clock."""
    result: engine.Clock = request.app.state.clock
    return result


def _parse_version(if_match: str) -> int | None:
    value = if_match.strip()
    if value == "*":
        return None
    match = _VERSION.match(value)
    if match is None:
        raise BadPrecondition(if_match[:40])
    return int(match.group(1))


async def seen_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """Dependency: the case version the caller saw (If-Match); None without one or for "*"."""
    if if_match is None or not if_match.strip():
        return None
    return _parse_version(if_match)


async def required_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """Dependency: as seen_version, but If-Match must be sent (428 without it)."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired()
    return _parse_version(if_match)


# Path parameters: identifiers no longer than the columns that hold them.
CaseId = Annotated[Identifier, Path(max_length=36)]
StepId = Annotated[Identifier, Path(max_length=200)]

Caller = Annotated[Principal, Depends(care_team)]
Transaction = Annotated[Session, Depends(transaction, scope="function")]
Clock = Annotated[engine.Clock, Depends(service_clock)]
SeenVersion = Annotated[int | None, Depends(seen_version)]
RequiredVersion = Annotated[int | None, Depends(required_version)]


class _JSON(JSONResponse):
    """JSON written by orjson (several times faster than the standard library here)."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def case_response(view: engine.CaseView, *, status: int = 200) -> JSONResponse:
    return _JSON(
        CaseOut.model_validate(view).model_dump(mode="json"),
        status_code=status,
        headers={"ETag": f'"{view.version}"'},
    )
