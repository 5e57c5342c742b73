"""What a deadline's limits come to on a case is worked out by the code that checks a move;
a limit the case's data cannot give a date for is shown as unknown (null), and a move then
still fails: an unknown limit never lets a move through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import engine
from tests.conftest import Database
from tests.data import GOOD_PLAN, NO_RED_FLAGS

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
BPMN = Path(__file__).resolve().parents[2] / "bpmn"
LATEST = 'name="pathway.deadline.latest" value="add_months(symptom_onset, 3)"'
INTAKE = {
    "patient_ref": "MRN-BOUNDS",
    "side": "left",
    "symptom_onset": "2026-01-01",
    "leg_pain_nrs": 6,
    "disabling_pain": False,
    "age": 44,
}


def _in_conservative_care(db: Database, latest: str) -> tuple[str, engine.SimulatedClock]:
    bpmn = (BPMN / "lumbar_radiculopathy.bpmn").read_text()
    assert LATEST in bpmn
    bpmn = bpmn.replace(LATEST, f'name="pathway.deadline.latest" value="{latest}"')
    clock = engine.SimulatedClock(START)
    files = [
        ("lumbar_radiculopathy.bpmn", bpmn.encode()),
        ("red_flags.dmn", (BPMN / "red_flags.dmn").read_bytes()),
    ]
    with db.sessions.begin() as session:
        engine.deploy(session, files=files, now=clock.now())
        case_id = engine.start_case(
            session, pathway="lumbar_radiculopathy", clock=clock, actor="ana"
        ).id
        for step, data in (
            ("intake", INTAKE),
            ("red_flag_screen", NO_RED_FLAGS),
            ("conservative_plan", GOOD_PLAN),
        ):
            engine.complete_task(
                session, case_id=case_id, step=step, data=data, clock=clock, actor="ana"
            )
    return case_id, clock


def _deadline(db: Database, case_id: str, clock: engine.SimulatedClock) -> engine.Deadline:
    with db.sessions() as session:
        view = engine.get_case(session, case_id, clock=clock)
    return next(d for d in view.deadlines if d.kind == "referral_escalation_3_months")


def _move(db: Database, case_id: str, clock: engine.SimulatedClock, due: datetime) -> None:
    with db.sessions.begin() as session:
        engine.reschedule_deadline(
            session,
            case_id=case_id,
            kind="referral_escalation_3_months",
            due_at=due,
            reason="clinic list",
            clock=clock,
            actor="ana",
        )


@pytest.mark.parametrize(
    "latest",
    ["add_months(referral_completed_on, 3)", "'in three months'"],
    ids=["a-name-not-yet-set", "not-a-date"],
)
def test_a_latest_the_case_cannot_work_out_is_null_and_refuses_every_move(
    db: Database, latest: str
) -> None:
    case_id, clock = _in_conservative_care(db, latest)
    deadline = _deadline(db, case_id, clock)
    assert (deadline.latest_at, deadline.earliest_at) == (None, None)
    with pytest.raises(engine.ExecutionFailed, match="deadline limit"):
        _move(db, case_id, clock, deadline.due_at - timedelta(days=1))
    assert _deadline(db, case_id, clock).due_at == deadline.due_at


def test_the_latest_shown_is_the_one_a_move_is_checked_against(db: Database) -> None:
    case_id, clock = _in_conservative_care(db, "add_months(symptom_onset, 3)")
    deadline = _deadline(db, case_id, clock)
    assert deadline.latest_at is not None
    with pytest.raises(engine.InvalidTaskData, match="must not be later than"):
        _move(db, case_id, clock, deadline.latest_at + timedelta(seconds=1))
    _move(db, case_id, clock, deadline.latest_at)
    assert _deadline(db, case_id, clock).due_at == deadline.latest_at
