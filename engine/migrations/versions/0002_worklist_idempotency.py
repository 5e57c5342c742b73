"""Ready steps for worklists, idempotency keys, one active case per patient and pathway.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from engine.store import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "case_id",
            sa.String(36),
            sa.ForeignKey("cases.id", ondelete="CASCADE", name="fk_case_tasks_case_id_cases"),
            nullable=False,
        ),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("role", sa.String(200), nullable=True),
        sa.Column("urgent", sa.Boolean, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=True),
        sa.Column("ready_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_case_tasks_case_id", "case_tasks", ["case_id"])
    op.create_index("ix_case_tasks_worklist", "case_tasks", ["urgent", "due_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column(
            "case_id",
            sa.String(36),
            sa.ForeignKey(
                "cases.id", ondelete="CASCADE", name="fk_idempotency_keys_case_id_cases"
            ),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "uq_cases_active_patient",
        "cases",
        ["pathway", "patient_ref"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index("uq_cases_active_patient", table_name="cases")
    op.drop_table("idempotency_keys")
    op.drop_table("case_tasks")
