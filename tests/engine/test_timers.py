"""fire_due advances exactly the cases that have a due timer."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text

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
        assert engine.lock_due_cases(session, now=day14 - timedelta(seconds=1)) == []
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


def _due_cases(db: Database, count: int) -> list[str]:
    ids = []
    for n in range(count):
        case = CaseDriver(db)
        case.screen_clear(disabling_pain=True, patient_ref=f"P-DUE-{n}")
        case.start_conservative()
        ids.append(case.id)
    return ids


def test_fire_due_leaves_out_the_cases_it_is_told_to_skip(db: Database) -> None:
    first, second = _due_cases(db, 2)
    day14 = START + timedelta(days=14)
    with db.sessions.begin() as session:
        report = engine.fire_due(session, now=day14, skip={first})
    assert report.cases == [second]
    with db.sessions.begin() as session:
        assert engine.fire_due(session, now=day14).cases == [first]


def test_a_second_sweep_takes_the_due_cases_the_first_one_has_not_locked(
    postgresql_db: Database,
) -> None:
    # PostgreSQL only: SKIP LOCKED is its own; SQLite has one writer at a time.
    db = postgresql_db
    due = _due_cases(db, 4)
    day14 = START + timedelta(days=14)
    with db.sessions() as first:
        first.begin()
        held = engine.lock_due_cases(first, now=day14, limit=2)
        assert len(held) == 2
        with db.sessions.begin() as second:
            # Were the locks waited on, this would fail after 2 s rather than pass.
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            report = engine.fire_due(second, now=day14, limit=10)
        assert sorted(report.cases) == sorted(set(due) - set(held))
        first.rollback()
    with db.sessions.begin() as session:
        assert sorted(engine.fire_due(session, now=day14).cases) == sorted(held)
