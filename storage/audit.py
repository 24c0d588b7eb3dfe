"""The append-only audit log."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEntry


def record(
    session: AsyncSession, *, actor_id: int | None, action: str, subject: str = "", **details: Any
) -> AuditEntry:
    entry = AuditEntry(actor_id=actor_id, action=action, subject=subject[:200], details=details)
    session.add(entry)
    return entry


async def entries(session: AsyncSession, *, action: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(col(AuditEntry.id))
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list((await session.exec(query)).all())
