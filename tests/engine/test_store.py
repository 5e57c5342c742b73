"""The Alembic migrations build exactly the schema the engine's tables describe."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import engine
from engine.store import metadata
from tests.conftest import Database


def alembic(db: Database, action: str, revision: str) -> None:
    """Run an Alembic command on the test's database."""
    from alembic import command

    from engine.store import _alembic_config

    with db.engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_migrations_match_the_table_definitions(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, metadata) == []
    assert engine.current_revision(db.engine) == "0007"


def test_upgrade_is_idempotent(db: Database) -> None:
    engine.upgrade(db.engine)
    assert engine.current_revision(db.engine) == "0007"


def test_the_roles_of_ready_steps_are_carried_into_rows_of_their_own(db: Database) -> None:
    """Migration 0004: a ready step's comma-joined roles become one row each, and the worklist
    then matches a role exactly."""
    from sqlalchemy import select, text

    from engine.store import case_task_roles

    alembic(db, "downgrade", "0003")
    now = datetime(2026, 1, 5, tzinfo=UTC)
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO definition_files VALUES ('f', 'a.bpmn', :b, :t)"),
            {"b": b"x", "t": now.replace(tzinfo=None)},
        )
        conn.execute(
            text(
                "INSERT INTO definitions (pathway, version, bundle_sha256, bpmn_sha256, dmn_sha256,"
                " created_at) VALUES ('p', 1, 'b', 'f', '[]', :t)"
            ),
            {"t": now.replace(tzinfo=None)},
        )
        definition_id = conn.scalar(text("SELECT id FROM definitions"))
        conn.execute(
            text(
                "INSERT INTO cases (id, pathway, definition_id, patient_ref, status, escalated,"
                " version, state, created_at, updated_at) VALUES ('c1', 'p', :d, 'SYN-1',"
                " 'active', false, 1, :s, :t, :t)"
            ),
            {"d": definition_id, "s": b"", "t": now.replace(tzinfo=None)},
        )
        for task_id, step, role in [
            ("t1", "shared", "coordinator, clinician"),
            ("t2", "clinical", "clinician"),
            ("t3", "open", None),
        ]:
            conn.execute(
                text(
                    "INSERT INTO case_tasks (case_id, task_id, step, role, urgent, ready_at)"
                    " VALUES ('c1', :task, :step, :role, false, :t)"
                ),
                {"task": task_id, "step": step, "role": role, "t": now.replace(tzinfo=None)},
            )
    alembic(db, "upgrade", "head")
    with db.sessions() as session:
        carried = {(r.task_id, r.role) for r in session.execute(select(case_task_roles))}
        assert carried == {("t1", "coordinator"), ("t1", "clinician"), ("t2", "clinician")}
        coordinator = engine.worklist(
            session, now=now, roles=frozenset({engine.Role.COORDINATOR})
        ).items
        assert sorted(item.task for item in coordinator) == ["open", "shared"]
        clinician = engine.worklist(
            session, now=now, roles=frozenset({engine.Role.CLINICIAN})
        ).items
        assert sorted(item.task for item in clinician) == ["clinical", "open", "shared"]


def test_patient_references_are_normalised_and_collisions_reported_not_merged(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Migration 0005: each stored reference gets its one spelling, with a timeline entry;
    two active cases that would then name the same patient are both left and reported."""
    from sqlalchemy import text

    alembic(db, "downgrade", "0004")
    now = datetime(2026, 1, 5, tzinfo=UTC).replace(tzinfo=None)
    stored = {
        "c-fullwidth": ("\uff35\uff2e\uff29-7", "active"),  # alone once normalised: changed
        "c-padded": (" SYN-8 ", "cancelled"),  # closed: changed all the same
        "c-plain": ("SYN-9", "active"),  # and an active twin with a zero-width space:
        "c-twin": ("SYN\u200b-9", "active"),  # both left, reported
        "c-blank": ("\u200b ", "active"),  # blank once normalised: left, reported
        "c-fine": ("SYN-10", "active"),  # already in its one spelling: untouched
        "c-accent": ("Jose\u200d\u0301-1", "cancelled"),  # NFKC again once the joiner goes
    }
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO definition_files VALUES ('f', 'a.bpmn', :b, :t)"),
            {"b": b"x", "t": now},
        )
        conn.execute(
            text(
                "INSERT INTO definitions (pathway, version, bundle_sha256, bpmn_sha256, dmn_sha256,"
                " created_at) VALUES ('p', 1, 'b', 'f', '[]', :t)"
            ),
            {"t": now},
        )
        definition_id = conn.scalar(text("SELECT id FROM definitions"))
        for case_id, (ref, status) in stored.items():
            conn.execute(
                text(
                    "INSERT INTO cases (id, pathway, definition_id, patient_ref, status,"
                    " escalated, version, state, created_at, updated_at) VALUES (:id, 'p', :d,"
                    " :ref, :status, false, 1, :s, :t, :t)"
                ),
                {
                    "id": case_id,
                    "d": definition_id,
                    "ref": ref,
                    "status": status,
                    "s": b"",
                    "t": now,
                },
            )
    with caplog.at_level("WARNING", logger="engine.migrations"):
        alembic(db, "upgrade", "head")

    with db.engine.connect() as conn:
        refs = dict(conn.execute(text("SELECT id, patient_ref FROM cases")).all())
        versions = dict(conn.execute(text("SELECT id, version FROM cases")).all())
        events = conn.execute(
            text("SELECT case_id, type, actor, detail FROM case_events ORDER BY case_id")
        ).all()
    assert refs == {
        "c-fullwidth": "UNI-7",
        "c-padded": "SYN-8",
        "c-plain": "SYN-9",
        "c-twin": "SYN\u200b-9",
        "c-blank": "\u200b ",
        "c-fine": "SYN-10",
        "c-accent": "Jos\u00e9-1",
    }
    assert [(e.case_id, e.type, e.actor) for e in events] == [
        ("c-accent", "patient_ref_normalised", "schema migration 0005"),
        ("c-fullwidth", "patient_ref_normalised", "schema migration 0005"),
        ("c-padded", "patient_ref_normalised", "schema migration 0005"),
    ]
    detail = (
        events[1].detail if isinstance(events[1].detail, dict) else json.loads(events[1].detail)
    )
    assert detail["from"] == "\uff35\uff2e\uff29-7" and detail["to"] == "UNI-7"
    assert "one spelling" in detail["reason"]
    assert versions == {
        "c-fullwidth": 2,
        "c-padded": 2,
        "c-plain": 1,
        "c-twin": 1,
        "c-fine": 1,
        "c-blank": 1,
        "c-accent": 2,
    }
    report = caplog.text
    assert "c-plain, c-twin" in report and "left as they were" in report
    assert "case c-blank" in report and "blank" in report
    assert "SYN-9" not in report and "SYN\u200b-9" not in report  # ids, never references
    # The timeline reads the new entry, and the lookup finds the changed case by its spelling.
    with db.sessions() as session:
        assert [e.type for e in engine.timeline(session, "c-fullwidth")] == [
            engine.EventType.PATIENT_REF_NORMALISED
        ]
        page = engine.list_cases(session, now=now.replace(tzinfo=UTC), patient_ref="ＵＮＩ-7")
        assert [item.id for item in page.items] == ["c-fullwidth"]
    # Going back below 0005 would leave entries older code cannot read: refused.
    with pytest.raises(RuntimeError, match="cannot downgrade below 0005"):
        alembic(db, "downgrade", "0004")
