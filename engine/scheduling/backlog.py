"""The scheduler's backlog as the database tells it: reminders by status, and the timers that
are due but not yet fired, with the oldest one's due time.

One function, ``backlog``, read by the API's ``/metrics`` at every scrape and by
``pathway status``. Two small queries, each on an index (``reminders.status``,
``case_timers.due_at``); they count rows and read one minimum, and carry nothing of a case
or a patient out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..store import case_timers, reminders
from ..vocabulary import ReminderStatus


@dataclass(frozen=True)
class Backlog:
    """What is waiting, at ``at``."""

    at: datetime
    reminders: dict[ReminderStatus, int]
    """How many reminders stand at each status; every status is present, zero included."""

    due_timers: int
    """Timers due at ``at`` that no sweep has fired yet."""

    oldest_due_at: datetime | None
    """The due time of the oldest of them (None when none is due)."""

    @property
    def oldest_due_seconds(self) -> float:
        """How long the oldest due timer has waited past its due time (0 when none)."""
        if self.oldest_due_at is None:
            return 0.0
        return max(0.0, (self.at - self.oldest_due_at).total_seconds())


def backlog(session: Session, *, now: datetime) -> Backlog:
    """Count reminders by status and the timers due at ``now``."""
    by_status = dict.fromkeys(ReminderStatus, 0)
    for status, count in session.execute(
        select(reminders.c.status, func.count()).group_by(reminders.c.status)
    ):
        if status in by_status:
            by_status[ReminderStatus(status)] = int(count)
    due, oldest = session.execute(
        select(func.count(), func.min(case_timers.c.due_at)).where(case_timers.c.due_at <= now)
    ).one()
    return Backlog(
        at=now,
        reminders=by_status,
        due_timers=int(due),
        oldest_due_at=oldest,  # min() keeps the column's type: an aware UTC time
    )
