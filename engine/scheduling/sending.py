"""Sending reminders, a batch at a time: claiming enqueued reminders and recording what each
delivery did.

``claim_batch`` is one conditional update of the ids still enqueued (``UPDATE ... RETURNING``:
PostgreSQL, SQLite 3.35 or newer), so a duplicate message claims nothing and two workers
never claim the same reminder. Each claim counts an attempt. No network call happens while a
row is locked: the worker delivers between ``claim_batch`` and ``record_deliveries``, each
its own transaction. ``record_deliveries`` records every reminder of the batch in one
transaction, each on its own (sent, retried after its backoff, or failed at the limit), and
only for the attempt that was claimed: a send that outlived its claim was reaped and claimed
again, and its late result must not overwrite the newer attempt's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..definitions import load
from ..store import case_tasks, cases, definitions, reminder_attempts, reminders
from ..vocabulary import ReminderStatus

SUPERSEDED = "superseded"
"""What ``record_deliveries`` answers for a reminder a newer attempt has claimed meanwhile."""


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
class Delivery:
    """What one claimed attempt of a reminder did: each channel's outcome, None when it
    delivered, else its error (no patient data)."""

    reminder_id: int
    attempt: int
    outcomes: Mapping[str, str | None]


def claim_batch(
    session: Session, *, reminder_ids: Sequence[int], now: datetime
) -> list[ReminderMessage]:
    """Take the enqueued reminders among ``reminder_ids`` for sending, in one statement, and
    return their messages in the order given; the others (duplicates, reminders no longer
    enqueued) are left alone."""
    if not reminder_ids:
        return []
    rows = session.execute(
        update(reminders)
        .where(
            reminders.c.id.in_(list(reminder_ids)), reminders.c.status == ReminderStatus.ENQUEUED
        )
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
    ).all()
    if not rows:
        return []
    # Only a retry can find channels an earlier attempt already delivered to.
    delivered: dict[int, set[str]] = {}
    retried = [row.id for row in rows if row.attempts > 1]
    if retried:
        for reminder_id, channel in session.execute(
            select(reminder_attempts.c.reminder_id, reminder_attempts.c.channel).where(
                reminder_attempts.c.reminder_id.in_(retried), reminder_attempts.c.ok.is_(True)
            )
        ):
            delivered.setdefault(reminder_id, set()).add(channel)
    open_steps: dict[str, list[str]] = {}
    for case_id, name in session.execute(
        select(case_tasks.c.case_id, case_tasks.c.name)
        .where(case_tasks.c.case_id.in_({row.case_id for row in rows}))
        .order_by(case_tasks.c.id)
    ):
        if name:
            open_steps.setdefault(case_id, []).append(name)
    texts: dict[tuple[str, str, str], str] = {}
    messages = {}
    for row in rows:
        key = (row.case_id, row.step, row.kind)
        if key not in texts:
            texts[key] = reminder_text(session, case_id=row.case_id, step=row.step, kind=row.kind)
        messages[row.id] = ReminderMessage(
            id=row.id,
            case_id=row.case_id,
            patient_ref=row.patient_ref,
            kind=row.kind,
            step=row.step,
            recipients=tuple(row.recipients),
            due_at=row.due_at,
            attempt=row.attempts,
            delivered=frozenset(delivered.get(row.id, ())),
            open_steps=tuple(open_steps.get(row.case_id, ())),
            text=texts[key],
        )
    return [messages[i] for i in dict.fromkeys(reminder_ids) if i in messages]


def claim(session: Session, *, reminder_id: int, now: datetime) -> ReminderMessage | None:
    """Take one enqueued reminder for sending; None when it is not enqueued (a duplicate)."""
    claimed = claim_batch(session, reminder_ids=[reminder_id], now=now)
    return claimed[0] if claimed else None


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


def _outcome(
    delivery: Delivery, *, now: datetime, max_attempts: int, backoff_base: float
) -> dict[str, Any]:
    """The reminder's new columns after ``delivery``: sent when every channel delivered,
    else pending after a backoff, or failed once ``max_attempts`` attempts are spent."""
    errors = [f"{ch}: {error}" for ch, error in delivery.outcomes.items() if error is not None]
    if not errors:
        return {"status_": ReminderStatus.SENT, "sent_": now, "retry_": None, "error_": None}
    if delivery.attempt >= max_attempts:
        status, retry = ReminderStatus.FAILED, None
    else:
        status = ReminderStatus.PENDING
        retry = now + backoff(delivery.attempt, base=backoff_base)
    return {"status_": status, "sent_": None, "retry_": retry, "error_": "; ".join(errors)[:2000]}


def record_deliveries(
    session: Session,
    deliveries: Sequence[Delivery],
    *,
    now: datetime,
    max_attempts: int,
    backoff_base: float,
) -> dict[int, str]:
    """Record each channel's outcome of each delivery and move each reminder on: sent,
    pending after its backoff, or failed at the limit. Returns each reminder's new status,
    or ``superseded`` when a newer attempt has claimed it meanwhile."""
    if not deliveries:
        return {}
    attempts = [
        {"reminder_id": d.reminder_id, "attempt": d.attempt, "channel": channel, "at": now}
        | {"ok": error is None, "error": error}
        for d in deliveries
        for channel, error in d.outcomes.items()
    ]
    if attempts:  # first: on SQLite the write lock is then held, as FOR UPDATE holds rows
        session.execute(insert(reminder_attempts), attempts)
    held = select(reminders.c.id, reminders.c.attempts).where(
        reminders.c.id.in_([d.reminder_id for d in deliveries]),
        reminders.c.status == ReminderStatus.SENDING,
    )
    if session.get_bind().dialect.name == "postgresql":
        held = held.with_for_update()
    claimed = {row.id: row.attempts for row in session.execute(held)}
    statuses: dict[int, str] = {}
    changes = []
    for delivery in deliveries:
        if claimed.get(delivery.reminder_id) != delivery.attempt:
            statuses[delivery.reminder_id] = SUPERSEDED
            continue
        values = _outcome(delivery, now=now, max_attempts=max_attempts, backoff_base=backoff_base)
        statuses[delivery.reminder_id] = str(values["status_"])
        changes.append({"id_": delivery.reminder_id, "attempt_": delivery.attempt} | values)
    if changes:
        session.execute(
            update(reminders)
            .where(
                reminders.c.id == bindparam("id_"),
                reminders.c.status == ReminderStatus.SENDING,
                reminders.c.attempts == bindparam("attempt_"),
            )
            .values(
                {
                    column: bindparam(f"{name}_", type_=column.type)
                    for column, name in (
                        (reminders.c.status, "status"),
                        (reminders.c.sent_at, "sent"),
                        (reminders.c.next_attempt_at, "retry"),
                        (reminders.c.last_error, "error"),
                    )
                }
            ),
            changes,
        )
    return statuses


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
    """Record one delivery (see ``record_deliveries``); return the reminder's new status."""
    return record_deliveries(
        session,
        [Delivery(reminder_id=reminder_id, attempt=attempt, outcomes=outcomes)],
        now=now,
        max_attempts=max_attempts,
        backoff_base=backoff_base,
    )[reminder_id]
