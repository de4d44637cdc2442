"""Reports: when the wait each staff reply ended began, and an index by conversation and time.

`messages.wait_started_at` (staff replies only): the customer's first message since the last
staff reply, stored as the reply is queued, so that first-response times are read from the
period's replies instead of worked out from the whole history at report time. Filled here for
the replies already stored, in one statement.

`ix_messages_first_responses` (partial: replies with a wait) and `ix_messages_created_at`, widened
with direction, channel, status and error code: a period's first responses and its counts per
day and outcome come from the indexes alone.

`ix_messages_thread_time`: a conversation's messages in time, with the columns that tell a
customer's question from a staff reply, so that "the last staff reply before T and the first
question after it" (as a reply is queued; the conversations waiting now) is two short
index-only scans instead of a walk through the conversation's rows.

Revision ID: 0004_reports
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_reports"
down_revision = "0002_staff_access"
branch_labels = None
depends_on = None

# A frozen copy of inbox.reports.BACKFILL_WAITS as it was when this migration was written.
BACKFILL = """
WITH w AS (
  SELECT m.id, m.conversation_id, m.created_at,
         CASE WHEN m.direction = 'inbound' THEN 1 ELSE 0 END AS asks,
         CASE WHEN m.direction = 'outbound' THEN 1 ELSE 0 END AS answers
  FROM messages m
  WHERE (m.direction = 'inbound' AND m.keyword IS NULL)
     OR (m.direction = 'outbound' AND m.staff_id IS NOT NULL AND m.auto_reply IS NULL
         AND m.status NOT IN ('scheduled', 'canceled'))
),
g AS (
  SELECT id, conversation_id, created_at, asks, answers,
         COALESCE(SUM(answers) OVER (PARTITION BY conversation_id ORDER BY created_at, id
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS turn
  FROM w
),
t AS (
  SELECT MIN(CASE WHEN asks = 1 THEN created_at END) AS asked, MAX(CASE WHEN answers = 1 THEN id END) AS reply_id
  FROM g GROUP BY conversation_id, turn
)
UPDATE messages SET wait_started_at = t.asked FROM t
WHERE messages.id = t.reply_id AND t.asked IS NOT NULL
"""


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("wait_started_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_messages_thread_time",
        "messages",
        ["conversation_id", "created_at", "direction", "staff_id", "auto_reply", "keyword", "status"],
    )
    op.execute(BACKFILL)
    op.create_index(
        "ix_messages_first_responses",
        "messages",
        ["created_at", "staff_id", "wait_started_at", "status"],
        postgresql_where=sa.text("wait_started_at IS NOT NULL"),
        sqlite_where=sa.text("wait_started_at IS NOT NULL"),
    )
    op.drop_index("ix_messages_created_at", table_name="messages")
    op.create_index(
        "ix_messages_created_at", "messages", ["created_at", "direction", "channel", "status", "error_code"]
    )


def downgrade() -> None:
    op.drop_index("ix_messages_created_at", table_name="messages")
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.drop_index("ix_messages_first_responses", table_name="messages")
    op.drop_index("ix_messages_thread_time", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("wait_started_at")
