"""Reminder delivery: attempts, backoff, claims and outcomes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from engine.store import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("enqueued_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("claimed_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("sent_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text, nullable=True))
    op.create_index("ix_reminders_status_next", "reminders", ["status", "next_attempt_at"])
    op.create_table(
        "reminder_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "reminder_id",
            sa.Integer,
            sa.ForeignKey(
                "reminders.id", ondelete="CASCADE", name="fk_reminder_attempts_reminder_id_reminders"
            ),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_reminder_attempts_reminder_id", "reminder_attempts", ["reminder_id"])


def downgrade() -> None:
    op.drop_table("reminder_attempts")
    op.drop_index("ix_reminders_status_next", table_name="reminders")
    with op.batch_alter_table("reminders") as batch:
        for column in ("last_error", "sent_at", "claimed_at", "enqueued_at", "next_attempt_at",
                       "attempts"):
            batch.drop_column(column)
