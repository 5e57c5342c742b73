"""Cases: start one, complete its steps, deliver messages, move deadlines, cancel it.

Every change goes through ``advance``: lock the case row, check its version, load, act, run
engine steps, save the state with a new version, rewrite its timer and ready-step rows,
record reminders, variances and audit events. The caller's transaction commits it all or
nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from . import definitions
from .clock import Clock
from .errors import (
    CaseClosed,
    CaseNotFound,
    DuplicateCase,
    FieldError,
    IdempotencyKeyReused,
    InvalidTaskData,
    VersionConflict,
)
from .execution import CaseRun, Event
from .reminders import cancel_unsent
from .state import dump_state, load_state_and_memo
from .store import (
    case_events,
    case_tasks,
    case_timers,
    cases,
    idempotency_keys,
    reminders,
    variances,
)
from .store import (
    definitions as definitions_table,
)
from .views import ACTIVE, CANCELLED, ENDED, CaseView, build_view, script_engine

log = logging.getLogger(__name__)


# The statements every change runs, built once: building them per call (and coercing their
# values) was a measurable share of a change's CPU.
_READ_CASE = (
    select(cases, definitions_table.c.bundle_sha256)
    .join(definitions_table, definitions_table.c.id == cases.c.definition_id)
    .where(cases.c.id == bindparam("case_id"))
)
_LOCK_CASE = _READ_CASE.with_for_update(of=cases)
_DELETE_READY = delete(case_tasks).where(
    case_tasks.c.case_id == bindparam("case_id"),
    case_tasks.c.task_id.in_(bindparam("gone", expanding=True)),
)
_DELETE_TIMERS = delete(case_timers).where(case_timers.c.case_id == bindparam("case_id"))
_CHANGING = (
    "state",
    "version",
    "updated_at",
    "status",
    "patient_ref",
    "ended_at",
    "end_event",
    "cancel_reason",
    "escalated",
)
_UPDATE_CASE = (
    update(cases)
    .where(cases.c.id == bindparam("case_id"), cases.c.version == bindparam("seen_version"))
    .values({name: bindparam(name) for name in _CHANGING})
)


def _lock(session: Session, case_id: str) -> Any:
    postgres = session.get_bind().dialect.name == "postgresql"
    row = session.execute(_LOCK_CASE if postgres else _READ_CASE, {"case_id": case_id}).first()
    if row is None:
        raise CaseNotFound(case_id)
    return row


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


def _replace_rows(
    session: Session,
    *,
    removal: tuple[Any, dict[str, Any]] | None,
    table: Any,
    rows: list[dict[str, Any]],
) -> None:
    """Delete some rows (a prebuilt statement and its parameters) and insert others.
    (Folding both into one PostgreSQL statement saved a round trip but cost more CPU,
    compiling it anew each time, than it saved.)"""
    if removal is not None:
        session.execute(*removal)
    if rows:
        session.execute(insert(table), rows)


def _write_ready(
    session: Session, case_id: str, *, run: CaseRun, active: bool, now: datetime
) -> None:
    """Update the case's ready-step rows (what worklists read): drop the steps that are no
    longer ready or whose due time moved, add the new ones; untouched rows keep their ready_at."""
    before = {(r.task_id, r.due_at, r.urgent): r for r in run.ready_steps_before}
    after = {(r.task_id, r.due_at, r.urgent): r for r in run.ready_steps()} if active else {}
    gone = [key[0] for key in before if key not in after]
    new = [r for key, r in after.items() if key not in before]
    _replace_rows(
        session,
        removal=(_DELETE_READY, {"case_id": case_id, "gone": gone}) if gone else None,
        table=case_tasks,
        rows=[
            {
                "case_id": case_id,
                "task_id": r.task_id,
                "step": r.step_id,
                "name": r.step.name if r.step else None,
                "role": r.step.role if r.step else None,
                "urgent": r.urgent,
                "due_at": r.due_at,
                "ready_at": now,
            }
            for r in new
        ],
    )


def _write_timers(session: Session, case_id: str, *, run: CaseRun, active: bool) -> None:
    """Rewrite the case's timer rows when its waiting timers changed (or it closed)."""
    if active and not run.timers_changed():
        return
    _replace_rows(
        session,
        removal=(_DELETE_TIMERS, {"case_id": case_id}),
        table=case_timers,
        rows=[
            {
                "case_id": case_id,
                "task_id": t.task_id,
                "step": t.step,
                "deadline": t.deadline,
                "due_at": t.due_at,
            }
            for t in (run.waiting_timers() if active else [])
        ],
    )


def _save(
    session: Session,
    *,
    run: CaseRun,
    row: dict[str, Any],
    now: datetime,
    patient_ref: str | None,
    status: str,
    cancel_reason: str | None = None,
) -> dict[str, Any]:
    """Persist a run: state, version, timers, ready steps, reminders, variances, events;
    return the case row as it now stands."""
    case_id, version = row["id"], row["version"]
    if status == ACTIVE and run.workflow.is_completed():
        status = ENDED
    values: dict[str, Any] = {
        "state": dump_state(run.workflow, run.memo()),
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
    saved = {**row, **values}
    result = session.execute(
        _UPDATE_CASE,
        {"case_id": case_id, "seen_version": version, **{c: saved[c] for c in _CHANGING}},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        actual = session.scalar(select(cases.c.version).where(cases.c.id == case_id))
        raise VersionConflict(case_id, version, int(actual or 0))
    active = status == ACTIVE
    _write_timers(session, case_id, run=run, active=active)
    _write_ready(session, case_id, run=run, active=active, now=now)
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
    return saved


def _refuse_duplicate(
    session: Session, *, pathway: str, patient_ref: str, case_id: str | None = None
) -> None:
    """One active case per patient and pathway (the database enforces it too)."""
    query = select(cases.c.id).where(
        cases.c.pathway == pathway, cases.c.patient_ref == patient_ref, cases.c.status == ACTIVE
    )
    if case_id is not None:
        query = query.where(cases.c.id != case_id)
    existing = session.scalar(query)
    if existing is not None:
        raise DuplicateCase(pathway, existing)


def _fingerprint(**request: Any) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def replay_start(
    session: Session,
    *,
    actor: str | None,
    idempotency_key: str,
    pathway: str,
    patient_ref: str | None,
    first_step_data: dict[str, Any] | None,
    clock: Clock,
) -> CaseView | None:
    """Return the case an earlier identical request with this key started, if there was one.

    The same key with a different request is refused: a key names one request.
    """
    seen = session.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.principal == (actor or ""), idempotency_keys.c.key == idempotency_key
        )
    ).first()
    if seen is None:
        return None
    if seen.request_sha256 != _fingerprint(
        pathway=pathway, patient_ref=patient_ref, data=first_step_data
    ):
        raise IdempotencyKeyReused(idempotency_key)
    from .views import get_case

    return get_case(session, seen.case_id, clock=clock)


def start_case(
    session: Session,
    *,
    pathway: str,
    clock: Clock,
    actor: str | None,
    patient_ref: str | None = None,
    first_step_data: dict[str, Any] | None = None,
    roles: frozenset[str] | None = None,
    idempotency_key: str | None = None,
) -> CaseView:
    """Start a case on the newest version of a pathway.

    ``first_step_data`` completes the pathway's first step (intake) in the same transaction.
    An ``idempotency_key`` is recorded so that ``replay_start`` finds this case again.
    """
    if patient_ref is not None:
        _refuse_duplicate(session, pathway=pathway, patient_ref=patient_ref)
    info = definitions.latest(session, pathway)
    loaded = definitions.load(session, info.id)
    from SpiffWorkflow.bpmn import BpmnWorkflow

    workflow = BpmnWorkflow(
        loaded.parsed.spec, loaded.parsed.subprocess_specs, script_engine=script_engine(clock)
    )
    case_id = str(uuid.uuid4())
    now = clock.now()
    run = CaseRun(
        case_id=case_id,
        workflow=workflow,
        pathway=loaded,
        clock=clock,
        actor=actor,
        roles=roles,
        patient_ref=patient_ref,
    )
    run.start()
    if first_step_data is not None:
        ready = run.ready_step_ids()
        if len(ready) != 1:
            raise InvalidTaskData(
                "data", [FieldError("data", "this pathway has no single first step to fill in")]
            )
        run.complete(ready[0], first_step_data)
    initial: dict[str, Any] = {
        "id": case_id,
        "pathway": info.pathway,
        "definition_id": info.id,
        "patient_ref": patient_ref,
        "status": ACTIVE,
        "end_event": None,
        "escalated": False,
        "version": 0,
        "state": b"",
        "created_at": now,
        "updated_at": now,
        "ended_at": None,
        "cancel_reason": None,
    }
    session.execute(insert(cases).values(**initial))
    record = _save(
        session,
        run=run,
        row=initial,
        now=now,
        patient_ref=run.patient_ref or patient_ref,
        status=ACTIVE,
    )
    if idempotency_key is not None:
        session.execute(
            insert(idempotency_keys).values(
                principal=actor or "",
                key=idempotency_key,
                request_sha256=_fingerprint(
                    pathway=pathway, patient_ref=patient_ref, data=first_step_data
                ),
                case_id=case_id,
                created_at=now,
            )
        )
    log.info("case %s started on %s v%d", case_id, info.pathway, info.version)
    return _view_after(session, run, record=record, clock=clock)


def advance(
    session: Session,
    *,
    case_id: str,
    clock: Clock,
    actor: str | None,
    action: Callable[[CaseRun], None],
    expected_version: int | None = None,
    roles: frozenset[str] | None = None,
    new_status: str | None = None,
    cancel_reason: str | None = None,
) -> tuple[CaseRun, dict[str, Any]]:
    """Lock a case, act on its workflow, run it and save everything in the caller's
    transaction; return the run and the case row as saved."""
    locked = _lock(session, case_id)
    row = locked._asdict()
    if expected_version is not None and row["version"] != expected_version:
        raise VersionConflict(case_id, expected_version, row["version"])
    if row["status"] != ACTIVE:
        raise CaseClosed(case_id, row["status"])
    loaded = definitions.load(session, row["definition_id"], bundle_sha256=row.pop("bundle_sha256"))
    workflow, memo = load_state_and_memo(
        row["state"], parsed=loaded.parsed, script_engine=script_engine(clock)
    )
    if memo is None:  # written before the engine kept a memo in the state
        memo = {
            "reminders": list(
                session.scalars(select(reminders.c.kind).where(reminders.c.case_id == case_id))
            ),
            "variances": [
                [r.code, r.step]
                for r in session.execute(
                    select(variances.c.code, variances.c.step).where(variances.c.case_id == case_id)
                )
            ],
        }
    run = CaseRun(
        case_id=case_id,
        workflow=workflow,
        pathway=loaded,
        clock=clock,
        actor=actor,
        raised_kinds=set(memo.get("reminders", [])),
        recorded_variances={(code, step) for code, step in memo.get("variances", [])},
        roles=roles,
        patient_ref=row["patient_ref"],
    )
    action(run)
    if run.patient_ref and run.patient_ref != row["patient_ref"]:
        _refuse_duplicate(
            session, pathway=row["pathway"], patient_ref=run.patient_ref, case_id=case_id
        )
    record = _save(
        session,
        run=run,
        row=row,
        now=clock.now(),
        patient_ref=run.patient_ref or row["patient_ref"],
        status=new_status or row["status"],
        cancel_reason=cancel_reason,
    )
    return run, record


def _view_after(
    session: Session, run: CaseRun, *, record: dict[str, Any], clock: Clock
) -> CaseView:
    active = record["status"] == ACTIVE
    memo = run.memo()
    return build_view(
        session,
        record,
        version=run.pathway.info.version,
        ready=run.ready_steps() if active else [],
        timers=run.waiting_timers() if active else [],
        clock=clock,
        # The memo lists every reminder and variance the case has had: none means no rows.
        reminders_known=None if memo["reminders"] else [],
        variances_known=None if memo["variances"] else [],
    )


def complete_task(
    session: Session,
    *,
    case_id: str,
    step: str,
    data: Any,
    clock: Clock,
    actor: str | None,
    expected_version: int | None = None,
    roles: frozenset[str] | None = None,
) -> CaseView:
    """Complete a ready step with form data (by a role the pathway allows, when roles are given)."""
    run, record = advance(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        roles=roles,
        expected_version=expected_version,
        action=lambda run: run.complete(step, data),
    )
    log.info("case %s: step %s completed", case_id, step)
    return _view_after(session, run, record=record, clock=clock)


def deliver_message(
    session: Session,
    *,
    case_id: str,
    message: str,
    data: Any,
    clock: Clock,
    actor: str | None,
    expected_version: int | None = None,
    roles: frozenset[str] | None = None,
) -> CaseView:
    """Deliver a message such as red_flag_reported. When it interrupts an activity, that
    activity's timers are dropped and its reminders not yet sent are cancelled."""
    run, record = advance(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        roles=roles,
        expected_version=expected_version,
        action=lambda run: run.deliver(message, data),
    )
    if run.interrupted:
        inside = [
            s.id
            for s in run.pathway.steps.values()
            if s.id == run.interrupted or run.interrupted in s.within
        ]
        cancel_unsent(session, case_id=case_id, steps=inside)
    log.info("case %s: message %s delivered", case_id, message)
    return _view_after(session, run, record=record, clock=clock)


def _required_reason(reason: str | None, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidTaskData(what, [FieldError("reason", "is required")])
    return reason


def reschedule_deadline(
    session: Session,
    *,
    case_id: str,
    kind: str,
    due_at: datetime,
    reason: str,
    clock: Clock,
    actor: str | None,
    expected_version: int | None = None,
) -> CaseView:
    """Move a waiting deadline's timer to a new due time, with the reason in the audit log."""
    reason = _required_reason(reason, "reschedule")
    if due_at.tzinfo is None:
        raise InvalidTaskData("reschedule", [FieldError("due_at", "must include a timezone")])
    run, record = advance(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        expected_version=expected_version,
        action=lambda run: run.reschedule(kind, due_at, reason),
    )
    log.info("case %s: deadline %s rescheduled", case_id, kind)
    return _view_after(session, run, record=record, clock=clock)


def cancel_case(
    session: Session,
    *,
    case_id: str,
    reason: str,
    clock: Clock,
    actor: str | None,
    expected_version: int | None = None,
) -> CaseView:
    """Cancel a case with a reason; its timers stop and its unsent reminders are cancelled."""
    reason = _required_reason(reason, "cancel")
    run, record = advance(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        expected_version=expected_version,
        action=lambda run: run.cancel(reason),
        new_status=CANCELLED,
        cancel_reason=reason,
    )
    cancel_unsent(session, case_id=case_id)
    log.info("case %s cancelled", case_id)
    return _view_after(session, run, record=record, clock=clock)
