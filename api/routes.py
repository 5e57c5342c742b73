"""The routes on cases: each is the one engine call it makes (dependencies in
``dependencies``); the reply is shaped from the engine's record by its response model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

import engine

from .dependencies import (
    Caller,
    CaseId,
    Clock,
    RequiredVersion,
    SeenVersion,
    StepId,
    Transaction,
    case_response,
    error_responses,
    known_query_only,
)
from .problems import PROBLEM
from .schemas import (
    Amendment,
    CaseOut,
    CasePageOut,
    EventOut,
    Health,
    Identifier,
    NewCase,
    NewNote,
    PatientRef,
    Problem,
    Reason,
    Reschedule,
    TaskData,
)

router = APIRouter(dependencies=[Depends(known_query_only)])


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
    responses=error_responses(400, 404, 409),
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
            return case_response(earlier, status=201)
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
    return case_response(view, status=201)


@router.get("/cases", response_model=CasePageOut, tags=["cases"], responses=error_responses())
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


@router.get(
    "/cases/{case_id}", response_model=CaseOut, tags=["cases"], responses=error_responses(404)
)
def get_case(case_id: CaseId, caller: Caller, session: Transaction, clock: Clock) -> JSONResponse:
    """A case: status, version (also its ETag), ready steps, deadlines, reminders, variances."""
    return case_response(engine.get_case(session, case_id, clock=clock))


@router.get(
    "/cases/{case_id}/timeline",
    response_model=list[EventOut],
    tags=["cases"],
    responses=error_responses(404),
)
def timeline(case_id: CaseId, caller: Caller, session: Transaction) -> list[EventOut]:
    """What happened on the case, who did it, when, and why the step is there."""
    return [EventOut.model_validate(event) for event in engine.timeline(session, case_id)]


@router.post(
    "/cases/{case_id}/tasks/{task_id}/complete",
    response_model=CaseOut,
    tags=["cases"],
    responses=error_responses(400, 404, 409, 428),
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
    return case_response(view)


@router.post(
    "/cases/{case_id}/tasks/{task_id}/amend",
    response_model=CaseOut,
    tags=["cases"],
    responses=error_responses(400, 404, 409, 428),
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
    return case_response(view)


@router.post(
    "/cases/{case_id}/messages/{message}",
    response_model=CaseOut,
    tags=["cases"],
    responses=error_responses(400, 404, 409),
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
    return case_response(view)


@router.post(
    "/cases/{case_id}/deadlines/{kind}/reschedule",
    response_model=CaseOut,
    tags=["cases"],
    responses=error_responses(400, 404, 409),
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
    return case_response(view)


@router.post(
    "/cases/{case_id}/cancel",
    response_model=CaseOut,
    tags=["cases"],
    responses=error_responses(400, 404, 409),
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
    return case_response(view)


@router.post(
    "/cases/{case_id}/notes",
    status_code=201,
    response_model=EventOut,
    tags=["cases"],
    responses=error_responses(404),
)
def add_note(
    case_id: CaseId, body: NewNote, caller: Caller, session: Transaction, clock: Clock
) -> EventOut:
    """Add a note to the case's timeline (at most 4,000 characters), with who and when."""
    event = engine.add_note(session, case_id=case_id, text=body.text, clock=clock, actor=caller.sub)
    return EventOut.model_validate(event)
