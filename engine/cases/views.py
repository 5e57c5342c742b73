"""What a care team sees of a case: ready steps with their forms and due times, deadlines,
reminders, variances, and the audit timeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import definitions
from ..clock import Clock
from ..errors import CaseNotFound
from ..runtime import CaseRun, Event, ReadyStep, WaitingTimer, load_state
from ..sandbox import script_engine
from ..store import case_events, case_timers, cases, reminders, variances
from ..vocabulary import CaseStatus, EventType, ReminderStatus


@dataclass(frozen=True)
class ReadyTask:
    """A step a person can complete now."""

    id: str
    task_id: str
    name: str | None
    role: str | None
    form: list[dict[str, Any]]
    evidence: dict[str, Any]
    urgent: bool
    due_at: datetime | None
    overdue: bool


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
    status: ReminderStatus
    attempts: int = 0
    sent_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class VarianceView:
    """A recorded departure from the guideline."""

    code: str
    step: str
    rule: str | None
    evidence: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class RecordEntry:
    """One field of the case's clinical record: its current value and who entered it."""

    step: str
    field: str
    value: Any
    entered_by: str | None
    entered_at: datetime
    recorded: bool = True
    """False for a step completed before values were kept (its value is then unknown)."""


@dataclass(frozen=True)
class DecisionView:
    """A decision the pathway took: its outputs and the rule that matched."""

    step: str
    decision: str
    outputs: dict[str, Any]
    rule: str | None
    rule_text: str | None
    at: datetime


@dataclass(frozen=True)
class CaseView:
    """Everything a care team needs to see about one case."""

    id: str
    pathway: str
    definition_version: int
    patient_ref: str | None
    status: CaseStatus
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
    record: list[RecordEntry]
    decisions: list[DecisionView]


_RECORDED = (
    EventType.TASK_COMPLETED,
    EventType.MESSAGE,
    EventType.DECISION,
    EventType.TASK_AMENDED,
)


def clinical_record(
    session: Session, case_id: str, *, patient_ref: str | None
) -> tuple[list[RecordEntry], list[DecisionView]]:
    """What was entered on the case, field by field as it now stands, and every decision
    taken: read from the timeline, where each completed step keeps the values entered (but
    the patient reference, which is the case's own)."""
    fields: dict[tuple[str, str], RecordEntry] = {}
    decisions: list[DecisionView] = []
    rows = session.execute(
        select(
            case_events.c.type,
            case_events.c.step,
            case_events.c.actor,
            case_events.c.at,
            case_events.c.detail,
        )
        .where(case_events.c.case_id == case_id, case_events.c.type.in_(_RECORDED))
        .order_by(case_events.c.id)
    )
    for row in rows:
        detail = row.detail or {}
        step = row.step or ""
        if row.type == EventType.DECISION:
            decisions.append(
                DecisionView(
                    step,
                    detail.get("decision") or step,
                    detail.get("outputs") or {},
                    detail.get("rule"),
                    detail.get("rule_text"),
                    row.at,
                )
            )
            continue
        if row.type == EventType.TASK_AMENDED:  # a correction: the new value, and who made it
            for name, change in (detail.get("changes") or {}).items():
                fields[(step, name)] = RecordEntry(step, name, change.get("to"), row.actor, row.at)
            continue
        values: dict[str, Any] | None
        if row.type == EventType.MESSAGE:  # a report: the findings it said were present
            values = dict.fromkeys(detail.get("reported") or (), True)
            names = list(values)
        else:
            values = detail.get("values")
            names = list(detail.get("fields") or ())
            if values is not None and "patient_ref" in names:
                values = {**values, "patient_ref": patient_ref}
        for name in names:
            known = values is not None and name in values
            fields[(step, name)] = RecordEntry(
                step,
                name,
                values.get(name) if values is not None else None,
                row.actor,
                row.at,
                known,
            )
    return list(fields.values()), decisions


def ready_task(ready: ReadyStep, *, now: datetime) -> ReadyTask:
    """Describe a ready step for people: name, role, form, evidence, due time."""
    step = ready.step
    return ReadyTask(
        id=ready.step_id,
        task_id=ready.task_id,
        name=step.name if step else None,
        role=step.role if step else None,
        form=step.form.describe() if step and step.form else [],
        evidence=step.evidence.describe() if step else {},
        urgent=ready.urgent,
        due_at=ready.due_at,
        overdue=ready.due_at is not None and ready.due_at <= now,
    )


def build_view(
    session: Session,
    row: Mapping[str, Any],
    *,
    version: int,
    ready: list[ReadyStep],
    clock: Clock,
    timers: list[WaitingTimer] | None = None,
    reminders_known: list[ReminderView] | None = None,
    variances_known: list[VarianceView] | None = None,
) -> CaseView:
    """Assemble a case view from its row, its definition version and its ready steps; timers,
    reminders and variances are read from their rows unless the caller already knows them."""
    case_id = row["id"]
    now = clock.now()
    if timers is None:
        timers = [
            WaitingTimer(t.task_id, t.step, t.deadline, t.due_at)
            for t in session.execute(select(case_timers).where(case_timers.c.case_id == case_id))
        ]
    deadlines = [
        Deadline(t.deadline or t.step, t.step, t.due_at, "waiting" if t.due_at > now else "due")
        for t in sorted(timers, key=lambda t: t.due_at)
    ]
    raised = reminders_known
    if raised is None:
        raised = [
            ReminderView(
                r.kind,
                r.step,
                list(r.recipients),
                r.due_at,
                r.raised_at,
                ReminderStatus(r.status),
                r.attempts,
                r.sent_at,
                r.last_error,
            )
            for r in session.execute(
                select(reminders).where(reminders.c.case_id == case_id).order_by(reminders.c.id)
            )
        ]
    found = variances_known
    if found is None:
        found = [
            VarianceView(v.code, v.step, v.rule, v.evidence, v.at)
            for v in session.execute(
                select(variances).where(variances.c.case_id == case_id).order_by(variances.c.id)
            )
        ]
    record, decisions = clinical_record(session, case_id, patient_ref=row["patient_ref"])
    return CaseView(
        id=case_id,
        pathway=row["pathway"],
        definition_version=version,
        patient_ref=row["patient_ref"],
        status=CaseStatus(row["status"]),
        version=row["version"],
        escalated=row["escalated"],
        end=row["end_event"],
        ready_tasks=[ready_task(r, now=now) for r in ready],
        deadlines=deadlines,
        reminders=raised,
        variances=found,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        cancel_reason=row["cancel_reason"],
        record=record,
        decisions=decisions,
    )


def _row(session: Session, case_id: str) -> Any:
    row = session.execute(select(cases).where(cases.c.id == case_id)).first()
    if row is None:
        raise CaseNotFound(case_id)
    return row


def get_case(session: Session, case_id: str, *, clock: Clock) -> CaseView:
    """Read a case: status, version, ready steps, deadlines, reminders, variances, end."""
    row = _row(session, case_id)
    loaded = definitions.load(session, row.definition_id)
    ready: list[ReadyStep] = []
    if row.status == CaseStatus.ACTIVE:
        workflow = load_state(row.state, parsed=loaded.parsed, script_engine=script_engine(clock))
        run = CaseRun(case_id=case_id, workflow=workflow, pathway=loaded, clock=clock, actor=None)
        ready = run.ready_steps()
    return build_view(session, row._asdict(), version=loaded.info.version, ready=ready, clock=clock)


def timeline(session: Session, case_id: str) -> list[Event]:
    """Return a case's audit log, oldest first."""
    _row(session, case_id)
    return [
        Event(
            type=EventType(e.type),
            at=e.at,
            step=e.step,
            actor=e.actor,
            detail=e.detail,
            evidence=e.evidence,
        )
        for e in session.execute(
            select(case_events).where(case_events.c.case_id == case_id).order_by(case_events.c.id)
        )
    ]
