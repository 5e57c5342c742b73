"""The roles of a ready step as rows of their own, matched exactly by the worklist.

``case_tasks.role`` held the diagram's comma-joined candidate groups and the worklist matched
them with LIKE patterns; each role now has a row in ``case_task_roles``. Existing ready steps
are carried over.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_tasks") as batch:
        batch.create_unique_constraint("uq_case_tasks_case_id_task_id", ["case_id", "task_id"])
    roles = op.create_table(
        "case_task_roles",
        sa.Column("case_id", sa.String(36), primary_key=True),
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
        sa.ForeignKeyConstraint(
            ["case_id", "task_id"],
            ["case_tasks.case_id", "case_tasks.task_id"],
            name="fk_case_task_roles_case_tasks",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_case_task_roles_role", "case_task_roles", ["role", "case_id"])
    bind = op.get_bind()
    rows = [
        {"case_id": case_id, "task_id": task_id, "role": role}
        for case_id, task_id, joined in bind.execute(
            sa.text("SELECT case_id, task_id, role FROM case_tasks WHERE role IS NOT NULL")
        )
        for role in dict.fromkeys(r.strip() for r in joined.split(","))
        if role
    ]
    if rows:
        op.bulk_insert(roles, rows)


def downgrade() -> None:
    op.drop_index("ix_case_task_roles_role", table_name="case_task_roles")
    op.drop_table("case_task_roles")
    with op.batch_alter_table("case_tasks") as batch:
        batch.drop_constraint("uq_case_tasks_case_id_task_id", type_="unique")
