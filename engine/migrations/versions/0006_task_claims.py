"""Claims on ready steps: who said they are working a step, and since when.

A claim is a signpost on the worklist, not a lock: anyone of the step's role may still
complete it. Claiming and releasing are in the case's timeline.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from engine.store import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_tasks") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("claimed_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_tasks") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
