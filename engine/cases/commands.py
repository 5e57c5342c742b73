"""Cases: start one, complete its steps, deliver messages, move deadlines, cancel it.

Every change goes through ``advance``: lock the case row, check its version, load, act, run
engine steps, save the state with a new version, rewrite its timer and ready-step rows, record
reminders, variances and audit events. The caller's transaction commits it all or nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .. import definitions
from ..clock import CLINICAL_RANGE, Clock, in_clinical_range
from ..errors import CaseClosed, FieldError, InvalidTaskData, VersionConflict
from ..inputs import normalise_patient_ref
from ..runtime import CaseRun, load_state_and_memo
from ..sandbox import script_engine
from ..store import cases, reminders, variances
from ..vocabulary import CaseStatus
from . import idempotency
from .persistence import Writes, cancel_unsent, lock, refuse_duplicate, save
from .views import CaseView, build_view

log = logging.getLogger(__name__)


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
        try:
            patient_ref = normalise_patient_ref(patient_ref)
        except ValueError as exc:
            raise InvalidTaskData("case", [FieldError("patient_ref", str(exc))]) from None
        refuse_duplicate(session, pathway=pathway, patient_ref=patient_ref)
    info = definitions.latest(session, pathway)
    loaded = definitions.load(session, info.id)
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
        "status": CaseStatus.ACTIVE,
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
    record = save(
        session,
        run=run,
        row=initial,
        now=now,
        patient_ref=run.patient_ref or patient_ref,
        status=CaseStatus.ACTIVE,
    )
    if idempotency_key is not None:
        idempotency.remember(
            session,
            actor=actor,
            idempotency_key=idempotency_key,
            pathway=pathway,
            patient_ref=patient_ref,
            first_step_data=first_step_data,
            case_id=case_id,
            now=now,
        )
    log.info("case %s started on %s v%d", case_id, info.pathway, info.version)
    return _view_after(session, run, record=record, clock=clock)


def _memo_from_rows(session: Session, case_id: str) -> dict[str, Any]:
    """The memo of a state written before the engine kept one beside the workflow."""
    return {
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


def restore(
    session: Session,
    row: dict[str, Any],
    *,
    clock: Clock,
    actor: str | None,
    roles: frozenset[str] | None = None,
) -> CaseRun:
    """Restore a locked case row's workflow (its definition from the cache) as a run."""
    loaded = definitions.load(session, row["definition_id"], bundle_sha256=row.pop("bundle_sha256"))
    workflow, memo = load_state_and_memo(
        row["state"], parsed=loaded.parsed, script_engine=script_engine(clock)
    )
    return CaseRun(
        case_id=row["id"],
        workflow=workflow,
        pathway=loaded,
        clock=clock,
        actor=actor,
        memo=memo if memo is not None else _memo_from_rows(session, row["id"]),
        roles=roles,
        patient_ref=row["patient_ref"],
    )


def advance(
    session: Session,
    *,
    case_id: str,
    clock: Clock,
    actor: str | None,
    action: Callable[[CaseRun], None],
    expected_version: int | None = None,
    roles: frozenset[str] | None = None,
    new_status: CaseStatus | None = None,
    cancel_reason: str | None = None,
    row: dict[str, Any] | None = None,
    writes: Writes | None = None,
) -> tuple[CaseRun, dict[str, Any]]:
    """Lock a case, act on its workflow, run it and save everything in the caller's
    transaction; return the run and the case row as saved. ``row``: the case's, already locked;
    ``writes``: gathers the rows beside the case's, for the caller to flush (``fire_due``)."""
    row = row if row is not None else lock(session, case_id)._asdict()
    if expected_version is not None and row["version"] != expected_version:
        raise VersionConflict(case_id, expected_version, row["version"])
    if row["status"] != CaseStatus.ACTIVE:
        raise CaseClosed(case_id, row["status"])
    run = restore(session, row, clock=clock, actor=actor, roles=roles)
    action(run)
    if run.patient_ref and run.patient_ref != row["patient_ref"]:
        refuse_duplicate(
            session, pathway=row["pathway"], patient_ref=run.patient_ref, case_id=case_id
        )
    record = save(
        session,
        run=run,
        row=row,
        now=clock.now(),
        patient_ref=run.patient_ref or row["patient_ref"],
        status=new_status or CaseStatus(row["status"]),
        cancel_reason=cancel_reason,
        writes=writes,
    )
    return run, record


def _view_after(
    session: Session, run: CaseRun, *, record: dict[str, Any], clock: Clock
) -> CaseView:
    active = record["status"] == CaseStatus.ACTIVE
    memo = run.journal.memo()
    return build_view(
        session,
        record,
        version=run.pathway.info.version,
        ready=run.ready_steps() if active else [],
        timers=run.waiting_timers() if active else [],
        bounds=run.deadline_bounds() if active else {},
        clock=clock,
        # The memo lists every reminder and variance the case has had: none means no rows.
        reminders_known=None if memo["reminders"] else [],
        variances_known=None if memo["variances"] else [],
    )


def _command(
    session: Session,
    *,
    case_id: str,
    clock: Clock,
    actor: str | None,
    action: Callable[[CaseRun], None],
    done: str,
    expected_version: int | None,
    roles: frozenset[str] | None = None,
    new_status: CaseStatus | None = None,
    cancel_reason: str | None = None,
    after: Callable[[CaseRun], object] | None = None,
) -> CaseView:
    """One command on one case: advance it, do what follows in the same transaction, log
    what was done (never its data), and return the case as it now stands."""
    run, record = advance(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        roles=roles,
        expected_version=expected_version,
        action=action,
        new_status=new_status,
        cancel_reason=cancel_reason,
    )
    if after is not None:
        after(run)
    log.info("case %s: %s", case_id, done)
    return _view_after(session, run, record=record, clock=clock)


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
    return _command(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        roles=roles,
        expected_version=expected_version,
        action=lambda run: run.complete(step, data),
        done=f"step {step} completed",
    )


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

    def cancel_interrupted(run: CaseRun) -> None:
        if run.interrupted:
            inside = [
                s.id
                for s in run.pathway.steps.values()
                if s.id == run.interrupted or run.interrupted in s.within
            ]
            cancel_unsent(session, case_id=case_id, steps=inside)

    return _command(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        roles=roles,
        expected_version=expected_version,
        action=lambda run: run.deliver(message, data),
        after=cancel_interrupted,
        done=f"message {message} delivered",
    )


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
    roles: frozenset[str] | None = None,
) -> CaseView:
    """Move a waiting deadline's timer to a new due time, with the reason in the audit log,
    within the limits the diagram sets (some moves need a role of it: ``roles``)."""
    reason = _required_reason(reason, "reschedule")
    if due_at.tzinfo is None:
        raise InvalidTaskData("reschedule", [FieldError("due_at", "must include a timezone")])
    if not in_clinical_range(due_at):
        raise InvalidTaskData("reschedule", [FieldError("due_at", f"must be {CLINICAL_RANGE}")])
    return _command(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        expected_version=expected_version,
        roles=roles,
        action=lambda run: run.reschedule(kind, due_at, reason),
        done=f"deadline {kind} rescheduled",
    )


def amend_task(
    session: Session,
    *,
    case_id: str,
    step: str,
    data: Any,
    reason: str,
    clock: Clock,
    actor: str | None,
    expected_version: int | None = None,
    roles: frozenset[str] | None = None,
) -> CaseView:
    """Correct fields of a step the case completed, by the step's role, with a reason; the
    timeline keeps the old and new values (see ``runtime.amendments``)."""
    reason = _required_reason(reason, "amend")
    return _command(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        roles=roles,
        expected_version=expected_version,
        action=lambda run: run.amend(step, data, reason),
        done=f"step {step} amended",
    )


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
    return _command(
        session,
        case_id=case_id,
        clock=clock,
        actor=actor,
        expected_version=expected_version,
        action=lambda run: run.cancel(reason),
        new_status=CaseStatus.CANCELLED,
        cancel_reason=reason,
        after=lambda _run: cancel_unsent(session, case_id=case_id),
        done="cancelled",
    )
