"""Two people completing the same step at once: one wins, the other is told, nothing is
half-applied. PostgreSQL locks the case row; SQLite queues writers (BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

import engine
from engine.store import case_events
from tests.conftest import Database
from tests.pathway.conftest import START, CaseDriver, intake


def _complete_in_two_sessions(db: Database, case_id: str, *, expected: int | None) -> list[Any]:
    clock = engine.SimulatedClock(START)
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def attempt(slot: int) -> None:
        with db.sessions() as session:
            barrier.wait()
            try:
                with session.begin():
                    engine.complete_task(
                        session,
                        case_id=case_id,
                        step="intake",
                        data=intake(patient_ref=f"P-{slot}"),
                        clock=clock,
                        actor=f"coordinator:{slot}",
                        expected_version=expected,
                    )
                outcomes[slot] = "ok"
            except engine.PathwayError as exc:
                outcomes[slot] = exc

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("expected_version", [1, None])
def test_two_sessions_completing_the_same_task_one_wins(
    db: Database, expected_version: int | None
) -> None:
    case = CaseDriver(db)
    assert case.view.version == 1
    outcomes = _complete_in_two_sessions(db, case.id, expected=expected_version)
    assert sorted(map(str, outcomes)).count("ok") == 1, outcomes
    (loser,) = [o for o in outcomes if o != "ok"]
    assert isinstance(loser, engine.VersionConflict | engine.TaskNotReady)
    if expected_version is not None:
        assert isinstance(loser, engine.VersionConflict)
        assert "version 2, not 1" in str(loser)
    view = case.view
    assert view.version == 2
    assert [t.id for t in view.ready_tasks] == ["red_flag_screen"]
    with db.sessions() as session:
        completions = session.scalar(
            select(func.count())
            .select_from(case_events)
            .where(case_events.c.case_id == case.id, case_events.c.type == "task_completed")
        )
    assert completions == 1


def test_a_stale_version_is_refused(db: Database) -> None:
    case = CaseDriver(db)
    case.complete("intake", intake())
    with db.sessions.begin() as session, pytest.raises(engine.VersionConflict):
        engine.complete_task(
            session,
            case_id=case.id,
            step="red_flag_screen",
            data={},
            clock=case.clock,
            actor="x",
            expected_version=1,
        )
    assert case.view.version == 2
