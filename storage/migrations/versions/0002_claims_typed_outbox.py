"""claims as rows, typed and leased outbox

Revision ID: 0002
Revises: 0001
A delegate row is one claim with its own number: a user may have one pending and
one approved claim at a time (partial unique indexes), so a decision names the claim.
Outbox rows become typed (kind + params, rendered at delivery), with a dedupe key,
a batch id, a lease and the count of parts already sent. Rows queued before this
migration keep their text as a "text" entry.

Create Date: 2026-11-25 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delegate", schema=None) as batch_op:
        batch_op.drop_index("ix_delegate_user_id")
        batch_op.create_index("ix_delegate_user_id", ["user_id"], unique=False)
    # A rejection was stored as "removed"; it is "rejected" now, and "removed" is kept
    # for a delegate the secretariat takes off the roster.
    op.execute("UPDATE delegate SET status = 'rejected' WHERE status = 'removed'")
    for status in ("pending", "approved"):
        op.create_index(
            f"uq_delegate_{status}",
            "delegate",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text(f"status = '{status}'"),
            postgresql_where=sa.text(f"status = '{status}'"),
        )

    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=40), nullable=False, server_default="text"))
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("parts_sent", sa.Integer(), nullable=False, server_default="0"))
    outbox = sa.table(
        "outbox_message",
        sa.column("id", sa.Integer()),
        sa.column("text", sa.String()),
        sa.column("reply_markup", sa.JSON()),
        sa.column("params", sa.JSON()),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(outbox.c.id, outbox.c.text, outbox.c.reply_markup)).all():
        params = {"text": row.text, "markup": row.reply_markup}
        connection.execute(outbox.update().where(outbox.c.id == row.id).values(params=params))
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.alter_column("params", existing_type=sa.JSON(), nullable=False)
        # The defaults only filled the rows that were already there.
        batch_op.alter_column("kind", existing_type=sa.String(length=40), server_default=None)
        batch_op.alter_column("parts_sent", existing_type=sa.Integer(), server_default=None)
        batch_op.drop_column("text")
        batch_op.drop_column("reply_markup")
        batch_op.create_index("ix_outbox_chat", ["chat_id"], unique=False)
        batch_op.create_index("ix_outbox_message_batch_id", ["batch_id"], unique=False)
        batch_op.create_index("ix_outbox_message_dedupe_key", ["dedupe_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_dedupe_key")
        batch_op.drop_index("ix_outbox_message_batch_id")
        batch_op.drop_index("ix_outbox_chat")
        batch_op.add_column(sa.Column("text", sa.String(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reply_markup", sa.JSON(), nullable=True))
        batch_op.drop_column("parts_sent")
        batch_op.drop_column("leased_until")
        batch_op.drop_column("batch_id")
        batch_op.drop_column("dedupe_key")
        batch_op.drop_column("params")
        batch_op.drop_column("kind")
    op.drop_index("uq_delegate_approved", table_name="delegate")
    op.drop_index("uq_delegate_pending", table_name="delegate")
    op.execute("UPDATE delegate SET status = 'removed' WHERE status IN ('rejected', 'withdrawn', 'superseded')")
    with op.batch_alter_table("delegate", schema=None) as batch_op:
        batch_op.drop_index("ix_delegate_user_id")
        batch_op.create_index("ix_delegate_user_id", ["user_id"], unique=True)
