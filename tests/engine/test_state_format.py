"""A case saved in an older stored-state format loads, and carries on along its pathway.

``data/state_format_1/`` holds a case saved by the engine before the state format carried its
own version (format 1, ``pathway-1/spiff-1.5``): a patient with disabling pain in conservative
care, waiting on its 2-week, 6-week and 3-month timers, with the diagrams it ran on.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select

import engine
from engine.runtime import FORMAT, StateFormatError, migrate, state
from engine.store import case_timers, cases
from tests.conftest import Database

FIXTURE = Path(__file__).parent / "data" / "state_format_1"
SAVED = json.loads((FIXTURE / "case.json").read_text())
BLOB = (FIXTURE / "state.zlib").read_bytes()
SAVED_AT = datetime.fromisoformat(SAVED["saved_at"])


def _stored_document(blob: bytes) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(zlib.decompress(blob))
    return document


def _restore_old_case(db: Database) -> str:
    """Put the old case back in a database, as an upgraded installation would find it."""
    files = [
        (p.name, p.read_bytes()) for p in sorted(FIXTURE.iterdir()) if p.suffix in (".bpmn", ".dmn")
    ]
    with db.sessions.begin() as session:
        info = engine.deploy(session, files=files, now=SAVED_AT)
        session.execute(
            insert(cases).values(
                id=SAVED["case_id"],
                pathway=info.pathway,
                definition_id=info.id,
                patient_ref=SAVED["patient_ref"],
                status="active",
                end_event=None,
                escalated=False,
                version=3,
                state=BLOB,
                created_at=SAVED_AT,
                updated_at=SAVED_AT,
                ended_at=None,
                cancel_reason=None,
            )
        )
    return str(SAVED["case_id"])


def test_the_fixture_is_in_the_old_format() -> None:
    assert _stored_document(BLOB)["format"] == "pathway-1/spiff-1.5"
    assert FORMAT > 1


def test_a_case_saved_in_format_1_shows_its_step_and_deadline(db: Database) -> None:
    case_id = _restore_old_case(db)
    clock = engine.SimulatedClock(SAVED_AT + timedelta(days=1))
    with db.sessions() as session:
        view = engine.get_case(session, case_id, clock=clock)
    assert [t.id for t in view.ready_tasks] == SAVED["ready_steps"] == ["specialist_referral"]
    referral_due = datetime.fromisoformat(SAVED["deadlines"]["referral_due_2_weeks"])
    assert view.ready_tasks[0].due_at == referral_due


def test_a_case_saved_in_format_1_continues_and_is_saved_in_the_current_format(
    db: Database,
) -> None:
    case_id = _restore_old_case(db)
    clock = engine.SimulatedClock(SAVED_AT + timedelta(days=10))
    with db.sessions.begin() as session:
        view = engine.complete_task(
            session,
            case_id=case_id,
            step="specialist_referral",
            data={"referral_date": clock.now().date().isoformat(), "specialty": "spine surgery"},
            clock=clock,
            actor="coordinator:ana",
        )
    assert view.version == 4
    assert "referral_due_2_weeks" not in {d.kind for d in view.deadlines}
    reassessment = datetime.fromisoformat(SAVED["deadlines"]["reassessment_due_6_weeks"])
    assert reassessment in {d.due_at for d in view.deadlines}
    with db.sessions() as session:
        stored = _stored_document(session.scalar(select(cases.c.state)))
        timers = set(session.scalars(select(case_timers.c.deadline)))
    assert stored["format"] == FORMAT
    assert "reassessment_due_6_weeks" in timers

    # The 6-week timer it kept through the upgrade falls due and brings the reassessment.
    with db.sessions.begin() as session:
        report = engine.fire_due(session, now=reassessment)
    assert report.cases == [case_id]
    with db.sessions() as session:
        view = engine.get_case(session, case_id, clock=engine.SimulatedClock(reassessment))
    assert "six_week_reassessment" in {t.id for t in view.ready_tasks}


def test_a_state_from_a_newer_engine_is_refused_with_a_reason() -> None:
    with pytest.raises(StateFormatError, match="newer than this engine"):
        migrate({"format": FORMAT + 1, "spiff": "1.5"})


def test_a_task_tree_from_an_unknown_spiffworkflow_serializer_is_refused() -> None:
    with pytest.raises(StateFormatError, match="no migration from it"):
        migrate({"format": FORMAT, "spiff": "0.1"})


def test_a_task_tree_from_an_older_spiffworkflow_serializer_goes_through_its_migrations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chain a SpiffWorkflow upgrade would extend: 1.3 to 1.4 to the current version."""
    seen: list[str] = []

    def step_to(version: str) -> Any:
        def step(dct: dict[str, Any]) -> dict[str, Any]:
            seen.append(f"{dct['spiff']}->{version}")
            return {**dct, "spiff": version}

        return step

    current = state.SPIFF_VERSION
    monkeypatch.setattr(state, "SPIFF_MIGRATIONS", {"1.3": step_to("1.4"), "1.4": step_to(current)})
    document = migrate({"format": "pathway-1/spiff-1.3", "tasks": {}})
    assert seen == ["1.3->1.4", f"1.4->{current}"]
    assert (document["format"], document["spiff"]) == (FORMAT, current)
