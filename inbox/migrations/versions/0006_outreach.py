"""Reaching out and personal preferences.

`messages.send_at`: when a scheduled reply is to go out. `media_files`: attachments staff upload,
served to Twilio from an unguessable URL until their message settles. `quick_replies`: the saved
answers managers keep. `staff.preferences`: each person's own choices (notifications, sound).

Revision ID: 0006_outreach
Revises: 0005_team
"""

import sqlalchemy as sa
from alembic import op

import inbox.models

revision = "0006_outreach"
down_revision = "0005_team"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("send_at", inbox.models.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("staff") as batch_op:
        batch_op.add_column(sa.Column("preferences", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    op.create_table(
        "media_files",
        sa.Column("id", BigId, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("staff_id", BigId, nullable=True),
        sa.Column("message_id", BigId, nullable=True),
        sa.Column("expires_at", inbox.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", inbox.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index("ix_media_files_message_id", "media_files", ["message_id"])
    op.create_table(
        "quick_replies",
        sa.Column("id", BigId, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", inbox.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", inbox.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("quick_replies")
    op.drop_index("ix_media_files_message_id", table_name="media_files")
    op.drop_table("media_files")
    with op.batch_alter_table("staff") as batch_op:
        batch_op.drop_column("preferences")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("send_at")
