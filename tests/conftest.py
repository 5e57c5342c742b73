"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

Each test owns a fresh database: SQLite gets a copy of a migrated template file; PostgreSQL
gets a database created for this test run, migrated once and emptied before each test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

import engine

PG_ADMIN_URL = os.environ.get(
    "PATHWAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
TABLES = (
    "migration_cases",
    "definition_migrations",
    "case_events",
    "variances",
    "reminders",
    "case_timers",
    "cases",
    "definitions",
    "definition_files",
)


@dataclass
class Database:
    """A fresh database for one test."""

    kind: str
    url: str
    engine: Engine
    sessions: sessionmaker[Session]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = engine.make_engine(f"sqlite:///{path}")
    engine.upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with own_postgres_database(prefix="pathway_test") as url:
        yield url


@contextmanager
def own_postgres_database(*, prefix: str = "pathway_own") -> Iterator[str]:
    """A migrated PostgreSQL database of its own, dropped afterwards (the test run's shared
    one, or one for a server whose definitions a test changes: the shared database keeps the
    bundled pathway as its only version)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        _unavailable(f"{PG_ADMIN_URL}: {exc.__class__.__name__}")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    db = engine.make_engine(url)
    engine.upgrade(db)
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "pathway.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        db_engine = engine.make_engine(url)
    else:
        url = request.getfixturevalue("postgres_url")
        db_engine = _emptied(url)
    yield Database(request.param, url, db_engine, engine.session_factory(db_engine))
    db_engine.dispose()


@pytest.fixture
def postgresql_db(postgres_url: str) -> Iterator[Database]:
    """A fresh PostgreSQL database only, for tests whose subject is not the database (the
    production database; running them on both would only double their time)."""
    db_engine = _emptied(postgres_url)
    yield Database("postgresql", postgres_url, db_engine, engine.session_factory(db_engine))
    db_engine.dispose()


def _emptied(url: str) -> Engine:
    db_engine = engine.make_engine(url)
    with db_engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE"))
    return db_engine
