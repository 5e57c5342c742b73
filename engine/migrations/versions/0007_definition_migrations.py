"""Migrations of running cases between versions of a pathway, and each case's outcome; the
names of each version's files.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from engine.store import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "definition_migrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pathway", sa.String(200), nullable=False),
        sa.Column(
            "from_definition_id",
            sa.Integer,
            sa.ForeignKey("definitions.id", name="fk_definition_migrations_from_definition_id_definitions"),
            nullable=False,
        ),
        sa.Column(
            "to_definition_id",
            sa.Integer,
            sa.ForeignKey("definitions.id", name="fk_definition_migrations_to_definition_id_definitions"),
            nullable=False,
        ),
        sa.Column("from_version", sa.Integer, nullable=False),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_definition_migrations"),
    )
    op.create_index("ix_definition_migrations_pathway", "definition_migrations", ["pathway"])
    op.create_index(
        "uq_definition_migrations_running",
        "definition_migrations",
        ["pathway"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.add_column("definitions", sa.Column("file_names", sa.JSON, nullable=True))
    op.create_table(
        "migration_cases",
        sa.Column(
            "migration_id",
            sa.Integer,
            sa.ForeignKey(
                "definition_migrations.id",
                name="fk_migration_cases_migration_id_definition_migrations",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("migration_id", "case_id", name="pk_migration_cases"),
    )


def downgrade() -> None:
    # Not a batch operation: on SQLite that copies the table, which the cases' foreign key
    # to it refuses. SQLite 3.35+ drops a column in place.
    op.execute("ALTER TABLE definitions DROP COLUMN file_names")
    op.drop_table("migration_cases")
    op.drop_index("uq_definition_migrations_running", table_name="definition_migrations")
    op.drop_index("ix_definition_migrations_pathway", table_name="definition_migrations")
    op.drop_table("definition_migrations")
