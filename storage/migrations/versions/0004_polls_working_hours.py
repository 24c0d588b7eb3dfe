"""polls counted per city; cities' working hours; the quarterly cadence; session requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("city", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("work_start", sa.String(length=5), nullable=False, server_default="09:00")
        )
        batch_op.add_column(
            sa.Column("work_end", sa.String(length=5), nullable=False, server_default="17:00")
        )
        batch_op.add_column(
            sa.Column("work_days", sa.String(length=7), nullable=False, server_default="12345")
        )
    with op.batch_alter_table("city", schema=None) as batch_op:
        # The defaults filled the existing rows; the model gives new rows theirs.
        batch_op.alter_column("work_start", server_default=None)
        batch_op.alter_column("work_end", server_default=None)
        batch_op.alter_column("work_days", server_default=None)

    with op.batch_alter_table("working_group", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cadence_weeks", sa.Integer(), nullable=False, server_default="4")
        )
    with op.batch_alter_table("working_group", schema=None) as batch_op:
        batch_op.alter_column("cadence_weeks", server_default=None)

    op.create_table(
        "poll",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("question", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("length_minutes", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["working_group.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["working_session.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("poll", schema=None) as batch_op:
        batch_op.create_index("ix_poll_group_id", ["group_id"], unique=False)
        batch_op.create_index("ix_poll_status_closes", ["status", "closes_at"], unique=False)

    op.create_table(
        "poll_option",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"]),
        sa.PrimaryKeyConstraint("poll_id", "position"),
    )
    op.create_table(
        "poll_vote",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.String(length=8), nullable=False),
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["city.id"]),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"]),
        sa.PrimaryKeyConstraint("poll_id", "position", "city_id"),
    )


    op.create_table(
        "session_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("poll_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["city_id"], ["city.id"]),
        sa.ForeignKeyConstraint(["group_id"], ["working_group.id"]),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("session_request", schema=None) as batch_op:
        batch_op.create_index("ix_session_request_group", ["group_id", "poll_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session_request", schema=None) as batch_op:
        batch_op.drop_index("ix_session_request_group")
    op.drop_table("session_request")
    op.drop_table("poll_vote")
    op.drop_table("poll_option")
    with op.batch_alter_table("poll", schema=None) as batch_op:
        batch_op.drop_index("ix_poll_status_closes")
        batch_op.drop_index("ix_poll_group_id")
    op.drop_table("poll")
    with op.batch_alter_table("working_group", schema=None) as batch_op:
        batch_op.drop_column("cadence_weeks")
    with op.batch_alter_table("city", schema=None) as batch_op:
        batch_op.drop_column("work_days")
        batch_op.drop_column("work_end")
        batch_op.drop_column("work_start")
