"""Due timers: find the cases whose timers are due and advance exactly those.

Every waiting timer of a case is a row in ``case_timers`` with its due time (indexed), rewritten
in the same transaction that saves the case, so finding what is due never reads a case that
has nothing due.

On PostgreSQL ``fire_due`` takes its batch of due cases with ``FOR UPDATE SKIP LOCKED``: two
sweeps at once split the due cases between them instead of queueing on the same rows, and a
case an API request holds is left to that request (which fires its due timers itself).

A batch costs few statements beyond its cases' own updates: the locked rows are read in one
query, and the rows the cases write beside them (timers, ready steps, reminders, events) go
in one insert per table after the last case. No savepoint per case is needed: a case that
fails (in the engine, or its version check) has written nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..cases import advance
from ..cases.persistence import Writes, read_locked
from ..clock import SimulatedClock
from ..errors import PathwayError
from ..store import case_timers, cases

log = logging.getLogger(__name__)


@dataclass
class FireReport:
    """What one ``fire_due`` call did."""

    cases: list[str] = field(default_factory=list)
    reminders: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def lock_due_cases(
    session: Session, *, now: datetime, limit: int | None = None, skip: Collection[str] = ()
) -> list[str]:
    """Take up to ``limit`` cases with a timer due at ``now``, most overdue first, leaving out
    ``skip``. On PostgreSQL their rows are locked for the caller's transaction, and cases
    another transaction holds are passed over (``FOR UPDATE SKIP LOCKED``); SQLite has one
    writer at a time anyway."""
    due = (
        select(case_timers.c.case_id, func.min(case_timers.c.due_at).label("due"))
        .where(case_timers.c.due_at <= now)
        .group_by(case_timers.c.case_id)
        .subquery()
    )
    query = (
        select(cases.c.id).join(due, due.c.case_id == cases.c.id).order_by(due.c.due, cases.c.id)
    )
    if skip:
        query = query.where(cases.c.id.not_in(list(skip)))
    if limit is not None:
        query = query.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=cases, skip_locked=True)
    return list(session.scalars(query))


def next_due(session: Session) -> datetime | None:
    """Return the earliest due time of any waiting timer."""
    due: datetime | None = session.scalar(select(func.min(case_timers.c.due_at)))
    return due


def fire_due(
    session: Session,
    *,
    now: datetime,
    limit: int | None = None,
    skip: Collection[str] = (),
    zone: tzinfo = UTC,
) -> FireReport:
    """Advance the cases that have a timer due at ``now`` (at most ``limit`` of them, leaving
    out ``skip``); one failing case spares the rest. ``zone`` is the clinic's time zone, for
    the dates a case reads and the date-anchored timers it reaches."""
    report = FireReport()
    clock = SimulatedClock(now, zone=zone)
    due = lock_due_cases(session, now=now, limit=limit, skip=skip)
    rows = read_locked(session, due)
    writes = Writes()
    for case_id in due:
        try:
            run, _ = advance(
                session,
                case_id=case_id,
                clock=clock,
                actor=None,
                action=lambda r: r.fire_due_timers(),
                row=rows.get(case_id),  # None (gone meanwhile): advance says CaseNotFound
                writes=writes,
            )
        except PathwayError as exc:
            log.error("case %s: due timers could not fire: %s", case_id, exc.__class__.__name__)
            report.failed.append((case_id, str(exc)))
            continue
        report.cases.append(case_id)
        report.reminders.extend((case_id, r.kind) for r in run.journal.reminders)
    writes.flush(session)
    return report
