"""The routes: each parses the request, calls the engine in one transaction, shapes the reply."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

import engine

from .auth import CARE_ROLES, Principal, principal, require_care_role
from .problems import PROBLEM, BadPrecondition, PreconditionRequired
from .schemas import (
    CaseOut,
    CasePageOut,
    CaseSummaryOut,
    EventOut,
    Evidence,
    Health,
    NewCase,
    Problem,
    Reason,
    ReminderPageOut,
    ReminderRecordOut,
    Reschedule,
    TaskData,
    WorkItemOut,
)

_ERRORS = {
    code: {"model": Problem, "content": {PROBLEM: {}}}
    for code in (400, 401, 403, 404, 409, 422, 428)
}


def _errors(*codes: int) -> dict[int | str, dict[str, object]]:
    return {c: _ERRORS[c] for c in (401, 403, 422, *codes)}


router = APIRouter()
CareTeam = Annotated[Principal, Depends(principal)]
_VERSION = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


def care(caller: CareTeam) -> Principal:
    """Dependency: a caller from the care team (or an admin)."""
    return require_care_role(caller)


Caller = Annotated[Principal, Depends(care)]


@contextmanager
def transaction(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the block ends, rolled back on error."""
    with request.app.state.sessions.begin() as session:
        yield session


def clock(request: Request) -> engine.Clock:
    """The service's clock."""
    result: engine.Clock = request.app.state.clock
    return result


def _version(if_match: str | None, *, required: bool) -> int | None:
    if if_match is None or not if_match.strip():
        if required:
            raise PreconditionRequired()
        return None
    if if_match.strip() == "*":
        return None
    match = _VERSION.match(if_match.strip())
    if match is None:
        raise BadPrecondition(if_match[:40])
    return int(match.group(1))


class _JSON(JSONResponse):
    """JSON written by orjson (several times faster than the standard library here)."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def _case_response(view: engine.CaseView, *, status: int = 200) -> JSONResponse:
    return _JSON(
        CaseOut.of(view).model_dump(mode="json"),
        status_code=status,
        headers={"ETag": f'"{view.version}"'},
    )


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    tags=["health"],
    responses={503: {"model": Problem, "content": {PROBLEM: {}}}},
)
def readyz(request: Request) -> Health:
    """The database answers (503 otherwise)."""
    with request.app.state.db.connect() as connection:
        connection.execute(text("SELECT 1"))
    return Health(status="ready")


@router.post(
    "/cases",
    status_code=201,
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409),
)
def create_case(
    body: NewCase,
    request: Request,
    caller: Caller,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Start a case for a patient; a retry with the same Idempotency-Key returns the same case."""
    with transaction(request) as session:
        if idempotency_key:
            earlier = engine.replay_start(
                session,
                actor=caller.sub,
                idempotency_key=idempotency_key,
                pathway=body.pathway,
                patient_ref=body.patient_ref,
                first_step_data=body.data,
                clock=clock(request),
            )
            if earlier is not None:
                return _case_response(earlier, status=201)
        view = engine.start_case(
            session,
            pathway=body.pathway,
            patient_ref=body.patient_ref,
            first_step_data=body.data,
            clock=clock(request),
            actor=caller.sub,
            roles=caller.roles,
            idempotency_key=idempotency_key or None,
        )
    return _case_response(view, status=201)


@router.get("/cases", response_model=CasePageOut, tags=["cases"], responses=_errors())
def list_cases(
    request: Request,
    caller: Caller,
    status: Annotated[str | None, Query(pattern="^(active|ended|cancelled)$")] = None,
    patient_ref: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CasePageOut:
    """Find cases by status, patient reference, overdue steps and escalation."""
    with transaction(request) as session:
        page = engine.list_cases(
            session,
            now=clock(request).now(),
            status=status,
            patient_ref=patient_ref,
            overdue=overdue,
            escalated=escalated,
            limit=limit,
            offset=offset,
        )
    return CasePageOut(
        items=[CaseSummaryOut(**vars(item)) for item in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/cases/{case_id}", response_model=CaseOut, tags=["cases"], responses=_errors(404))
def get_case(case_id: str, request: Request, caller: Caller) -> JSONResponse:
    """A case: status, version (also its ETag), ready steps, deadlines, reminders, variances."""
    with transaction(request) as session:
        view = engine.get_case(session, case_id, clock=clock(request))
    return _case_response(view)


@router.get(
    "/cases/{case_id}/timeline",
    response_model=list[EventOut],
    tags=["cases"],
    responses=_errors(404),
)
def timeline(case_id: str, request: Request, caller: Caller) -> list[EventOut]:
    """What happened on the case, who did it, when, and why the step is there."""
    with transaction(request) as session:
        events = engine.timeline(session, case_id)
    return [
        EventOut(
            at=e.at,
            type=e.type,
            step=e.step,
            actor=e.actor,
            detail=e.detail,
            evidence=Evidence(**e.evidence) if e.evidence else None,
        )
        for e in events
    ]


@router.post(
    "/cases/{case_id}/tasks/{task_id}/complete",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409, 428),
)
def complete_task(
    case_id: str,
    task_id: str,
    body: TaskData,
    request: Request,
    caller: Caller,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Complete a ready step with its form data, by the role the pathway names for it."""
    expected = _version(if_match, required=True)
    with transaction(request) as session:
        view = engine.complete_task(
            session,
            case_id=case_id,
            step=task_id,
            data=body.data,
            clock=clock(request),
            actor=caller.sub,
            roles=caller.roles,
            expected_version=expected,
        )
    return _case_response(view)


@router.post(
    "/cases/{case_id}/messages/{message}",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409),
)
def deliver_message(
    case_id: str,
    message: str,
    body: TaskData,
    request: Request,
    caller: Caller,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Deliver a message: red_flag_reported moves the case to the urgent branch."""
    expected = _version(if_match, required=False)
    with transaction(request) as session:
        view = engine.deliver_message(
            session,
            case_id=case_id,
            message=message,
            data=body.data,
            clock=clock(request),
            actor=caller.sub,
            roles=caller.roles,
            expected_version=expected,
        )
    return _case_response(view)


@router.post(
    "/cases/{case_id}/deadlines/{kind}/reschedule",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409),
)
def reschedule(
    case_id: str,
    kind: str,
    body: Reschedule,
    request: Request,
    caller: Caller,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Move a waiting deadline to a new time; the reason is recorded in the timeline."""
    expected = _version(if_match, required=False)
    with transaction(request) as session:
        view = engine.reschedule_deadline(
            session,
            case_id=case_id,
            kind=kind,
            due_at=body.due_at,
            reason=body.reason,
            clock=clock(request),
            actor=caller.sub,
            expected_version=expected,
        )
    return _case_response(view)


@router.post(
    "/cases/{case_id}/cancel",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409),
)
def cancel(
    case_id: str,
    body: Reason,
    request: Request,
    caller: Caller,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Cancel a case with a reason: its deadlines stop and unsent reminders are dropped."""
    expected = _version(if_match, required=False)
    with transaction(request) as session:
        view = engine.cancel_case(
            session,
            case_id=case_id,
            reason=body.reason,
            clock=clock(request),
            actor=caller.sub,
            expected_version=expected,
        )
    return _case_response(view)


@router.get("/reminders", response_model=ReminderPageOut, tags=["reminders"], responses=_errors())
def reminders(
    request: Request,
    caller: Caller,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
    kind: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[
        str | None, Query(pattern="^(pending|enqueued|sending|sent|failed|cancelled)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReminderPageOut:
    """Reminders by case, kind and delivery status, newest first, with attempts and the
    last error of a failed one."""
    with transaction(request) as session:
        records, total = engine.list_reminders(
            session, case_id=case_id, kind=kind, status=status, limit=limit, offset=offset
        )
    return ReminderPageOut(
        items=[ReminderRecordOut(**vars(r)) for r in records],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/worklist", response_model=list[WorkItemOut], tags=["worklist"], responses=_errors())
def worklist(
    request: Request,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WorkItemOut]:
    """Ready steps the caller's roles may do, most urgent first: red-flag branches, then
    overdue, then the earliest deadline."""
    with transaction(request) as session:
        items = engine.worklist(
            session,
            now=clock(request).now(),
            roles=None if "admin" in caller.roles else caller.roles & CARE_ROLES,
            limit=limit,
        )
    return [WorkItemOut(**vars(item)) for item in items]
