"""Definitions, cases, timers, reminders, variances and the audit log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from engine.store import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "definition_files",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "definitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pathway", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.Column("bpmn_sha256", sa.String(64), sa.ForeignKey("definition_files.sha256",
                  name="fk_definitions_bpmn_sha256_definition_files"), nullable=False),
        sa.Column("dmn_sha256", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("bundle_sha256", name="uq_definitions_bundle_sha256"),
        sa.UniqueConstraint("pathway", "version", name="uq_definitions_pathway_version"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("pathway", sa.String(200), nullable=False),
        sa.Column("definition_id", sa.Integer, sa.ForeignKey("definitions.id",
                  name="fk_cases_definition_id_definitions"), nullable=False),
        sa.Column("patient_ref", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("end_event", sa.String(200), nullable=True),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("cancel_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_cases_patient_ref", "cases", ["patient_ref"])
    op.create_index("ix_cases_status", "cases", ["status"])
    op.create_table(
        "case_timers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id", ondelete="CASCADE",
                  name="fk_case_timers_case_id_cases"), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("deadline", sa.String(200), nullable=True),
        sa.Column("due_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_case_timers_case_id", "case_timers", ["case_id"])
    op.create_index("ix_case_timers_due_at", "case_timers", ["due_at"])
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id", ondelete="CASCADE",
                  name="fk_reminders_case_id_cases"), nullable=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.UniqueConstraint("case_id", "kind", name="uq_reminders_case_kind"),
    )
    op.create_index("ix_reminders_status", "reminders", ["status"])
    op.create_table(
        "variances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id", ondelete="CASCADE",
                  name="fk_variances_case_id_cases"), nullable=False),
        sa.Column("code", sa.String(200), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("rule", sa.Text, nullable=True),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("case_id", "code", "step", name="uq_variances_case_code_step"),
    )
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id", ondelete="CASCADE",
                  name="fk_case_events_case_id_cases"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("step", sa.String(200), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=True),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])


def downgrade() -> None:
    for table in ("case_events", "variances", "reminders", "case_timers", "cases",
                  "definitions", "definition_files"):
        op.drop_table(table)
