"""Indexes for exports filtered by date range or staff member.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_index("ix_messages_staff", "messages", ["staff_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_staff", table_name="messages")
    op.drop_index("ix_messages_created_at", table_name="messages")
