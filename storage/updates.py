"""Processed update ids: Telegram delivers at least once, the bot acts at most once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, literal, select
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert_new
from storage.models import Chat, GroupStatus, ProcessedUpdate, User, WorkingGroup
from storage.types import utcnow

# Telegram keeps undelivered updates for 24 hours; a little longer is safe to forget.
KEEP = timedelta(hours=48)


async def claim(session: AsyncSession, update_id: int) -> bool:
    """Record ``update_id``; False if it was already processed (or is being, elsewhere)."""
    return await insert_new(session, ProcessedUpdate, update_id=update_id, processed_at=utcnow())


async def load_context(
    session: AsyncSession, *, update_id: int, user_id: int | None, chat_id: int | None
) -> tuple[User | None, Chat | None, WorkingGroup | None, bool]:
    """Everything an update starts from, in one query: the sender's row, the chat's,
    the chat's working group, and whether this update id was processed before."""
    one_row = select(literal(1).label("one")).subquery()
    seen = exists().where(col(ProcessedUpdate.update_id) == update_id)
    query = (
        select(User, Chat, WorkingGroup, seen.label("seen"))
        .select_from(one_row)
        .outerjoin(User, col(User.telegram_id) == (user_id if user_id is not None else 0))
        .outerjoin(Chat, col(Chat.chat_id) == (chat_id if chat_id is not None else 0))
        .outerjoin(
            WorkingGroup,
            (col(WorkingGroup.id) == col(Chat.group_id))
            & (col(WorkingGroup.status) == GroupStatus.ACTIVE.value),
        )
    )
    user, chat, group, was_seen = (await session.exec(query)).one()  # type: ignore[call-overload]
    return user, chat, group, bool(was_seen)


async def forget_old(session: AsyncSession) -> int:
    result = await session.exec(
        delete(ProcessedUpdate).where(col(ProcessedUpdate.processed_at) < utcnow() - KEEP)
    )
    return int(result.rowcount)
