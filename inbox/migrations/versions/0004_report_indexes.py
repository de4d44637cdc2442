"""An index for the reports: a conversation's messages by direction and time.

The reports ask, per conversation, for the last staff reply before an instant and the first
customer message after it (first-response times across the period's start; conversations
waiting now): two index probes each with this index, a walk through the conversation without it.

Revision ID: 0004_reports
Revises: 0002
"""

from alembic import op

revision = "0004_reports"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_thread_direction", "messages", ["conversation_id", "direction", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_thread_direction", table_name="messages")
