"""The routes: each is the one engine call it makes.

Dependencies give every route what it needs before that call: the caller (authenticated, and
from the care team), the request's one transaction, the clock, and the case version the
caller saw (``If-Match``); the reply is shaped from the engine's record by its response model.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

import engine

from .auth import Forbidden, Principal, care_team
from .problems import PROBLEM, BadPrecondition, PreconditionRequired
from .schemas import (
    Amendment,
    CaseOut,
    CasePageOut,
    ClaimOut,
    EventOut,
    Health,
    Identifier,
    NewCase,
    NewNote,
    PatientRef,
    Problem,
    Reason,
    ReminderPageOut,
    Reschedule,
    TaskData,
    WorkPageOut,
)

_ERRORS = {
    code: {"model": Problem, "content": {PROBLEM: {}}}
    for code in (400, 401, 403, 404, 409, 422, 428)
}


def _errors(*codes: int) -> dict[int | str, dict[str, object]]:
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


router = APIRouter(dependencies=[Depends(known_query_only)])
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


def _case_response(view: engine.CaseView, *, status: int = 200) -> JSONResponse:
    return _JSON(
        CaseOut.model_validate(view).model_dump(mode="json"),
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
    caller: Caller,
    session: Transaction,
    clock: Clock,
    idempotency_key: Annotated[Identifier | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Start a case for a patient; a retry with the same Idempotency-Key returns the same case."""
    if idempotency_key:
        earlier = engine.replay_start(
            session,
            actor=caller.sub,
            idempotency_key=idempotency_key,
            pathway=body.pathway,
            patient_ref=body.patient_ref,
            first_step_data=body.data,
            clock=clock,
        )
        if earlier is not None:
            return _case_response(earlier, status=201)
    view = engine.start_case(
        session,
        pathway=body.pathway,
        patient_ref=body.patient_ref,
        first_step_data=body.data,
        clock=clock,
        actor=caller.sub,
        roles=caller.roles,
        idempotency_key=idempotency_key or None,
    )
    return _case_response(view, status=201)


@router.get("/cases", response_model=CasePageOut, tags=["cases"], responses=_errors())
def list_cases(
    caller: Caller,
    session: Transaction,
    clock: Clock,
    status: engine.CaseStatus | None = None,
    patient_ref: Annotated[PatientRef | None, Query(max_length=engine.PATIENT_REF_MAX)] = None,
    patient_ref_prefix: Annotated[
        PatientRef | None, Query(max_length=engine.PATIENT_REF_MAX)
    ] = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CasePageOut:
    """Find cases by status, patient reference (or its beginning), overdue steps and
    escalation."""
    page = engine.list_cases(
        session,
        now=clock.now(),
        status=status,
        patient_ref=patient_ref,
        patient_ref_prefix=patient_ref_prefix,
        overdue=overdue,
        escalated=escalated,
        limit=limit,
        offset=offset,
    )
    return CasePageOut.model_validate(page)


@router.get("/cases/{case_id}", response_model=CaseOut, tags=["cases"], responses=_errors(404))
def get_case(case_id: CaseId, caller: Caller, session: Transaction, clock: Clock) -> JSONResponse:
    """A case: status, version (also its ETag), ready steps, deadlines, reminders, variances."""
    return _case_response(engine.get_case(session, case_id, clock=clock))


@router.get(
    "/cases/{case_id}/timeline",
    response_model=list[EventOut],
    tags=["cases"],
    responses=_errors(404),
)
def timeline(case_id: CaseId, caller: Caller, session: Transaction) -> list[EventOut]:
    """What happened on the case, who did it, when, and why the step is there."""
    return [EventOut.model_validate(event) for event in engine.timeline(session, case_id)]


@router.post(
    "/cases/{case_id}/tasks/{task_id}/complete",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409, 428),
)
def complete_task(
    case_id: CaseId,
    task_id: StepId,
    body: TaskData,
    caller: Caller,
    expected_version: RequiredVersion,
    session: Transaction,
    clock: Clock,
) -> JSONResponse:
    """Complete a ready step with its form data, by the role the pathway names for it."""
    view = engine.complete_task(
        session,
        case_id=case_id,
        step=task_id,
        data=body.data,
        clock=clock,
        actor=caller.sub,
        roles=caller.roles,
        expected_version=expected_version,
    )
    return _case_response(view)


@router.post(
    "/cases/{case_id}/tasks/{task_id}/amend",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409, 428),
)
def amend_task(
    case_id: CaseId,
    task_id: StepId,
    body: Amendment,
    caller: Caller,
    expected_version: RequiredVersion,
    session: Transaction,
    clock: Clock,
) -> JSONResponse:
    """Correct fields of a completed step, by the step's role, with a reason: the timeline
    keeps old and new values; dates deadlines hang on follow; a decision already taken may
    not change (409 naming it)."""
    view = engine.amend_task(
        session,
        case_id=case_id,
        step=task_id,
        data=body.data,
        reason=body.reason,
        clock=clock,
        actor=caller.sub,
        roles=caller.roles,
        expected_version=expected_version,
    )
    return _case_response(view)


@router.post(
    "/cases/{case_id}/messages/{message}",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409),
)
def deliver_message(
    case_id: CaseId,
    message: StepId,
    body: TaskData,
    caller: Caller,
    expected_version: SeenVersion,
    session: Transaction,
    clock: Clock,
) -> JSONResponse:
    """Deliver a message: red_flag_reported moves the case to the urgent branch."""
    view = engine.deliver_message(
        session,
        case_id=case_id,
        message=message,
        data=body.data,
        clock=clock,
        actor=caller.sub,
        roles=caller.roles,
        expected_version=expected_version,
    )
    return _case_response(view)


@router.post(
    "/cases/{case_id}/deadlines/{kind}/reschedule",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409),
)
def reschedule(
    case_id: CaseId,
    kind: StepId,
    body: Reschedule,
    caller: Caller,
    expected_version: SeenVersion,
    session: Transaction,
    clock: Clock,
) -> JSONResponse:
    """Move a waiting deadline to a new time; the reason is recorded in the timeline."""
    view = engine.reschedule_deadline(
        session,
        case_id=case_id,
        kind=kind,
        due_at=body.due_at,
        reason=body.reason,
        clock=clock,
        actor=caller.sub,
        roles=caller.roles,
        expected_version=expected_version,
    )
    return _case_response(view)


@router.post(
    "/cases/{case_id}/cancel",
    response_model=CaseOut,
    tags=["cases"],
    responses=_errors(400, 404, 409),
)
def cancel(
    case_id: CaseId,
    body: Reason,
    caller: Caller,
    expected_version: SeenVersion,
    session: Transaction,
    clock: Clock,
) -> JSONResponse:
    """Cancel a case with a reason: its deadlines stop and unsent reminders are dropped."""
    view = engine.cancel_case(
        session,
        case_id=case_id,
        reason=body.reason,
        clock=clock,
        actor=caller.sub,
        expected_version=expected_version,
    )
    return _case_response(view)


@router.post(
    "/cases/{case_id}/notes",
    status_code=201,
    response_model=EventOut,
    tags=["cases"],
    responses=_errors(404),
)
def add_note(
    case_id: CaseId, body: NewNote, caller: Caller, session: Transaction, clock: Clock
) -> EventOut:
    """Add a note to the case's timeline (at most 4,000 characters), with who and when."""
    event = engine.add_note(session, case_id=case_id, text=body.text, clock=clock, actor=caller.sub)
    return EventOut.model_validate(event)


@router.get("/reminders", response_model=ReminderPageOut, tags=["reminders"], responses=_errors())
def reminders(
    caller: Caller,
    session: Transaction,
    case_id: Annotated[Identifier | None, Query(max_length=36)] = None,
    kind: Annotated[Identifier | None, Query(max_length=200)] = None,
    status: engine.ReminderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReminderPageOut:
    """Reminders by case, kind and delivery status, newest first, with attempts and the
    last error of a failed one."""
    records, total = engine.list_reminders(
        session, case_id=case_id, kind=kind, status=status, limit=limit, offset=offset
    )
    return ReminderPageOut.model_validate(
        {"items": records, "total": total, "limit": limit, "offset": offset}
    )


@router.get("/worklist", response_model=WorkPageOut, tags=["worklist"], responses=_errors())
def worklist(
    caller: Caller,
    session: Transaction,
    clock: Clock,
    role: engine.Role | None = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    pathway: Annotated[Identifier | None, Query(max_length=200)] = None,
    claimed: Literal["any", "mine", "unclaimed"] = "any",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkPageOut:
    """Ready steps the caller's roles may do (or one of them: ``role``), most urgent first:
    red-flag branches, then overdue, then the earliest deadline; with who holds each, and
    filters for overdue, escalated, pathway and claims (``mine``, ``unclaimed``, ``any``)."""
    if engine.Role.ADMIN in caller.roles:
        roles = None if role is None else frozenset({role})
    elif role is None:
        roles = caller.roles & engine.CARE_ROLES
    elif role in caller.roles:
        roles = frozenset({role})
    else:
        raise Forbidden(
            f"you do not hold the role {role}: your roles are {', '.join(sorted(caller.roles))}"
        )
    page = engine.worklist(
        session,
        now=clock.now(),
        roles=roles,
        limit=limit,
        offset=offset,
        overdue=overdue,
        escalated=escalated,
        pathway=pathway,
        claimed=claimed,
        actor=caller.sub,
    )
    return WorkPageOut.model_validate(page)


def _claim_answer(case_id: str, task: str, held: tuple[str | None, datetime | None]) -> ClaimOut:
    return ClaimOut(case_id=case_id, task=task, claimed_by=held[0], claimed_at=held[1])


@router.post(
    "/cases/{case_id}/tasks/{task_id}/claim",
    response_model=ClaimOut,
    tags=["worklist"],
    responses=_errors(404, 409),
)
def claim(
    case_id: CaseId, task_id: StepId, caller: Caller, session: Transaction, clock: Clock
) -> ClaimOut:
    """Say you are working a ready step (a signpost, not a lock; in the timeline)."""
    held = engine.claim_task(
        session, case_id=case_id, step=task_id, actor=caller.sub, roles=caller.roles, clock=clock
    )
    return _claim_answer(case_id, task_id, held)


@router.post(
    "/cases/{case_id}/tasks/{task_id}/unclaim",
    response_model=ClaimOut,
    tags=["worklist"],
    responses=_errors(404, 409),
)
def unclaim(
    case_id: CaseId, task_id: StepId, caller: Caller, session: Transaction, clock: Clock
) -> ClaimOut:
    """Release the claim on a ready step (in the timeline)."""
    held = engine.unclaim_task(
        session, case_id=case_id, step=task_id, actor=caller.sub, roles=caller.roles, clock=clock
    )
    return _claim_answer(case_id, task_id, held)
