"""Delivering reminders: the database is the truth, the queue only carries ids.

A reminder row moves through these states:

    pending ──enqueue_due──> enqueued ──claim──> sending ──record_delivery──> sent
       ^                        │                   │                          └─> failed
       │                        └──── reap ─────────┘  (stuck: lost message, dead worker)
       └──────── retry after a backoff ─────────────┘

``enqueue_due`` marks the due ones enqueued (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two sweeps never take the same row); the caller commits and then publishes their ids.
``reap`` returns rows stuck in enqueued or sending to pending, so they are published again.
Claiming and recording, a batch at a time, are in ``sending``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from ..store import reminders
from ..vocabulary import ReminderStatus


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
