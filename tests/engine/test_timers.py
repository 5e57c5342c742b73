"""fire_due advances exactly the cases that have a due timer."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

import engine
from engine.store import cases
from tests.conftest import Database
from tests.pathway.conftest import START, CaseDriver


def _versions(db: Database) -> dict[str, int]:
    with db.sessions() as session:
        return {r.id: r.version for r in session.execute(select(cases.c.id, cases.c.version))}


def test_fire_due_advances_exactly_the_cases_with_a_due_timer(db: Database) -> None:
    disabling = CaseDriver(db)
    disabling.screen_clear(disabling_pain=True, patient_ref="P-1")
    disabling.start_conservative()
    calm = CaseDriver(db)
    calm.screen_clear(patient_ref="P-2")
    calm.start_conservative()
    untouched = CaseDriver(db)  # waiting for intake: no timers at all
    before = _versions(db)
    day14 = START + timedelta(days=14)
    with db.sessions.begin() as session:
        assert engine.due_case_ids(session, now=day14 - timedelta(seconds=1)) == []
        report = engine.fire_due(session, now=day14)
    assert report.cases == [disabling.id]
    assert report.reminders == [(disabling.id, "referral_due_2_weeks")]
    after = _versions(db)
    assert after[disabling.id] == before[disabling.id] + 1
    assert after[calm.id] == before[calm.id]
    assert after[untouched.id] == before[untouched.id]
    with db.sessions.begin() as session:
        again = engine.fire_due(session, now=day14 + timedelta(hours=1))
    assert again.cases == [], "a fired timer is not due again"


def test_reminder_is_raised_at_most_once_per_case_and_kind(db: Database) -> None:
    case = CaseDriver(db)
    case.screen_clear(disabling_pain=True)
    case.start_conservative()
    case.wait_until(100)
    kinds = [k for k, _ in case.reminder_events()]
    assert sorted(kinds) == sorted(set(kinds))
    assert set(kinds) == {
        "referral_due_2_weeks",
        "reassessment_due_6_weeks",
        "referral_escalation_3_months",
    }
