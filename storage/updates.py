"""Processed update ids: Telegram delivers at least once, the bot acts at most once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ProcessedUpdate
from storage.types import utcnow

# Telegram keeps undelivered updates for 24 hours; a little longer is safe to forget.
KEEP = timedelta(hours=48)


async def claim(session: AsyncSession, update_id: int) -> bool:
    """Record ``update_id``; False if it was already processed (or is being, elsewhere)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(ProcessedUpdate)
        .values(update_id=update_id, processed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["update_id"])
    )
    result = await session.exec(statement)
    return bool(result.rowcount)


async def forget_old(session: AsyncSession) -> int:
    result = await session.exec(
        delete(ProcessedUpdate).where(col(ProcessedUpdate.processed_at) < utcnow() - KEEP)
    )
    return int(result.rowcount)
