"""Writing a case's rows: the case itself (state, version, status), its timer and ready-step
rows, and the reminders, variances and audit events a run raised. All in the caller's
transaction; nothing here commits. The rows beside the case row are gathered in ``Writes``
and written one statement per table, so a batch of cases (``fire_due``) writes each table
once for all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from ..errors import CaseNotFound, DuplicateCase, VersionConflict
from ..runtime import CaseRun, dump_state
from ..store import (
    case_events,
    case_task_roles,
    case_tasks,
    case_timers,
    cases,
    reminders,
    variances,
)
from ..store import definitions as definitions_table
from ..vocabulary import CaseStatus, ReminderStatus

# The statements every change runs, built once: building them per call (and coercing their
# values) was a measurable share of a change's CPU.
# The definition's hash comes from a subquery, not a join: PostgreSQL re-reads a row locked
# FOR UPDATE once the lock is granted, and a join would drop a case whose definition changed
# meanwhile (a migration), answering "not found" for a case that exists.
_CASE_ROW = select(
    cases,
    select(definitions_table.c.bundle_sha256)
    .where(definitions_table.c.id == cases.c.definition_id)
    .scalar_subquery()
    .label("bundle_sha256"),
)
_READ_CASE = _CASE_ROW.where(cases.c.id == bindparam("case_id"))
_LOCK_CASE = _READ_CASE.with_for_update(of=cases)
_READ_CASES = _CASE_ROW.where(cases.c.id.in_(bindparam("case_ids", expanding=True)))
_DELETE_READY = delete(case_tasks).where(
    case_tasks.c.case_id == bindparam("case_id"),
    case_tasks.c.task_id.in_(bindparam("gone", expanding=True)),
)
_MOVE_READY = (
    update(case_tasks)
    .where(case_tasks.c.case_id == bindparam("case"), case_tasks.c.task_id == bindparam("task"))
    .values(due_at=bindparam("due"), urgent=bindparam("urgent_now"), ready_at=bindparam("at"))
)
_DELETE_TIMERS = delete(case_timers).where(
    case_timers.c.case_id.in_(bindparam("case_ids", expanding=True))
)
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


def lock(session: Session, case_id: str) -> Any:
    postgres = session.get_bind().dialect.name == "postgresql"
    row = session.execute(_LOCK_CASE if postgres else _READ_CASE, {"case_id": case_id}).first()
    if row is None:
        raise CaseNotFound(case_id)
    return row


def read_locked(session: Session, case_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rows of cases this transaction has already locked (``lock_due_cases``), in one
    query, by id; a case that no longer exists is left out."""
    if not case_ids:
        return {}
    return {row.id: row._asdict() for row in session.execute(_READ_CASES, {"case_ids": case_ids})}


@dataclass
class Writes:
    """The rows a change writes beside its case row: timers, ready steps and their roles,
    reminders, variances, audit events. ``save`` gathers them here and ``flush`` writes them
    in one statement per kind, so a caller saving many cases in one transaction (``fire_due``)
    writes each kind once for all of them. Rows keep their order: each case's, case by case."""

    timers_of: list[str] = field(default_factory=list)  # cases whose timer rows are rewritten
    timers: list[dict[str, Any]] = field(default_factory=list)
    ready_gone: dict[str, list[str]] = field(default_factory=dict)  # case id: task ids
    ready_moved: list[dict[str, Any]] = field(default_factory=list)
    ready_new: list[dict[str, Any]] = field(default_factory=list)
    ready_roles: list[dict[str, Any]] = field(default_factory=list)
    reminders: list[dict[str, Any]] = field(default_factory=list)
    variances: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def flush(self, session: Session) -> None:
        """Write what was gathered, in an order the foreign keys accept (once: a ``Writes``
        serves one flush)."""
        if self.timers_of:
            session.execute(_DELETE_TIMERS, {"case_ids": self.timers_of})
        for case_id, gone in self.ready_gone.items():  # their roles go too (ON DELETE CASCADE)
            session.execute(_DELETE_READY, {"case_id": case_id, "gone": gone})
        if self.ready_moved:
            session.execute(_MOVE_READY, self.ready_moved)
        for table, rows in (
            (case_timers, self.timers),
            (case_tasks, self.ready_new),
            (case_task_roles, self.ready_roles),
            (reminders, self.reminders),
            (variances, self.variances),
            (case_events, self.events),
        ):
            if rows:
                session.execute(insert(table), rows)


def _gather_ready(
    writes: Writes, case_id: str, *, run: CaseRun, active: bool, now: datetime
) -> None:
    """The case's ready-step rows (what worklists read): drop the steps that are no longer
    ready, move in place those whose due time or urgency changed, add the new ones with their
    roles; untouched rows keep their ready_at."""
    before = {r.task_id: r for r in run.ready_steps_before}
    after = {r.task_id: r for r in run.ready_steps()} if active else {}
    gone = [task_id for task_id in before if task_id not in after]
    if gone:
        writes.ready_gone[case_id] = gone
    writes.ready_moved += [
        {"case": case_id, "task": r.task_id, "due": r.due_at, "urgent_now": r.urgent, "at": now}
        for task_id, r in after.items()
        if task_id in before
        and (before[task_id].due_at, before[task_id].urgent) != (r.due_at, r.urgent)
    ]
    new = [r for task_id, r in after.items() if task_id not in before]
    writes.ready_new += [
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
    ]
    writes.ready_roles += [
        {"case_id": case_id, "task_id": r.task_id, "role": role}
        for r in new
        if r.step is not None
        for role in r.step.roles
    ]


def _gather(writes: Writes, case_id: str, *, run: CaseRun, active: bool, now: datetime) -> None:
    if not active or run.timers_changed():  # timer rows are rewritten only when they changed
        writes.timers_of.append(case_id)
        writes.timers += [
            {
                "case_id": case_id,
                "task_id": t.task_id,
                "step": t.step,
                "deadline": t.deadline,
                "due_at": t.due_at,
            }
            for t in (run.waiting_timers() if active else [])
        ]
    _gather_ready(writes, case_id, run=run, active=active, now=now)
    writes.reminders += [
        {
            "case_id": case_id,
            "kind": r.kind,
            "step": r.step,
            "recipients": list(r.recipients),
            "due_at": r.due_at,
            "raised_at": now,
            "status": ReminderStatus.PENDING,
        }
        for r in run.journal.reminders
    ]
    writes.variances += [
        {
            "case_id": case_id,
            "code": v.code,
            "step": v.step,
            "rule": v.rule,
            "evidence": v.evidence,
            "at": now,
        }
        for v in run.journal.variances
    ]
    writes.events += [
        {
            "case_id": case_id,
            "at": e.at,
            "type": e.type,
            "step": e.step,
            "actor": e.actor,
            "detail": e.detail,
            "evidence": e.evidence,
        }
        for e in run.journal.events
    ]


def save(
    session: Session,
    *,
    run: CaseRun,
    row: dict[str, Any],
    now: datetime,
    patient_ref: str | None,
    status: CaseStatus,
    cancel_reason: str | None = None,
    writes: Writes | None = None,
) -> dict[str, Any]:
    """Persist a run: state, version, timers, ready steps, reminders, variances, events;
    return the case row as it now stands. The case row is written at once (its version
    checked: VersionConflict, with nothing of this case written); the other rows go into
    ``writes`` when given, for the caller to flush, and are written before returning if not."""
    case_id, version = row["id"], row["version"]
    if status == CaseStatus.ACTIVE and run.workflow.is_completed():
        status = CaseStatus.ENDED
    values: dict[str, Any] = {
        "state": dump_state(run.workflow, run.journal.memo()),
        "version": version + 1,
        "updated_at": now,
        "status": status,
        "patient_ref": patient_ref,
    }
    if status != CaseStatus.ACTIVE:
        values["ended_at"] = now
    if run.end:
        values["end_event"] = run.end
    if cancel_reason is not None:
        values["cancel_reason"] = cancel_reason
    if any(r.escalate for r in run.journal.reminders):
        values["escalated"] = True
    saved = {**row, **values}
    result = session.execute(
        _UPDATE_CASE,
        {"case_id": case_id, "seen_version": version, **{c: saved[c] for c in _CHANGING}},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        actual = session.scalar(select(cases.c.version).where(cases.c.id == case_id))
        raise VersionConflict(case_id, version, int(actual or 0))
    own = writes if writes is not None else Writes()
    _gather(own, case_id, run=run, active=status == CaseStatus.ACTIVE, now=now)
    if writes is None:
        own.flush(session)
    return saved


def refuse_duplicate(
    session: Session, *, pathway: str, patient_ref: str, case_id: str | None = None
) -> None:
    """One active case per patient and pathway (the database enforces it too)."""
    query = select(cases.c.id).where(
        cases.c.pathway == pathway,
        cases.c.patient_ref == patient_ref,
        cases.c.status == CaseStatus.ACTIVE,
    )
    if case_id is not None:
        query = query.where(cases.c.id != case_id)
    existing = session.scalar(query)
    if existing is not None:
        raise DuplicateCase(pathway, existing)


def cancel_unsent(session: Session, *, case_id: str, steps: list[str] | None = None) -> int:
    """Cancel a case's reminders not yet sent (pending, or enqueued and not yet claimed), or
    only those raised by the given steps; return how many. A claim then finds nothing."""
    conditions = [
        reminders.c.case_id == case_id,
        reminders.c.status.in_((ReminderStatus.PENDING, ReminderStatus.ENQUEUED)),
    ]
    if steps is not None:
        conditions.append(reminders.c.step.in_(steps))
    result = session.execute(
        update(reminders).where(*conditions).values(status=ReminderStatus.CANCELLED)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
