"""Team workflow: who owns each conversation, internal notes, the team's notes on a customer.

`conversations.assignee_id` (None: nobody owns it) with two indexes for the list's views: by
status (All open, Closed) and by owner and status (Mine, Unassigned), newest activity first.
`notes`: internal notes in a thread, never sent to a customer. `customers.notes`: free text.

Revision ID: 0005_team
Revises: 0004_reports
"""

import sqlalchemy as sa
from alembic import op

import inbox.models

revision = "0005_team"
down_revision = "0004_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(
            sa.Column("assignee_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_foreign_key("fk_conversations_assignee_id_staff", "staff", ["assignee_id"], ["id"])
        batch_op.create_index("ix_conversations_status_activity", ["status", "last_activity_at", "id"])
        batch_op.create_index("ix_conversations_assignee_activity", ["assignee_id", "status", "last_activity_at", "id"])
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
    op.create_table(
        "notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", inbox.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notes_conversation", "notes", ["conversation_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_notes_conversation", table_name="notes")
    op.drop_table("notes")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("notes")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_index("ix_conversations_assignee_activity")
        batch_op.drop_index("ix_conversations_status_activity")
        batch_op.drop_constraint("fk_conversations_assignee_id_staff", type_="foreignkey")
        batch_op.drop_column("assignee_id")
