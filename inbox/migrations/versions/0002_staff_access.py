"""Access that can be taken back: disabled accounts, last sign-in, named tokens with a last use.

The per-account failure count moves to memory (inbox/throttle.py), so its columns go.

Revision ID: 0002_staff_access
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import inbox.models

revision = "0002_staff_access"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch_op:
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("last_login_at", inbox.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_column("failed_logins")
        batch_op.drop_column("locked_until")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=100), server_default="", nullable=False))
        batch_op.add_column(sa.Column("last_used_at", inbox.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("name")
    with op.batch_alter_table("staff") as batch_op:
        batch_op.add_column(sa.Column("locked_until", inbox.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_column("last_login_at")
        batch_op.drop_column("disabled")
