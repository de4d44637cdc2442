"""An index for the reports: a conversation's messages in time, with what says whether each is a
customer's question or a staff reply.

The reports ask, per conversation, for its last message before an instant, the last staff reply
before it and the first customer message after that (first-response times across the period's
start; conversations waiting now). With this index each is one short index-only scan (the
columns that tell a question from a reply are in it); without it, a walk through the
conversation's rows.

Revision ID: 0004_reports
Revises: 0002
"""

from alembic import op

revision = "0004_reports"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_thread_time",
        "messages",
        ["conversation_id", "created_at", "direction", "staff_id", "auto_reply", "keyword", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_messages_thread_time", table_name="messages")
