"""choice polls and the presidency election: how a poll counts and shows, its message

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 22:40:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (column, type, the value existing rows get)
_NEW_POLL_COLUMNS: list[tuple[str, Any, Any]] = [
    ("multiple", sa.Boolean(), sa.false()),
    ("hidden", sa.Boolean(), sa.false()),
    ("anonymous", sa.Boolean(), sa.false()),
    ("quorum", sa.String(length=12), "none"),
    ("threshold", sa.String(length=12), "majority"),
    ("drawn", sa.String(length=40), ""),
]


def upgrade() -> None:
    with op.batch_alter_table("poll", schema=None) as batch_op:
        for name, type_, default in _NEW_POLL_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=False, server_default=default))
        batch_op.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
    with op.batch_alter_table("poll", schema=None) as batch_op:
        # The defaults filled the existing rows; the model gives new rows theirs.
        for name, _type, _default in _NEW_POLL_COLUMNS:
            batch_op.alter_column(name, server_default=None)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_subject", ["subject"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_subject")
    with op.batch_alter_table("poll", schema=None) as batch_op:
        for name in ("language", "message_id", "chat_id"):
            batch_op.drop_column(name)
        for name, _type, _default in reversed(_NEW_POLL_COLUMNS):
            batch_op.drop_column(name)
