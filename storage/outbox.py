"""Messages owed because state changed, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OutboxMessage
from storage.types import utcnow

MAX_ATTEMPTS = 5


def enqueue(
    session: AsyncSession, *, chat_id: int, text: str, reply_markup: dict[str, Any] | None = None
) -> OutboxMessage:
    message = OutboxMessage(chat_id=chat_id, text=text, reply_markup=reply_markup)
    session.add(message)
    return message


async def due(session: AsyncSession, *, now: datetime, limit: int = 50) -> list[OutboxMessage]:
    rows = await session.exec(
        select(OutboxMessage)
        .where(
            col(OutboxMessage.sent_at).is_(None),
            col(OutboxMessage.failed_at).is_(None),
            OutboxMessage.not_before <= now,
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return list(rows.all())


def mark_sent(message: OutboxMessage) -> None:
    message.sent_at = utcnow()


def mark_failed(message: OutboxMessage, error: str) -> None:
    message.failed_at = utcnow()
    message.error = error[:300]


def retry_later(message: OutboxMessage, *, after: timedelta, error: str) -> None:
    message.attempts += 1
    message.error = error[:300]
    if message.attempts >= MAX_ATTEMPTS:
        message.failed_at = utcnow()
    else:
        message.not_before = utcnow() + after
