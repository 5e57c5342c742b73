"""A known backlog in a database, for the tests of ``/metrics`` and ``pathway status``: made
with the engine's own scheduling calls, as a sweep and a worker would have left it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import engine
from tests.conftest import Database
from tests.workers.conftest import cases_due_soon

OVERDUE = 600
"""How long ago the due cases' 2-week referral deadline passed, in seconds."""


@dataclass(frozen=True)
class Known:
    """What the backlog holds, and what must never show in a figure."""

    reminders: dict[str, int]
    due_timers: int
    case_ids: list[str]
    patient_refs: list[str]


def make_backlog(db: Database) -> Known:
    """Five cases: four whose 2-week deadline passed ``OVERDUE`` seconds ago, one due in an
    hour. Three of the four have had their timer fired (three reminders: one left pending,
    one sent, one failed); the fourth's timer is due and not fired."""
    due = cases_due_soon(db, seconds=-OVERDUE, count=4, ref="MRN-METRICS")
    later = cases_due_soon(db, seconds=3600, count=1, ref="MRN-LATER")
    now = datetime.now(UTC)
    with db.sessions.begin() as session:
        fired = engine.fire_due(session, now=now, limit=3)
    assert len(fired.reminders) == 3, fired
    with db.sessions.begin() as session:
        sent, failed = engine.enqueue_due_reminders(session, now=now, limit=2)
    for reminder_id, error in ((sent, None), (failed, "503 from the receiver")):
        with db.sessions.begin() as session:
            message = engine.claim_reminder(session, reminder_id=reminder_id, now=now)
            assert message is not None
            engine.record_reminder_delivery(
                session,
                reminder_id=reminder_id,
                attempt=message.attempt,
                outcomes={"webhook": error},
                now=now + timedelta(seconds=1),
                max_attempts=1,
                backoff_base=1,
            )
    return Known(
        reminders={
            "pending": 1,
            "enqueued": 0,
            "sending": 0,
            "sent": 1,
            "failed": 1,
            "cancelled": 0,
        },
        due_timers=1,
        case_ids=[*due, *later],
        patient_refs=[*(f"MRN-METRICS-{n}" for n in range(1, 5)), "MRN-LATER-1"],
    )
