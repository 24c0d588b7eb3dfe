"""The outbox: messages owed because state changed, written in the same transaction.

Services write typed entries (``kind`` and the facts in ``params``); the Telegram
layer renders them in the recipient's language when they are delivered. A worker
leases due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) so no two processes
send one, records each outcome in a transaction of its own, and a crash leaves a
lease that simply runs out: delivery is at least once, and at most the message in
flight at a crash is repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert_for
from storage.models import OutboxMessage
from storage.types import utcnow

# Transient failures (timeouts, 5xx) are retried with backoff this many times;
# flood control (429) never counts as an attempt.
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(minutes=10)
# A worker that dies holds its leased rows this long; the one that lives gives back what it
# has not tried before half of it has passed (see the worker), so it never outlives a lease.
LEASE = timedelta(seconds=30)
# Set on the session when a unit of work wrote to the outbox, so that the worker is woken.
WROTE = "b40.outbox_written"

# A pre-rendered message: params {"text": html, "markup": reply markup dict or None}.
TEXT = "text"


@dataclass(frozen=True)
class Entry:
    """One message to write: to ``chat_id``, of ``kind``, with ``params``."""

    chat_id: int
    kind: str
    params: dict[str, Any]
    dedupe_key: str | None = None


async def enqueue(
    session: AsyncSession,
    *,
    chat_id: int,
    kind: str,
    params: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    batch_id: int | None = None,
    not_before: datetime | None = None,
) -> None:
    await enqueue_many(
        session,
        [Entry(chat_id, kind, params or {}, dedupe_key)],
        batch_id=batch_id,
        not_before=not_before,
    )


async def enqueue_many(
    session: AsyncSession,
    entries: Sequence[Entry],
    *,
    batch_id: int | None = None,
    not_before: datetime | None = None,
    dropped: tuple[datetime, str] | None = None,
) -> int:
    """Write ``entries`` in one statement; an entry whose dedupe key exists is skipped.
    Returns how many were written. ``dropped`` (when, why) writes them as given up at
    once: a record that the message was owed and deliberately not sent."""
    if not entries:
        return 0
    now = utcnow()
    rows = [
        {
            "chat_id": entry.chat_id,
            "kind": entry.kind,
            "params": entry.params,
            "dedupe_key": entry.dedupe_key,
            "batch_id": batch_id,
            "created_at": now,
            "not_before": not_before or now,
            "attempts": 0,
            "parts_sent": 0,
            "failed_at": dropped[0] if dropped else None,
            "error": dropped[1] if dropped else None,
        }
        for entry in entries
    ]
    insert = insert_for(session)
    statement = insert(OutboxMessage).values(rows).on_conflict_do_nothing()
    result = await session.exec(statement)
    session.info[WROTE] = True
    return int(result.rowcount)


def _due(now: datetime) -> Any:
    return (
        col(OutboxMessage.sent_at).is_(None),
        col(OutboxMessage.failed_at).is_(None),
        col(OutboxMessage.not_before) <= now,
        or_(col(OutboxMessage.leased_until).is_(None), col(OutboxMessage.leased_until) < now),
    )


async def lease(session: AsyncSession, *, now: datetime, limit: int = 50) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages for this worker until ``now + LEASE``."""
    query = select(col(OutboxMessage.id)).where(*_due(now)).order_by(col(OutboxMessage.id))
    query = query.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # Rows another worker is leasing right now are passed over, not waited for.
        query = query.with_for_update(skip_locked=True)
    candidates = list((await session.exec(query)).all())
    if not candidates:
        return []
    # The lease is taken only where it is still free when the write happens: on SQLite the
    # read above takes no lock, and another worker may have leased some of these since.
    taken = await session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(candidates), *_due(now))
        .values(leased_until=now + LEASE)
        .returning(col(OutboxMessage.id))
    )
    ids = list(taken.scalars().all())
    if not ids:
        return []
    rows = await session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .order_by(col(OutboxMessage.id))
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def next_due(session: AsyncSession, *, after: datetime) -> datetime | None:
    """When the soonest message put off past ``after`` falls due (None: nothing is)."""
    soonest = await session.exec(
        select(func.min(col(OutboxMessage.not_before))).where(
            col(OutboxMessage.sent_at).is_(None),
            col(OutboxMessage.failed_at).is_(None),
            col(OutboxMessage.not_before) > after,
        )
    )
    found: datetime | None = soonest.one()
    return found


async def _set(session: AsyncSession, message_id: int, **values: Any) -> None:
    await session.exec(
        update(OutboxMessage).where(col(OutboxMessage.id) == message_id).values(**values)
    )


async def mark_sent(session: AsyncSession, message_id: int, *, now: datetime) -> None:
    await _set(session, message_id, sent_at=now, leased_until=None, error=None)


async def mark_part_sent(session: AsyncSession, message_id: int, parts_sent: int) -> None:
    await _set(session, message_id, parts_sent=parts_sent)


async def mark_failed(session: AsyncSession, message_id: int, *, now: datetime, error: str) -> None:
    await _set(session, message_id, failed_at=now, leased_until=None, error=error[:300])


def backoff(attempt: int) -> timedelta:
    """The wait after the ``attempt``-th transient failure: 5 s, doubling, up to 10 min."""
    wait: timedelta = FIRST_RETRY * 2 ** (attempt - 1)
    return min(wait, LONGEST_RETRY)


async def retry_later(
    session: AsyncSession, message: OutboxMessage, *, now: datetime, error: str
) -> bool:
    """A transient failure: back off exponentially; False when the attempts are used up."""
    attempts = message.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        await _set(
            session,
            message.id or 0,
            attempts=attempts,
            failed_at=now,
            leased_until=None,
            error=error[:300],
        )
        return False
    delay = backoff(attempts)
    await _set(
        session,
        message.id or 0,
        attempts=attempts,
        not_before=now + delay,
        leased_until=None,
        error=error[:300],
    )
    return True


async def pause_chat(session: AsyncSession, chat_id: int, *, until: datetime, error: str) -> int:
    """Flood control for one chat: everything owed to it waits; no attempt is used up."""
    result = await session.exec(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.chat_id) == chat_id,
            col(OutboxMessage.sent_at).is_(None),
            col(OutboxMessage.failed_at).is_(None),
            col(OutboxMessage.not_before) < until,
        )
        .values(not_before=until, leased_until=None, error=error[:300])
    )
    return int(result.rowcount)


async def release(session: AsyncSession, message_ids: Sequence[int]) -> None:
    """Give back leased messages that were not tried (the worker stopped early)."""
    if message_ids:
        await session.exec(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.id).in_(list(message_ids)), col(OutboxMessage.sent_at).is_(None)
            )
            .values(leased_until=None)
        )


async def move_chat(session: AsyncSession, *, old_id: int, new_id: int) -> None:
    """A group became a supergroup: what is still owed to it goes to the new id."""
    await session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.chat_id) == old_id, col(OutboxMessage.sent_at).is_(None))
        .values(chat_id=new_id)
    )
