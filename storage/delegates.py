"""Delegates: a Telegram user's claim to speak for a city, and the secretariat's decision."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors
from storage.models import City, Delegate, DelegateRole, DelegateStatus, SecretariatMember, User
from storage.roles import Actor
from storage.types import utcnow


async def claim_city(
    session: AsyncSession, *, actor: Actor, city: City, role: DelegateRole
) -> Delegate:
    """Ask to be a delegate of ``city``; pending until the secretariat approves.

    A pending claim can be corrected (another city or role); an approved delegate
    stays approved and must ask the secretariat to change city.
    """
    delegate = (
        await session.exec(select(Delegate).where(Delegate.user_id == actor.user_id))
    ).first()
    if delegate is not None and delegate.status == DelegateStatus.APPROVED:
        if delegate.city_id == city.id and delegate.role == role:
            raise errors.AlreadyDelegate(city=city.name)
        if delegate.city_id != city.id:
            current = await session.get(City, delegate.city_id)
            raise errors.AlreadyDelegate(city=current.name if current else city.name)
        delegate.role = role  # same city, new role: no new approval needed
    else:
        if delegate is None:
            delegate = Delegate(user_id=actor.user_id, city_id=city.id or 0)
        delegate.city_id = city.id or 0
        delegate.role = role
        delegate.status = DelegateStatus.PENDING
        delegate.decided_at = None
        delegate.decided_by = None
    session.add(delegate)
    await session.flush()
    audit.record(
        session, actor_id=actor.user_id, action="delegate.claim", subject=city.name, role=role.value
    )
    return delegate


async def decide(
    session: AsyncSession, *, actor: Actor, user_id: int, approve: bool
) -> tuple[Delegate, City]:
    actor.require_secretariat()
    delegate = (await session.exec(select(Delegate).where(Delegate.user_id == user_id))).first()
    if delegate is None:
        raise errors.UnknownDelegate(user_id=user_id)
    city = await session.get(City, delegate.city_id)
    if city is None:  # the foreign key makes this impossible
        raise errors.UnknownCity(name=str(delegate.city_id))
    if delegate.status != DelegateStatus.PENDING:
        raise errors.DelegateNotPending(user_id=user_id, status=delegate.status)
    delegate.status = DelegateStatus.APPROVED if approve else DelegateStatus.REMOVED
    delegate.decided_at = utcnow()
    delegate.decided_by = actor.user_id
    session.add(delegate)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="delegate.approve" if approve else "delegate.reject",
        subject=city.name,
        user_id=user_id,
    )
    return delegate, city


async def delegates_of(
    session: AsyncSession, city_ids: list[int], *, status: DelegateStatus = DelegateStatus.APPROVED
) -> dict[int, list[tuple[Delegate, User | None]]]:
    """Delegates per city, with their Telegram names, in a stable order."""
    if not city_ids:
        return {}
    rows = await session.exec(
        select(Delegate, User)
        .join(User, col(User.telegram_id) == col(Delegate.user_id), isouter=True)
        .where(col(Delegate.city_id).in_(city_ids), Delegate.status == status)
        .order_by(col(Delegate.role), col(Delegate.id))
    )
    result: dict[int, list[tuple[Delegate, User | None]]] = {}
    for delegate, user in rows.all():
        result.setdefault(delegate.city_id, []).append((delegate, user))
    return result


async def pending(session: AsyncSession) -> list[tuple[Delegate, City, User | None]]:
    rows = await session.exec(
        select(Delegate, City, User)
        .join(City, col(City.id) == col(Delegate.city_id))
        .join(User, col(User.telegram_id) == col(Delegate.user_id), isouter=True)
        .where(Delegate.status == DelegateStatus.PENDING)
        .order_by(col(Delegate.created_at))
    )
    return [(d, c, u) for d, c, u in rows.all()]


# The secretariat ------------------------------------------------------------------------


async def add_secretariat(session: AsyncSession, *, actor: Actor, user_id: int) -> None:
    actor.require_secretariat()
    if await session.get(SecretariatMember, user_id) is not None:
        raise errors.AlreadySecretariat(user_id=user_id)
    session.add(SecretariatMember(user_id=user_id, added_by=actor.user_id))
    audit.record(session, actor_id=actor.user_id, action="secretariat.add", subject=str(user_id))


async def remove_secretariat(
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
