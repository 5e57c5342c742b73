"""Every error the API returns, as ``application/problem+json`` (RFC 9457), mapped in one place.

An unexpected error is a 500 with the request id in the body and in the log, never a trace.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import PurePath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

import engine

from .auth import AuthError, Forbidden

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

# engine error -> (status, type slug, title)
_ENGINE: dict[type[engine.PathwayError], tuple[int, str, str]] = {
    engine.CaseNotFound: (404, "case-not-found", "No such case"),
    engine.DefinitionNotFound: (404, "pathway-not-found", "No such pathway"),
    engine.DeadlineNotFound: (404, "deadline-not-found", "No such waiting deadline"),
    engine.TaskNotReady: (409, "task-not-ready", "The step is not ready"),
    engine.StepNotCompleted: (409, "step-not-completed", "The step has not been completed"),
    engine.DecisionWouldChange: (409, "decision-would-change", "A decision would change"),
    engine.VersionConflict: (409, "version-conflict", "The case has changed"),
    engine.DuplicateCase: (409, "duplicate-case", "The patient already has an active case"),
    engine.MessageNotExpected: (409, "message-not-expected", "The case is not waiting for it"),
    engine.CaseClosed: (409, "case-closed", "The case is closed"),
    engine.NotPermitted: (403, "role-not-permitted", "Not your step"),
    engine.InvalidTaskData: (422, "invalid-data", "The data was refused"),
    engine.IdempotencyKeyReused: (422, "idempotency-key-reused", "Idempotency-Key reused"),
    engine.IdempotencyKeyInUse: (409, "idempotency-key-in-use", "The first request still runs"),
    engine.DefinitionInvalid: (422, "definition-invalid", "The definition has problems"),
    engine.MigrationInvalid: (422, "migration-invalid", "These versions cannot be migrated"),
    engine.MigrationConflict: (409, "migration-running", "A migration is already running"),
    engine.MigrationNotFound: (404, "migration-not-found", "No such migration"),
    engine.ExecutionFailed: (500, "pathway-failed", "The pathway could not run this step"),
}


class PreconditionRequired(Exception):
    """A change was sent without If-Match (428)."""


class BadPrecondition(Exception):
    """An If-Match header that is not a case version (400)."""


def body(
    *, status: int, slug: str, title: str, detail: str, path: str, request_id: str | None
) -> dict[str, Any]:
    """The members every problem has."""
    return {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path,
        "request_id": request_id,
    }


def too_large_detail(limit: int, setting: str = "PATHWAY_MAX_BODY_BYTES") -> str:
    """Why a request body was refused for its size."""
    return f"the request body is larger than {limit:,} bytes ({setting})"


def unexpected_detail(request_id: str) -> str:
    """What a 500 tells the caller: the request id to quote, nothing of the error."""
    return f"an unexpected error occurred; quote request id {request_id} when reporting it"


def log_unexpected(request_id: str, exc: BaseException) -> None:
    """Log an unexpected error by its request id, its type and where it was raised.

    Never its message or a full traceback: a database error's text can hold the values of
    the row it refused (PostgreSQL's "Key (patient_ref)=(...) already exists"), and a
    ValueError's text whatever it was given.
    """
    chain: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 5:
        chain.append(cause.__class__.__name__)
        cause = cause.__cause__ or cause.__context__
    frames = traceback.extract_tb(exc.__traceback__)[-8:]
    where = " <- ".join(
        f"{PurePath(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames)
    )
    log.error("request %s: unexpected %s at %s", request_id, " from ".join(chain), where or "?")


def problem(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response."""
    content = body(
        status=status,
        slug=slug,
        title=title,
        detail=detail,
        path=request.url.path,
        request_id=getattr(request.state, "request_id", None),
    )
    content.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(content, status_code=status, media_type=PROBLEM, headers=headers)


def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, engine.PathwayError)
    status, slug, title = next(
        (v for k, v in _ENGINE.items() if isinstance(exc, k)), (400, "bad-request", "Refused")
    )
    extra: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, engine.InvalidTaskData):
        extra.update(_capped([{"field": e.field, "message": e.message} for e in exc.errors]))
        extra["detail"] = f"data for '{exc.task}' refused: {extra['detail']}"
    if isinstance(exc, engine.TaskNotReady):
        extra["ready_tasks"] = exc.ready
    if isinstance(exc, engine.VersionConflict):
        extra["current_version"] = exc.actual
    if isinstance(exc, engine.DuplicateCase):
        extra["existing_case_id"] = exc.existing_case_id
    headers = None
    if isinstance(exc, engine.IdempotencyKeyInUse):
        headers = {"Retry-After": "1"}
    if status >= 500:
        log.error("request %s: %s", getattr(request.state, "request_id", "-"), exc)
    return problem(request, status=status, slug=slug, title=title, headers=headers, **extra)


MAX_FIELD_ERRORS = 50
"""The most field errors one answer lists; the rest are counted. A body of a million unknown
fields once answered with a 370 MB list."""


def _capped(errors: list[dict[str, str]]) -> dict[str, Any]:
    """The errors to list, the detail that sums them up, and how many were left out."""
    shown = errors[:MAX_FIELD_ERRORS]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in shown)
    more = len(errors) - len(shown)
    if more:
        detail += f"; and {more} more error(s)"
    return {"detail": detail, "errors": shown, "more_errors": more or None}


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        location = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        if err.get("type") == "json_invalid":
            location = []  # FastAPI puts the character offset there, not a field
        if err.get("type") == "text_refused":
            location = [str(err["ctx"]["field"])]  # the field inside data, not just data
        message = str(err.get("msg")).removeprefix("Value error, ")
        errors.append({"field": ".".join(location) or "body", "message": message})
    return problem(
        request,
        status=422,
        slug="invalid-request",
        title="The request was refused",
        **_capped(errors),
    )


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's answer to a JSON body that is not UTF-8: refused as any other body that
        # is not JSON is (422, as the routes document), not as a bare 400.
        return problem(
            request,
            status=422,
            slug="invalid-request",
            title="The request was refused",
            **_capped([{"field": "body", "message": "is not JSON in UTF-8"}]),
        )
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}
    detail, headers = str(exc.detail), getattr(exc, "headers", None)
    if exc.status_code == 413:  # a body without Content-Length that grew past the limit
        # Closed, or the server would read (and throw away) the rest, however long it is.
        headers = {"Connection": "close"}
    return problem(
        request,
        status=exc.status_code,
        slug=f"http-{exc.status_code}",
        title=titles.get(exc.status_code, "Request refused"),
        detail=detail,
        headers=headers,
    )


def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    challenge = "Bearer" + (f' error="{exc.error}"' if exc.error else "")
    return problem(
        request,
        status=401,
        slug="unauthenticated",
        title="Authentication required",
        detail=exc.detail,
        headers={"WWW-Authenticate": challenge},
    )


def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Forbidden)
    return problem(request, status=403, slug="forbidden", title="Forbidden", detail=exc.detail)


def _precondition_required(request: Request, exc: Exception) -> JSONResponse:
    return problem(
        request,
        status=428,
        slug="if-match-required",
        title="If-Match required",
        detail="send If-Match with the case version you saw (its ETag) so that a stale page "
        "cannot overwrite someone else's change",
    )


def _bad_precondition(request: Request, exc: Exception) -> JSONResponse:
    return problem(
        request,
        status=400,
        slug="bad-if-match",
        title="Bad If-Match",
        detail=f'If-Match must be a case version such as "3": {exc}',
    )


def _integrity(request: Request, exc: Exception) -> JSONResponse:
    # Two requests raced past the engine's own checks; the database refused the second.
    log.warning("request %s: integrity conflict", getattr(request.state, "request_id", "-"))
    return problem(
        request,
        status=409,
        slug="conflict",
        title="Conflicting change",
        detail="another request changed the same record at the same moment: reload and retry",
    )


def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("request %s: database unavailable", getattr(request.state, "request_id", "-"))
    return problem(
        request,
        status=503,
        slug="database-unavailable",
        title="Database unavailable",
        detail="the database cannot be reached right now; retry shortly",
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI) -> None:
    """Register every error mapping on the app."""
    app.add_exception_handler(engine.PathwayError, _engine_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(PreconditionRequired, _precondition_required)
    app.add_exception_handler(BadPrecondition, _bad_precondition)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(OperationalError, _database_unavailable)
    # Unexpected errors are caught by the access log's middleware (app.py), not here: a
    # handler for Exception runs in Starlette's outermost middleware, which then re-raises,
    # and uvicorn logs the whole traceback, error text and all.
