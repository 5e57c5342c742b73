"""The Alembic migrations build exactly the schema the engine's tables describe."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import engine
from engine.store import metadata
from tests.conftest import Database


def test_migrations_match_the_table_definitions(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, metadata) == []
    assert engine.current_revision(db.engine) == "0004"


def test_upgrade_is_idempotent(db: Database) -> None:
    engine.upgrade(db.engine)
    assert engine.current_revision(db.engine) == "0004"


def test_the_roles_of_ready_steps_are_carried_into_rows_of_their_own(db: Database) -> None:
    """Migration 0004: a ready step's comma-joined roles become one row each, and the worklist
    then matches a role exactly."""
    from alembic import command
    from sqlalchemy import select, text

    from engine.store import _alembic_config, case_task_roles

    def alembic(action: str, revision: str) -> None:
        with db.engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)

    alembic("downgrade", "0003")
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
    alembic("upgrade", "head")
    with db.sessions() as session:
        carried = {(r.task_id, r.role) for r in session.execute(select(case_task_roles))}
        assert carried == {("t1", "coordinator"), ("t1", "clinician"), ("t2", "clinician")}
        coordinator = engine.worklist(session, now=now, roles=frozenset({engine.Role.COORDINATOR}))
        assert sorted(item.task for item in coordinator) == ["open", "shared"]
        clinician = engine.worklist(session, now=now, roles=frozenset({engine.Role.CLINICIAN}))
        assert sorted(item.task for item in clinician) == ["clinical", "open", "shared"]
