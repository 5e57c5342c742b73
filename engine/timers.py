"""Due timers: find the cases whose timers are due and advance exactly those.

Every waiting timer of a case is a row in ``case_timers`` with its due time (indexed), rewritten
in the same transaction that saves the case, so finding what is due never reads a case that
has nothing due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .cases import advance
from .clock import SimulatedClock
from .errors import PathwayError
from .store import case_timers

log = logging.getLogger(__name__)


@dataclass
class FireReport:
    """What one ``fire_due`` call did."""

    cases: list[str] = field(default_factory=list)
    reminders: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def due_case_ids(session: Session, *, now: datetime, limit: int | None = None) -> list[str]:
    """Return the ids of cases with a timer due at or before ``now``, most overdue first."""
    query = (
        select(case_timers.c.case_id, func.min(case_timers.c.due_at).label("due"))
        .where(case_timers.c.due_at <= now)
        .group_by(case_timers.c.case_id)
        .order_by("due")
    )
    if limit is not None:
        query = query.limit(limit)
    return [row.case_id for row in session.execute(query)]


def next_due(session: Session) -> datetime | None:
    """Return the earliest due time of any waiting timer."""
    due: datetime | None = session.scalar(select(func.min(case_timers.c.due_at)))
    return due


def fire_due(session: Session, *, now: datetime, limit: int | None = None) -> FireReport:
    """Advance every case that has a timer due at ``now``; one failing case spares the rest."""
    report = FireReport()
    clock = SimulatedClock(now)
    for case_id in due_case_ids(session, now=now, limit=limit):
        savepoint = session.begin_nested()
        try:
            run, _ = advance(
                session,
                case_id=case_id,
                clock=clock,
                actor=None,
                action=lambda r: r.fire_due_timers(),
            )
        except PathwayError as exc:
            savepoint.rollback()
            log.error("case %s: due timers could not fire: %s", case_id, exc.__class__.__name__)
            report.failed.append((case_id, str(exc)))
            continue
        savepoint.commit()
        report.cases.append(case_id)
        report.reminders.extend((case_id, r.kind) for r in run.reminders)
    return report
