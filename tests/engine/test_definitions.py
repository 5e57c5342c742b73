"""Definitions are validated, stored once per content hash byte for byte, and versioned."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

import engine
from engine import definitions
from engine.store import definition_files
from engine.store import definitions as definitions_table
from tests.conftest import Database

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"


def _files(bpmn: bytes | None = None) -> list[tuple[str, bytes]]:
    return [
        (
            "lumbar_radiculopathy.bpmn",
            bpmn or (BPMN_DIR / "lumbar_radiculopathy.bpmn").read_bytes(),
        ),
        ("red_flags.dmn", (BPMN_DIR / "red_flags.dmn").read_bytes()),
    ]


def test_same_bytes_deploy_once_and_new_bytes_make_a_new_version(db: Database) -> None:
    original = _files()
    with db.sessions.begin() as session:
        first = engine.deploy(session, files=original, now=NOW)
        again = engine.deploy(session, files=list(reversed(original)), now=NOW)
    assert (first.pathway, first.version) == ("lumbar_radiculopathy", 1)
    assert again == first
    edited = original[0][1].replace(b'name="Intake"', b'name="Intake (edited)"')
    with db.sessions.begin() as session:
        second = engine.deploy(session, files=_files(edited), now=NOW)
        assert engine.latest(session, "lumbar_radiculopathy") == second
        stored_files = session.scalar(select(func.count()).select_from(definition_files))
    assert second.version == 2
    assert stored_files == 3, "the unchanged DMN file is stored once"


def test_original_bytes_come_back_exactly(db: Database) -> None:
    # Odd but valid formatting that any re-serialisation would change.
    bpmn = _files()[0][1].replace(b"<bpmn:process ", b"<!-- kept -->\n<bpmn:process   ")
    with db.sessions.begin() as session:
        info = engine.deploy(session, files=_files(bpmn), now=NOW)
    with db.sessions() as session:
        assert engine.original_files(session, info.id) == _files(bpmn)


def test_an_invalid_definition_is_refused_and_nothing_is_stored(db: Database) -> None:
    bad = _files()[0][1].replace(b'red_flag != "none"', b"open('/etc/passwd').read()")
    with db.sessions.begin() as session, pytest.raises(engine.DefinitionInvalid) as refused:
        engine.deploy(session, files=_files(bad), now=NOW)
    assert any(p.element_id == "flow_red_flag" and p.line for p in refused.value.problems)
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(definitions_table)) == 0
        assert session.scalar(select(func.count()).select_from(definition_files)) == 0


def test_a_case_keeps_running_on_its_own_version(db: Database) -> None:
    clock = engine.SimulatedClock(NOW)
    with db.sessions.begin() as session:
        engine.deploy(session, files=_files(), now=NOW)
        case = engine.start_case(session, pathway="lumbar_radiculopathy", clock=clock, actor="a")
        edited = _files()[0][1].replace(b'name="Intake"', b'name="Intake v2"')
        engine.deploy(session, files=_files(edited), now=NOW)
        newer = engine.start_case(session, pathway="lumbar_radiculopathy", clock=clock, actor="a")
    assert (case.definition_version, newer.definition_version) == (1, 2)
    assert case.ready_tasks[0].name == "Intake"
    assert newer.ready_tasks[0].name == "Intake v2"


def test_unknown_pathway_is_named(db: Database) -> None:
    with db.sessions() as session, pytest.raises(engine.DefinitionNotFound, match="hip_fracture"):
        engine.start_case(session, pathway="hip_fracture", clock=engine.SystemClock(), actor="a")


def test_parse_cache_is_shared_between_loads(db: Database) -> None:
    with db.sessions.begin() as session:
        info = engine.deploy(session, files=_files(), now=NOW)
        assert definitions.load(session, info.id) is definitions.load(session, info.id)
