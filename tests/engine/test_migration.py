"""Moving running cases to a new version of their pathway (engine level, both databases)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import engine
from engine.cases import migration
from engine.store import cases
from tests.conftest import Database
from tests.data import GOOD_PLAN, NO_RED_FLAGS
from tests.pathway.conftest import CaseDriver, intake
from tests.variants import (
    with_boundary_timer_on,
    with_extra_step_before_reassessment,
    without_step,
)

pytestmark = pytest.mark.usefixtures("db")


def _deploy(db: Database, files: list[tuple[str, bytes]], driver: CaseDriver) -> int:
    with db.sessions.begin() as session:
        return engine.deploy(session, files=files, now=driver.clock.now()).version


def _waiting_at_six_weeks(db: Database, ref: str = "P-001") -> CaseDriver:
    case = CaseDriver(db)
    case.complete("intake", intake(patient_ref=ref), day=0)
    case.complete("red_flag_screen", NO_RED_FLAGS, day=0)
    case.complete("conservative_plan", GOOD_PLAN, day=0)
    return case


def _start(
    session: Session,
    *,
    now: datetime,
    actor: str = "modeler:mo",
    versions: tuple[int, int] = (1, 2),
) -> int:
    return migration.start_migration(
        session,
        pathway="lumbar_radiculopathy",
        from_version=versions[0],
        to_version=versions[1],
        actor=actor,
        now=now,
    )


def _migrate(db: Database, case: CaseDriver, a: int, b: int) -> migration.MigrationView:
    with db.sessions.begin() as session:
        migration_id = _start(session, now=case.clock.now(), versions=(a, b))
    return migration.run_migration(db.sessions, migration_id, clock=case.clock)


def test_a_waiting_timer_keeps_its_date_and_the_added_step_appears_then(db: Database) -> None:
    case = _waiting_at_six_weeks(db)
    due_before = case.deadlines()
    case.wait_until(10)  # the migration happens on day 10, 4 weeks before the timer is due
    version = _deploy(db, with_extra_step_before_reassessment(), case)
    assert version == 2

    with db.sessions() as session:
        dry = migration.preview(
            session, pathway="lumbar_radiculopathy", from_version=1, to_version=2
        )
    assert [(m.case_id, m.outcome) for m in dry.cases] == [(case.id, "can_move")]

    result = _migrate(db, case, 1, 2)
    assert result.counts["moved"] == 1 and result.status == "finished"
    assert case.deadlines() == due_before  # every waiting timer keeps its due time exactly
    migrated = case.events("migrated")
    assert len(migrated) == 1
    assert migrated[0].detail["from_version"] == 1 and migrated[0].detail["to_version"] == 2
    assert migrated[0].actor == "modeler:mo"
    assert "pre_reassessment_questionnaire" not in case.ready

    case.wait_until(41)  # the timer has not fired a day early
    assert "pre_reassessment_questionnaire" not in case.ready
    case.wait_until(43)  # it fires on its original date, and the new step comes first
    fired = [e for e in case.events("timer_fired") if e.step == "six_week_timer"]
    assert [e.at for e in fired] == [due_before["reassessment_due_6_weeks"]]
    assert case.ready == ["pre_reassessment_questionnaire"]
    case.complete("pre_reassessment_questionnaire", {"pain_now": 4}, day=43)
    assert case.ready == ["six_week_reassessment"]

    again = _migrate(db, case, 1, 2)  # running it again moves nothing more
    assert again.total == 0 and again.counts["moved"] == 0


def test_a_case_waiting_at_a_removed_step_is_reported_and_left_exactly_as_it_was(
    db: Database,
) -> None:
    case = _waiting_at_six_weeks(db)
    _deploy(db, without_step("six_week_timer"), case)
    with db.sessions() as session:
        before = session.execute(select(cases).where(cases.c.id == case.id)).one()
        dry = migration.preview(
            session, pathway="lumbar_radiculopathy", from_version=1, to_version=2
        )
    assert dry.cases[0].outcome == "refused"
    assert dry.cases[0].reason == "waiting at `six_week_timer`, which version 2 removes"

    result = _migrate(db, case, 1, 2)
    assert result.counts == {"moved": 0, "refused": 1, "failed": 0, "skipped": 0, "pending": 0}
    assert result.cases[0].reason == "waiting at `six_week_timer`, which version 2 removes"
    with db.sessions() as session:
        after = session.execute(select(cases).where(cases.c.id == case.id)).one()
    assert after == before
    assert case.events("migrated") == []
    case.wait_until(43)
    assert case.ready == ["six_week_reassessment"]


def test_the_dry_run_answers_for_every_running_case_and_ended_cases_are_not_moved(
    db: Database,
) -> None:
    first = _waiting_at_six_weeks(db, "P-001")
    second = CaseDriver(db)  # still at intake: the removed timer is ahead of it
    second.complete("intake", intake(patient_ref="P-002"), day=0)
    third = CaseDriver(db)
    with db.sessions.begin() as session:
        engine.cancel_case(
            session, case_id=third.id, reason="duplicate", clock=third.clock, actor="coordinator:a"
        )
    _deploy(db, without_step("six_week_timer"), first)
    with db.sessions() as session:
        dry = migration.preview(
            session, pathway="lumbar_radiculopathy", from_version=1, to_version=2
        )
    outcomes = {m.case_id: m.outcome for m in dry.cases}
    assert outcomes == {first.id: "refused", second.id: "can_move"}


def test_versions_must_exist_and_differ(db: Database) -> None:
    case = CaseDriver(db)
    with db.sessions() as session:
        with pytest.raises(engine.MigrationInvalid, match="no version 7"):
            migration.preview(session, pathway="lumbar_radiculopathy", from_version=1, to_version=7)
        with pytest.raises(engine.MigrationInvalid, match="the same"):
            migration.preview(session, pathway="lumbar_radiculopathy", from_version=1, to_version=1)
    assert case.id


def test_a_case_at_a_step_that_gains_a_boundary_event_waits_until_it_has_left_it(
    db: Database,
) -> None:
    at_screen = CaseDriver(db)
    at_screen.complete("intake", intake(patient_ref="P-011"), day=0)
    past_screen = _waiting_at_six_weeks(db, "P-012")
    _deploy(db, with_boundary_timer_on("red_flag_screen"), at_screen)
    with db.sessions() as session:
        dry = migration.preview(
            session, pathway="lumbar_radiculopathy", from_version=1, to_version=2
        )
    outcomes = {m.case_id: (m.outcome, m.reason) for m in dry.cases}
    assert outcomes[past_screen.id] == ("can_move", None)
    outcome, reason = outcomes[at_screen.id]
    assert outcome == "refused"
    assert reason is not None and reason.startswith(
        "at `red_flag_screen`, whose place in the flow version 2 changes"
    )
    result = _migrate(db, at_screen, 1, 2)
    assert {m.case_id: m.outcome for m in result.cases} == {
        at_screen.id: "refused",
        past_screen.id: "moved",
    }
    # left as it was, the case goes on: its step completes on version 1
    at_screen.complete("red_flag_screen", NO_RED_FLAGS, day=1)
    assert at_screen.ready == ["conservative_plan"]


def test_a_cancelled_timer_the_new_version_lacks_does_not_stop_a_move(db: Database) -> None:
    case = _waiting_at_six_weeks(db)
    case.report_red_flag({"progressive_motor_deficit": True}, day=0.1)  # the timer is cancelled
    ready = case.ready
    _deploy(db, without_step("six_week_timer"), case)
    result = _migrate(db, case, 1, 2)
    assert [m.outcome for m in result.cases] == ["moved"]
    assert "urgent_mri" in ready and case.ready == ready
    case.complete("urgent_mri", {"mri_requested_on": "2026-01-05"}, day=0.2)
    assert "urgent_mri" not in case.ready


def test_a_migration_that_stops_half_way_does_not_stay_running(db: Database) -> None:
    first = _waiting_at_six_weeks(db, "P-021")
    _waiting_at_six_weeks(db, "P-022")
    _deploy(db, with_extra_step_before_reassessment(), first)
    with db.sessions.begin() as session:
        migration_id = _start(session, now=first.clock.now())

    def stop_after_one(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the process is told to stop

    with pytest.raises(KeyboardInterrupt):
        migration.run_migration(
            db.sessions, migration_id, clock=first.clock, progress=stop_after_one
        )
    with db.sessions() as session:
        stopped = migration.migration_status(session, migration_id)
    assert stopped.status == "failed"
    assert (stopped.counts["moved"], stopped.counts["pending"]) == (1, 1)
    again = _migrate(db, first, 1, 2)  # a new run is allowed, and moves the rest
    assert (again.total, again.counts["moved"]) == (1, 1)


def test_a_migration_whose_process_died_is_seen_as_stopped(db: Database) -> None:
    case = _waiting_at_six_weeks(db)
    _deploy(db, with_extra_step_before_reassessment(), case)
    with db.sessions.begin() as session:
        _start(session, now=case.clock.now())
    with db.sessions.begin() as session, pytest.raises(engine.MigrationConflict):
        _start(session, now=case.clock.now() + timedelta(seconds=30))
    # no sign of life for longer than STALE: it is marked interrupted, and a new one starts
    later = case.clock.now() + migration.STALE + timedelta(seconds=1)
    with db.sessions.begin() as session:
        second = _start(session, now=later)
    with db.sessions() as session:
        assert migration.migration_status(session, second - 1).status == "interrupted"


def test_two_migrations_started_at_once_one_is_refused(db: Database) -> None:
    case = _waiting_at_six_weeks(db)
    _deploy(db, with_extra_step_before_reassessment(), case)
    first = db.sessions()
    first.begin()
    _start(first, now=case.clock.now(), actor="modeler:a")
    outcome: dict[str, BaseException] = {}

    def second() -> None:
        try:
            with db.sessions.begin() as session:
                _start(session, now=case.clock.now(), actor="modeler:b")
        except BaseException as exc:
            outcome["error"] = exc

    other = threading.Thread(target=second)
    other.start()
    other.join(timeout=1)  # it waits on the first one's uncommitted row...
    first.commit()
    first.close()
    other.join(timeout=30)  # ...and is refused once that commits
    assert isinstance(outcome.get("error"), engine.MigrationConflict), outcome


def test_a_case_at_a_step_that_gains_another_boundary_event_is_not_moved(db: Database) -> None:
    case = CaseDriver(db)
    case.complete("intake", intake(patient_ref="P-031", disabling_pain=True), day=0)
    case.complete("red_flag_screen", NO_RED_FLAGS, day=0)
    case.complete("conservative_plan", GOOD_PLAN, day=0)
    assert "specialist_referral" in case.ready  # with its 2-week and 3-month timers waiting
    _deploy(db, with_boundary_timer_on("specialist_referral"), case)
    with db.sessions() as session:
        dry = migration.preview(
            session, pathway="lumbar_radiculopathy", from_version=1, to_version=2
        )
    (move,) = dry.cases
    assert move.outcome == "refused"
    assert move.reason is not None and "a branch (a boundary event" in move.reason
    assert [m.outcome for m in _migrate(db, case, 1, 2).cases] == ["refused"]
