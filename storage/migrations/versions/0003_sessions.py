"""sessions of the working groups and RSVPs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "working_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("join_url", sa.String(length=500), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["working_group.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("working_session", schema=None) as batch_op:
        batch_op.create_index(
            "ix_working_session_group_start", ["group_id", "starts_at"], unique=False
        )
        batch_op.create_index("ix_working_session_status", ["status"], unique=False)

    op.create_table(
        "session_rsvp",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=8), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["city.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["working_session.id"]),
        sa.PrimaryKeyConstraint("session_id", "user_id"),
    )
    with op.batch_alter_table("session_rsvp", schema=None) as batch_op:
        batch_op.create_index("ix_session_rsvp_city_id", ["city_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session_rsvp", schema=None) as batch_op:
        batch_op.drop_index("ix_session_rsvp_city_id")
    op.drop_table("session_rsvp")
    with op.batch_alter_table("working_session", schema=None) as batch_op:
        batch_op.drop_index("ix_working_session_status")
        batch_op.drop_index("ix_working_session_group_start")
    op.drop_table("working_session")
