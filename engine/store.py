"""Persistence: the tables, the database engine and schema migrations.

SQLite (a file) is the embedded default; PostgreSQL when ``PATHWAY_DATABASE_URL`` names one.
Times are stored as UTC and always come back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as aware UTC, on every database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store an aware time as naive UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a timezone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read a stored time as aware UTC."""
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

definition_files = Table(
    "definition_files",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("filename", String(255), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

definitions = Table(
    "definitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pathway", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("bundle_sha256", String(64), nullable=False, unique=True),
    Column("bpmn_sha256", ForeignKey("definition_files.sha256"), nullable=False),
    Column("dmn_sha256", JSON, nullable=False),
    # The files' names as this version was deployed, BPMN first (a file's bytes are stored
    # once, under the name they were first deployed with). Null for older versions.
    Column("file_names", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("pathway", "version", name="uq_definitions_pathway_version"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("pathway", String(200), nullable=False),
    Column("definition_id", ForeignKey("definitions.id"), nullable=False),
    Column("patient_ref", String(64), nullable=True, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("end_event", String(200), nullable=True),
    Column("escalated", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("cancel_reason", Text, nullable=True),
    # One active case per patient and pathway, enforced by the database itself.
    Index(
        "uq_cases_active_patient",
        "pathway",
        "patient_ref",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

case_tasks = Table(
    "case_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("task_id", String(36), nullable=False),
    Column("step", String(200), nullable=False),
    Column("name", String(500), nullable=True),
    Column("role", String(200), nullable=True),
    Column("urgent", Boolean, nullable=False),
    Column("due_at", UTCDateTime, nullable=True),
    Column("ready_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(200), nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Index("ix_case_tasks_worklist", "urgent", "due_at"),
    UniqueConstraint("case_id", "task_id", name="uq_case_tasks_case_id_task_id"),
)

# The roles that may do a ready step, one row each, so that a worklist matches a role exactly.
# They go with their step's row (``case_tasks.role`` keeps the diagram's text for display).
case_task_roles = Table(
    "case_task_roles",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("task_id", String(36), primary_key=True),
    Column("role", String(32), primary_key=True),
    ForeignKeyConstraint(
        ["case_id", "task_id"],
        ["case_tasks.case_id", "case_tasks.task_id"],
        name="fk_case_task_roles_case_tasks",
        ondelete="CASCADE",
    ),
    Index("ix_case_task_roles_role", "role", "case_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

case_timers = Table(
    "case_timers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("task_id", String(36), nullable=False),
    Column("step", String(200), nullable=False),
    Column("deadline", String(200), nullable=True),
    Column("due_at", UTCDateTime, nullable=False),
    Index("ix_case_timers_due_at", "due_at"),
)

reminders = Table(
    "reminders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(200), nullable=False),
    Column("step", String(200), nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("raised_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("enqueued_at", UTCDateTime, nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("case_id", "kind", name="uq_reminders_case_kind"),
    Index("ix_reminders_status_next", "status", "next_attempt_at"),
)

reminder_attempts = Table(
    "reminder_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "reminder_id", ForeignKey("reminders.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("attempt", Integer, nullable=False),
    Column("channel", String(50), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text, nullable=True),
)

variances = Table(
    "variances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("code", String(200), nullable=False),
    Column("step", String(200), nullable=False),
    Column("rule", Text, nullable=True),
    Column("evidence", JSON, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("case_id", "code", "step", name="uq_variances_case_code_step"),
)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("type", String(32), nullable=False),
    Column("step", String(200), nullable=True),
    Column("actor", String(200), nullable=True),
    Column("detail", JSON, nullable=False),
    Column("evidence", JSON, nullable=True),
)

# A move of a pathway's running cases from one version to another, and each case's outcome.
definition_migrations = Table(
    "definition_migrations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pathway", String(200), nullable=False, index=True),
    Column("from_definition_id", ForeignKey("definitions.id"), nullable=False),
    Column("to_definition_id", ForeignKey("definitions.id"), nullable=False),
    Column("from_version", Integer, nullable=False),
    Column("to_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    Column("actor", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    # One running migration per pathway, enforced by the database itself.
    Index(
        "uq_definition_migrations_running",
        "pathway",
        unique=True,
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
)

migration_cases = Table(
    "migration_cases",
    metadata,
    Column(
        "migration_id",
        ForeignKey("definition_migrations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("case_id", String(36), primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", UTCDateTime, nullable=True),
)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create a database engine; SQLite gets foreign keys and a busy timeout.

    Bound parameters are hidden from SQLAlchemy's errors and logs: they are patient data, and
    an error's text ends up in tracebacks.
    """
    kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
    else:
        # No ping per checkout (a round trip on every request): a connection the server
        # dropped fails once with OperationalError (a 503), and SQLAlchemy then replaces
        # the whole pool on that disconnect.
        kwargs["pool_recycle"] = 1800
        # A server that does not answer at all (a host gone, packets dropped) fails a new
        # connection within 5 s: /readyz and every request answer 503 instead of waiting out
        # TCP's own timeout. A connect_timeout in the URL wins.
        if "connect_timeout" not in make_url(url).query:
            kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy's recipe: let SQLAlchemy, not pysqlite, open transactions ...
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if url not in ("sqlite://", "sqlite:///:memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # ... and take the write lock up front, so two writers queue instead of one
            # failing on a stale snapshot: the second then sees the first one's commit.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to an engine (sessions never autoflush surprises)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to date with the Alembic migrations."""
    # Alembic is imported where it is used (here and below), not at the top: importing it
    # costs a third of a second that workers and most commands never need.
    from alembic import command

    with engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """Return the schema revision the database is at (None when it has none)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        rev: str | None = MigrationContext.configure(connection).get_current_revision()
        return rev


@cache
def _alembic_script_location() -> str:
    return str(MIGRATIONS)


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _alembic_script_location())
    return config
