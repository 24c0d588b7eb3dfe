"""the agenda: cities' requests for items, supports and opinions, outcomes; the deadline

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agenda_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1500), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("deferrals", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("recommendation", sa.String(length=1500), nullable=False),
        sa.Column("outcome_by", sa.BigInteger(), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["city_id"], ["city.id"]),
        sa.ForeignKeyConstraint(["group_id"], ["working_group.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["working_session.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("agenda_item", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agenda_item_group_session", ["group_id", "session_id"], unique=False
        )
        batch_op.create_index("ix_agenda_item_session_id", ["session_id"], unique=False)
    for table, columns in (
        ("agenda_support", []),
        ("agenda_opinion", [sa.Column("text", sa.String(length=1500), nullable=False)]),
    ):
        op.create_table(
            table,
            sa.Column("item_id", sa.Integer(), nullable=False),
            sa.Column("city_id", sa.Integer(), nullable=False),
            sa.Column("user_id", sa.BigInteger(), nullable=False),
            *columns,
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["city_id"], ["city.id"]),
            sa.ForeignKeyConstraint(["item_id"], ["agenda_item.id"]),
            sa.PrimaryKeyConstraint("item_id", "city_id"),
        )
    with op.batch_alter_table("working_group", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("request_deadline_days", sa.Integer(), nullable=False, server_default="7")
        )
    with op.batch_alter_table("working_group", schema=None) as batch_op:
        # The default filled the existing rows; the model gives new rows theirs.
        batch_op.alter_column("request_deadline_days", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("working_group", schema=None) as batch_op:
        batch_op.drop_column("request_deadline_days")
    op.drop_table("agenda_opinion")
    op.drop_table("agenda_support")
    with op.batch_alter_table("agenda_item", schema=None) as batch_op:
        batch_op.drop_index("ix_agenda_item_session_id")
        batch_op.drop_index("ix_agenda_item_group_session")
    op.drop_table("agenda_item")
