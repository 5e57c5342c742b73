"""Cases: start one, read it, complete its steps, deliver messages, cancel it.

Every change goes through ``advance``: lock the case row, check its version, load, act, run
engine steps, save the state with a new version, rewrite its timer rows, record reminders,
variances and audit events. The caller's transaction commits it all or nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from . import definitions
from .clock import Clock
from .definitions import Pathway
from .errors import CaseClosed, CaseNotFound, VersionConflict
from .execution import CaseRun, Event
from .expressions import SandboxScriptEngine
from .state import dump_state, load_state
from .steps import describe_step
from .store import case_events, case_timers, cases, reminders, variances

log = logging.getLogger(__name__)

ACTIVE, ENDED, CANCELLED = "active", "ended", "cancelled"


@dataclass(frozen=True)
class ReadyTask:
    """A step a person can complete now."""

    id: str
    task_id: str
    name: str | None
    role: str | None
    form: list[dict[str, Any]]
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Deadline:
    """A timer the case is waiting on."""

    kind: str
    step: str
    due_at: datetime
    status: str


@dataclass(frozen=True)
class ReminderView:
    """A reminder the pathway raised on the case."""

    kind: str
    step: str
    recipients: list[str]
    due_at: datetime
    raised_at: datetime
    status: str


@dataclass(frozen=True)
class VarianceView:
    """A recorded departure from the guideline."""

    code: str
    step: str
    rule: str | None
    evidence: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class CaseView:
    """Everything a care team needs to see about one case."""

    id: str
    pathway: str
    definition_version: int
    patient_ref: str | None
    status: str
    version: int
    escalated: bool
    end: str | None
    ready_tasks: list[ReadyTask]
    deadlines: list[Deadline]
    reminders: list[ReminderView]
    variances: list[VarianceView]
    created_at: datetime
    updated_at: datetime
    cancel_reason: str | None


def script_engine(clock: Clock) -> SandboxScriptEngine:
    """Return the sandboxed script engine bound to a clock."""
    return SandboxScriptEngine(clock=clock)


def _lock(session: Session, case_id: str) -> Any:
    query = select(cases).where(cases.c.id == case_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise CaseNotFound(case_id)
    return row


def _ready_view(run: CaseRun) -> list[ReadyTask]:
    out = []
    for task in run.ready_tasks():
        step = run.pathway.step(task.task_spec.bpmn_id)
        described = (
            describe_step(step)
            if step
            else {"name": task.task_spec.bpmn_name, "role": None, "form": [], "evidence": {}}
        )
        out.append(
            ReadyTask(
                str(task.task_spec.bpmn_id),
                str(task.id),
                described["name"],
                described["role"],
                described["form"],
                described["evidence"],
            )
        )
    return out


def _write_events(session: Session, case_id: str, *, events: list[Event]) -> None:
    if events:
        session.execute(
            insert(case_events),
            [
                {
                    "case_id": case_id,
                    "at": e.at,
                    "type": e.type,
                    "step": e.step,
                    "actor": e.actor,
                    "detail": e.detail,
                    "evidence": e.evidence,
                }
                for e in events
            ],
        )


def _save(
    session: Session,
    *,
    run: CaseRun,
    case_id: str,
    version: int,
    now: datetime,
    patient_ref: str | None,
    status: str,
    cancel_reason: str | None = None,
) -> None:
    """Persist a run: state, version, timers, reminders, variances and events."""
    if status == ACTIVE and run.workflow.is_completed():
        status = ENDED
    values: dict[str, Any] = {
        "state": dump_state(run.workflow),
        "version": version + 1,
        "updated_at": now,
        "status": status,
        "patient_ref": patient_ref,
    }
    if status != ACTIVE:
        values["ended_at"] = now
    if run.end:
        values["end_event"] = run.end
    if cancel_reason is not None:
        values["cancel_reason"] = cancel_reason
    if any(r.escalate for r in run.reminders):
        values["escalated"] = True
    result = session.execute(
        update(cases).where(cases.c.id == case_id, cases.c.version == version).values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        actual = session.scalar(select(cases.c.version).where(cases.c.id == case_id))
        raise VersionConflict(case_id, version, int(actual or 0))
    session.execute(delete(case_timers).where(case_timers.c.case_id == case_id))
    timers = run.waiting_timers() if status == ACTIVE else []
    if timers:
        session.execute(
            insert(case_timers),
            [
                {
                    "case_id": case_id,
                    "task_id": t.task_id,
                    "step": t.step,
                    "deadline": t.deadline,
                    "due_at": t.due_at,
                }
                for t in timers
            ],
        )
    if run.reminders:
        session.execute(
            insert(reminders),
            [
                {
                    "case_id": case_id,
                    "kind": r.kind,
                    "step": r.step,
                    "recipients": list(r.recipients),
                    "due_at": r.due_at,
                    "raised_at": now,
                    "status": "pending",
                }
                for r in run.reminders
            ],
        )
    if run.variances:
        session.execute(
            insert(variances),
            [
                {
                    "case_id": case_id,
                    "code": v.code,
                    "step": v.step,
                    "rule": v.rule,
                    "evidence": v.evidence,
                    "at": now,
                }
                for v in run.variances
            ],
        )
    _write_events(session, case_id, events=run.events)


def start_case(
    session: Session,
    *,
    pathway: str,
    clock: Clock,
    actor: str | None,
    patient_ref: str | None = None,
) -> CaseView:
    """Start a case on the newest version of a pathway."""
    info = definitions.latest(session, pathway)
    loaded = definitions.load(session, info.id)
    from SpiffWorkflow.bpmn import BpmnWorkflow

    workflow = BpmnWorkflow(
        loaded.parsed.spec, loaded.parsed.subprocess_specs, script_engine=script_engine(clock)
    )
    case_id = str(uuid.uuid4())
    now = clock.now()
    run = CaseRun(case_id=case_id, workflow=workflow, pathway=loaded, clock=clock, actor=actor)
    run.start()
    session.execute(
        insert(cases).values(
            id=case_id,
            pathway=info.pathway,
            definition_id=info.id,
            patient_ref=patient_ref,
            status=ACTIVE,
            escalated=False,
            version=0,
            state=b"",
            created_at=now,
            updated_at=now,
        )
    )
    _save(
        session,
        run=run,
        case_id=case_id,
        version=0,
        now=now,
        patient_ref=patient_ref,
        status=ACTIVE,
    )
    log.info("case %s started on %s v%d", case_id, info.pathway, info.version)
    return get_case(session, case_id, clock=clock)


def advance(
    session: Session,
    *,
    case_id: str,
    clock: Clock,
    actor: str | None,
    action: Callable[[CaseRun], None],
    expected_version: int | None = None,
    new_status: str | None = None,
    cancel_reason: str | None = None,
) -> CaseRun:
    """Lock a case, act on its workflow, run it and save everything in the caller's transaction."""
    row = _lock(session, case_id)
    if expected_version is not None and row.version != expected_version:
        raise VersionConflict(case_id, expected_version, row.version)
    if row.status != ACTIVE:
        raise CaseClosed(case_id, row.status)
    loaded = definitions.load(session, row.definition_id)
    workflow = load_state(row.state, parsed=loaded.parsed, script_engine=script_engine(clock))
    raised = set(session.scalars(select(reminders.c.kind).where(reminders.c.case_id == case_id)))
    recorded = {
        (r.code, r.step)
        for r in session.execute(
            select(variances.c.code, variances.c.step).where(variances.c.case_id == case_id)
        )
    }
    run = CaseRun(
        case_id=case_id,
        workflow=workflow,
        pathway=loaded,
        clock=clock,
        actor=actor,
        raised_kinds=raised,
        recorded_variances=recorded,
    )
    action(run)
    patient_ref = run.patient_ref or row.patient_ref
    _save(
        session,
        run=run,
        case_id=case_id,
        version=row.version,
        now=clock.now(),
        patient_ref=patient_ref,
        status=new_status or row.status,
        cancel_reason=cancel_reason,
    )
    return run


def complete_task(
    session: Session,
    *,
    case_id: str,
    step: str,
    data: Any,
    clock: Clock,
    actor: str | None,
    expected_version: int | None = None,
) -> CaseView:
    """Complete a ready step with form data."""
    advance(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        expected_version=expected_version,
        action=lambda run: run.complete(step, data),
    )
    log.info("case %s: step %s completed", case_id, step)
    return get_case(session, case_id, clock=clock)


def deliver_message(
    session: Session,
    *,
    case_id: str,
    message: str,
    data: Any,
    clock: Clock,
    actor: str | None,
    expected_version: int | None = None,
) -> CaseView:
    """Deliver a message such as red_flag_reported; timers it interrupts are dropped."""
    advance(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        expected_version=expected_version,
        action=lambda run: run.deliver(message, data),
    )
    log.info("case %s: message %s delivered", case_id, message)
    return get_case(session, case_id, clock=clock)


def cancel_case(
    session: Session,
    *,
    case_id: str,
    reason: str,
    clock: Clock,
    actor: str | None,
    expected_version: int | None = None,
) -> CaseView:
    """Cancel a case with a reason; its timers stop and its pending reminders are cancelled."""
    reason = (reason or "").strip()
    if not reason:
        from .errors import FieldError, InvalidTaskData

        raise InvalidTaskData("cancel", [FieldError("reason", "is required")])
    advance(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        expected_version=expected_version,
        action=lambda run: run.cancel(reason),
        new_status=CANCELLED,
        cancel_reason=reason,
    )
    session.execute(
        update(reminders)
        .where(reminders.c.case_id == case_id, reminders.c.status == "pending")
        .values(status="cancelled")
    )
    log.info("case %s cancelled", case_id)
    return get_case(session, case_id, clock=clock)


def get_case(session: Session, case_id: str, *, clock: Clock) -> CaseView:
    """Read a case: status, version, ready steps, deadlines, reminders, variances, end."""
    row = session.execute(select(cases).where(cases.c.id == case_id)).first()
    if row is None:
        raise CaseNotFound(case_id)
    loaded = definitions.load(session, row.definition_id)
    ready: list[ReadyTask] = []
    if row.status == ACTIVE:
        workflow = load_state(row.state, parsed=loaded.parsed, script_engine=script_engine(clock))
        ready = _ready_view(
            CaseRun(case_id=case_id, workflow=workflow, pathway=loaded, clock=clock, actor=None)
        )
    deadlines = [
        Deadline(t.deadline or t.step, t.step, t.due_at, "waiting")
        for t in session.execute(
            select(case_timers)
            .where(case_timers.c.case_id == case_id)
            .order_by(case_timers.c.due_at)
        )
    ]
    raised = [
        ReminderView(r.kind, r.step, list(r.recipients), r.due_at, r.raised_at, r.status)
        for r in session.execute(
            select(reminders).where(reminders.c.case_id == case_id).order_by(reminders.c.id)
        )
    ]
    found = [
        VarianceView(v.code, v.step, v.rule, v.evidence, v.at)
        for v in session.execute(
            select(variances).where(variances.c.case_id == case_id).order_by(variances.c.id)
        )
    ]
    return CaseView(
        id=row.id,
        pathway=row.pathway,
        definition_version=loaded.info.version,
        patient_ref=row.patient_ref,
        status=row.status,
        version=row.version,
        escalated=row.escalated,
        end=row.end_event,
        ready_tasks=ready,
        deadlines=deadlines,
        reminders=raised,
        variances=found,
        created_at=row.created_at,
        updated_at=row.updated_at,
        cancel_reason=row.cancel_reason,
    )


def timeline(session: Session, case_id: str) -> list[Event]:
    """Return a case's audit log, oldest first."""
    if session.scalar(select(cases.c.id).where(cases.c.id == case_id)) is None:
        raise CaseNotFound(case_id)
    return [
        Event(
            type=e.type, at=e.at, step=e.step, actor=e.actor, detail=e.detail, evidence=e.evidence
        )
        for e in session.execute(
            select(case_events).where(case_events.c.case_id == case_id).order_by(case_events.c.id)
        )
    ]


def loaded_pathway(session: Session, case_id: str) -> Pathway:
    """Return the definition a case runs on."""
    row = session.execute(select(cases.c.definition_id).where(cases.c.id == case_id)).first()
    if row is None:
        raise CaseNotFound(case_id)
    return definitions.load(session, row.definition_id)
