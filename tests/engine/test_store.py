"""The Alembic migrations build exactly the schema the engine's tables describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import engine
from engine.store import metadata
from tests.conftest import Database


def test_migrations_match_the_table_definitions(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, metadata) == []
    assert engine.current_revision(db.engine) == "0003"


def test_upgrade_is_idempotent(db: Database) -> None:
    engine.upgrade(db.engine)
    assert engine.current_revision(db.engine) == "0003"
