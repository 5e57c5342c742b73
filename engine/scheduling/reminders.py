"""Delivering reminders: the database is the truth, the queue only carries ids.

A reminder row moves through these states:

    pending ──enqueue_due──> enqueued ──claim──> sending ──record_delivery──> sent
       ^                        │                   │                          └─> failed
       │                        └──── reap ─────────┘  (stuck: lost message, dead worker)
       └──────── retry after a backoff ─────────────┘

``enqueue_due`` marks the due ones enqueued (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two sweeps never take the same row); the caller commits and then publishes their ids.
``claim`` is a conditional update, so a duplicate message claims nothing. No network call
happens while a row is locked: the worker delivers between ``claim`` and
``record_delivery``, each its own transaction. ``reap`` returns rows stuck in enqueued or
sending to pending, so they are published again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from ..definitions import load
from ..store import case_tasks, cases, definitions, reminder_attempts, reminders
from ..vocabulary import ReminderStatus


@dataclass(frozen=True)
class ReminderMessage:
    """What a notifier needs to send one reminder, and nothing more of the patient."""

    id: int
    case_id: str
    patient_ref: str | None
    kind: str
    step: str
    recipients: tuple[str, ...]
    due_at: datetime
    attempt: int
    delivered: frozenset[str]
    open_steps: tuple[str, ...]
    text: str
    """What the reminder says, in its diagram's words (see ``reminder_text``)."""


@dataclass(frozen=True)
class ReminderRecord:
    """A reminder as listed: its case, kind, due time, delivery status and last error."""

    id: int
    case_id: str
    kind: str
    step: str
    recipients: list[str]
    due_at: datetime
    raised_at: datetime
    status: ReminderStatus
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


def enqueue_due(session: Session, *, now: datetime, limit: int = 500) -> list[int]:
    """Mark due pending reminders enqueued and return their ids (publish them after commit)."""
    query = (
        select(reminders.c.id)
        .where(
            reminders.c.status == ReminderStatus.PENDING,
            or_(reminders.c.next_attempt_at.is_(None), reminders.c.next_attempt_at <= now),
        )
        .order_by(reminders.c.due_at, reminders.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(reminders)
            .where(reminders.c.id.in_(ids), reminders.c.status == ReminderStatus.PENDING)
            .values(status=ReminderStatus.ENQUEUED, enqueued_at=now)
        )
    return ids


def reap(session: Session, *, now: datetime, stale_after: timedelta) -> int:
    """Return reminders stuck in enqueued or sending for longer than ``stale_after`` to
    pending (their message was lost, or the worker died); return how many."""
    cutoff = now - stale_after
    result = session.execute(
        update(reminders)
        .where(
            or_(
                and_(
                    reminders.c.status == ReminderStatus.ENQUEUED, reminders.c.enqueued_at <= cutoff
                ),
                and_(
                    reminders.c.status == ReminderStatus.SENDING, reminders.c.claimed_at <= cutoff
                ),
            )
        )
        .values(status=ReminderStatus.PENDING, next_attempt_at=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, *, reminder_id: int, now: datetime) -> ReminderMessage | None:
    """Take an enqueued reminder for sending; None when it is not enqueued (a duplicate)."""
    row = session.execute(
        update(reminders)
        .where(reminders.c.id == reminder_id, reminders.c.status == ReminderStatus.ENQUEUED)
        .values(status=ReminderStatus.SENDING, claimed_at=now, attempts=reminders.c.attempts + 1)
        .returning(
            reminders.c.id,
            reminders.c.case_id,
            reminders.c.kind,
            reminders.c.step,
            reminders.c.recipients,
            reminders.c.due_at,
            reminders.c.attempts,
            select(cases.c.patient_ref)
            .where(cases.c.id == reminders.c.case_id)
            .scalar_subquery()
            .label("patient_ref"),
        )
    ).first()
    if row is None:
        return None
    # Only a retry can find channels an earlier attempt already delivered to.
    delivered = (
        frozenset(
            session.scalars(
                select(reminder_attempts.c.channel).where(
                    reminder_attempts.c.reminder_id == reminder_id,
                    reminder_attempts.c.ok.is_(True),
                )
            )
        )
        if row.attempts > 1
        else frozenset()
    )
    open_steps = tuple(
        session.scalars(select(case_tasks.c.name).where(case_tasks.c.case_id == row.case_id))
    )
    return ReminderMessage(
        id=row.id,
        case_id=row.case_id,
        patient_ref=row.patient_ref,
        kind=row.kind,
        step=row.step,
        recipients=tuple(row.recipients),
        due_at=row.due_at,
        attempt=row.attempts,
        delivered=delivered,
        open_steps=tuple(s for s in open_steps if s),
        text=reminder_text(session, case_id=row.case_id, step=row.step, kind=row.kind),
    )


def reminder_text(session: Session, *, case_id: str, step: str, kind: str) -> str:
    """What a reminder says: the text the case's diagram gives the event that raised it
    (``pathway.reminder.text``, else the event's name), or its kind when the event is gone."""
    definition = session.execute(
        select(definitions.c.id, definitions.c.bundle_sha256)
        .join(cases, cases.c.definition_id == definitions.c.id)
        .where(cases.c.id == case_id)
    ).one()
    event = load(session, definition.id, bundle_sha256=definition.bundle_sha256).step(step)
    if event is None or event.reminder is None:
        return kind
    return event.reminder.text


def backoff(attempt: int, *, base: float, cap: float = 3600.0) -> timedelta:
    """The wait before the next attempt: base × 2^(attempt-1), at most ``cap`` seconds."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))


def record_delivery(
    session: Session,
    *,
    reminder_id: int,
    attempt: int,
    outcomes: dict[str, str | None],
    now: datetime,
    max_attempts: int,
    backoff_base: float,
) -> str:
    """Record each channel's outcome (None = delivered, else the error) and move the
    reminder on: sent when every channel has delivered, else pending after a backoff, or
    failed once ``max_attempts`` attempts are spent. Returns the new status, or
    ``superseded`` when a newer attempt has claimed the reminder meanwhile."""
    if outcomes:
        session.execute(
            insert(reminder_attempts),
            [
                {
                    "reminder_id": reminder_id,
                    "attempt": attempt,
                    "channel": channel,
                    "at": now,
                    "ok": error is None,
                    "error": error,
                }
                for channel, error in outcomes.items()
            ],
        )
    errors = [f"{channel}: {error}" for channel, error in outcomes.items() if error is not None]
    values: dict[str, Any]
    if not errors:
        values = {"status": ReminderStatus.SENT, "sent_at": now, "last_error": None}
    elif attempt >= max_attempts:
        values = {"status": ReminderStatus.FAILED, "last_error": "; ".join(errors)[:2000]}
    else:
        values = {
            "status": ReminderStatus.PENDING,
            "next_attempt_at": now + backoff(attempt, base=backoff_base),
            "last_error": "; ".join(errors)[:2000],
        }
    result = session.execute(
        update(reminders)
        .where(
            reminders.c.id == reminder_id,
            reminders.c.status == ReminderStatus.SENDING,
            # A send that outlived its claim was reaped and claimed again: its late result
            # must not overwrite the newer attempt's.
            reminders.c.attempts == attempt,
        )
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return "superseded"
    return str(values["status"])


def list_reminders(
    session: Session,
    *,
    case_id: str | None = None,
    kind: str | None = None,
    status: ReminderStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ReminderRecord], int]:
    """Reminders by case, kind and status, most recently raised first, and how many match."""
    conditions = [
        c
        for c in (
            reminders.c.case_id == case_id if case_id is not None else None,
            reminders.c.kind == kind if kind is not None else None,
            reminders.c.status == status if status is not None else None,
        )
        if c is not None
    ]
    where = and_(True, *conditions)
    total = session.scalar(select(func.count()).select_from(reminders).where(where)) or 0
    rows = session.execute(
        select(reminders)
        .where(where)
        .order_by(reminders.c.raised_at.desc(), reminders.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        ReminderRecord(
            id=r.id,
            case_id=r.case_id,
            kind=r.kind,
            step=r.step,
            recipients=list(r.recipients),
            due_at=r.due_at,
            raised_at=r.raised_at,
            status=ReminderStatus(r.status),
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            sent_at=r.sent_at,
            last_error=r.last_error,
        )
        for r in rows
    ], int(total)
