"""calendar subscriptions: a feed per person, per working group and for the network; summits

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["working_group.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.create_index("ix_calendar_feed_group_id", ["group_id"], unique=False)
        batch_op.create_index("ix_calendar_feed_token_hash", ["token_hash"], unique=True)
        batch_op.create_index("ix_calendar_feed_user_id", ["user_id"], unique=False)
    op.create_table(
        "summit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["city.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("summit", schema=None) as batch_op:
        batch_op.create_index("ix_summit_year", ["year"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("summit", schema=None) as batch_op:
        batch_op.drop_index("ix_summit_year")
    op.drop_table("summit")
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_feed_user_id")
        batch_op.drop_index("ix_calendar_feed_token_hash")
        batch_op.drop_index("ix_calendar_feed_group_id")
    op.drop_table("calendar_feed")
