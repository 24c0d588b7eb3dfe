"""The permanent secretariat: staff from the configuration, and staff added in chat."""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, outbox
from storage.models import SecretariatMember
from storage.roles import Actor

# Telegram user ids are positive and, by Telegram's own statement, fit in 52 bits.
MAX_USER_ID = 2**52


def check_user_id(user_id: int) -> int:
    if not 0 < user_id < MAX_USER_ID:
        raise errors.InvalidUserId(user_id=user_id)
    return user_id


async def staff_ids(session: AsyncSession, *, bootstrap: Collection[int]) -> set[int]:
    rows = await session.exec(select(SecretariatMember.user_id))
    return set(bootstrap) | set(rows.all())


async def tell(
    session: AsyncSession,
    *,
    kind: str,
    params: dict[str, object],
    dedupe: str,
    bootstrap: Collection[int],
) -> None:
    """An outbox entry of ``kind`` to every member of the secretariat, once each."""
    staff = await staff_ids(session, bootstrap=bootstrap)
    await outbox.enqueue_many(
        session,
        [
            outbox.Entry(chat_id=member, kind=kind, params=params, dedupe_key=f"{dedupe}:{member}")
            for member in sorted(staff)
        ],
    )


async def add(session: AsyncSession, *, actor: Actor, user_id: int) -> None:
    actor.require_secretariat()
    check_user_id(user_id)
    if await session.get(SecretariatMember, user_id) is not None:
        raise errors.AlreadySecretariat(user_id=user_id)
    session.add(SecretariatMember(user_id=user_id, added_by=actor.user_id))
    # Flushed here, so that a concurrent add of the same person fails inside the unit of work.
    await session.flush()
    audit.record(session, actor_id=actor.user_id, action="secretariat.add", subject=str(user_id))


async def remove(
    session: AsyncSession, *, actor: Actor, user_id: int, bootstrap: frozenset[int]
) -> None:
    actor.require_secretariat()
    if user_id in bootstrap:
        raise errors.BootstrapSecretariat(user_id=user_id)
    member = await session.get(SecretariatMember, user_id)
    if member is None:
        raise errors.NotSecretariat(user_id=user_id)
    await session.delete(member)
    audit.record(session, actor_id=actor.user_id, action="secretariat.remove", subject=str(user_id))
