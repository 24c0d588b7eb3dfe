"""Delegates: a Telegram user's claims to speak for a city, and the secretariat's decisions.

Every claim is a row with its own number. A decision names the claim, never just
the user, so a user who re-claims another city after the notice went out cannot
turn the secretariat's Approve into an approval of something it never saw. A role
change of an approved delegate is a new claim; the approved one stands until the
new one is decided.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, outbox, secretariat
from storage.models import City, Delegate, DelegateRole, DelegateStatus, User
from storage.roles import Actor

# Outbox kinds this module writes (rendered by handlers.delegates).
CLAIMED = "delegate.claimed"
APPROVED = "delegate.approved"
REJECTED = "delegate.rejected"

# A rejected claim cannot be renewed for the same city at once: that would only
# notify every member of the secretariat again.
REJECTION_COOL_OFF = timedelta(days=30)


def person(user: User | None, user_id: int) -> dict[str, object]:
    """The facts a notice needs to name someone (rendered and escaped later)."""
    if user is None:
        return {"user_id": user_id, "full_name": "", "username": None}
    return {"user_id": user_id, "full_name": user.full_name, "username": user.username}


def city_facts(city: City) -> dict[str, object]:
    return {"city": city.name, "country": city.country_code}


async def claim_city(
    session: AsyncSession,
    *,
    actor: Actor,
    city: City,
    role: DelegateRole,
    bootstrap: Collection[int],
    now: datetime,
) -> tuple[Delegate, bool]:
    """Claim to be a delegate of ``city`` in ``role``; pending until the secretariat decides.

    Returns the claim and whether it is new (False: the same claim was already
    waiting, and nobody is notified again).
    """
    if actor.is_approved_delegate and actor.delegate is not None and actor.city is not None:
        if actor.city.id != city.id:
            raise errors.AlreadyDelegate(city=actor.city.name)
        if actor.delegate.role == role:
            raise errors.AlreadyDelegate(city=city.name)
    pending = actor.pending
    if pending is not None and pending.city_id == city.id and pending.role == role:
        return pending, False
    rejected = (
        await session.exec(
            select(Delegate)
            .where(
                Delegate.user_id == actor.user_id,
                Delegate.city_id == city.id,
                Delegate.status == DelegateStatus.REJECTED,
                col(Delegate.decided_at) > now - REJECTION_COOL_OFF,
            )
            .limit(1)
        )
    ).first()
    if rejected is not None:
        raise errors.ClaimRejected(city=city.name)
    if pending is not None:
        # A corrected claim replaces the waiting one; its notice's buttons stop working.
        await session.exec(
            update(Delegate)
            .where(col(Delegate.id) == pending.id, col(Delegate.status) == DelegateStatus.PENDING)
            .values(status=DelegateStatus.WITHDRAWN.value, decided_at=now)
        )
    claim = Delegate(user_id=actor.user_id, city_id=city.id or 0, role=role.value, created_at=now)
    session.add(claim)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="delegate.claim",
        subject=city.name,
        claim=claim.id,
        role=role.value,
    )
    user = await session.get(User, actor.user_id)
    await secretariat.tell(
        session,
        kind=CLAIMED,
        params={
            "claim": claim.id,
            "role": role.value,
            "changes_role": actor.is_approved_delegate,
            **person(user, actor.user_id),
            **city_facts(city),
        },
        dedupe=f"claim:{claim.id}",
        bootstrap=bootstrap,
    )
    return claim, True


async def decide(
    session: AsyncSession, *, actor: Actor, claim_id: int, approve: bool, now: datetime
) -> tuple[Delegate, City]:
    """Approve or reject the claim numbered ``claim_id``, and tell its author."""
    actor.require_secretariat()
    row = (
        await session.exec(
            select(Delegate, City)
            .join(City, col(City.id) == col(Delegate.city_id))
            .where(col(Delegate.id) == claim_id)
        )
    ).first()
    if row is None:
        raise errors.UnknownClaim(claim=claim_id)
    claim, city = row
    if claim.status != DelegateStatus.PENDING:
        raise errors.ClaimNotPending(claim=claim_id, status=claim.status)
    if approve:
        # The claim it replaces (a role change) steps down in the same transaction.
        await session.exec(
            update(Delegate)
            .where(
                col(Delegate.user_id) == claim.user_id,
                col(Delegate.status) == DelegateStatus.APPROVED,
            )
            .values(status=DelegateStatus.SUPERSEDED.value, decided_at=now)
        )
    # Conditional on still pending: of two secretaries pressing at once, one decides.
    decided = await session.exec(
        update(Delegate)
        .where(col(Delegate.id) == claim_id, col(Delegate.status) == DelegateStatus.PENDING)
        .values(
            status=(DelegateStatus.APPROVED if approve else DelegateStatus.REJECTED).value,
            decided_at=now,
            decided_by=actor.user_id,
        )
        .execution_options(synchronize_session=False)
    )
    if decided.rowcount != 1:
        raise errors.ClaimNotPending(claim=claim_id, status="decided")
    await session.refresh(claim)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="delegate.approve" if approve else "delegate.reject",
        subject=city.name,
        claim=claim_id,
        user_id=claim.user_id,
    )
    await outbox.enqueue(
        session,
        chat_id=claim.user_id,
        kind=APPROVED if approve else REJECTED,
        params={"role": claim.role, **city_facts(city)},
        dedupe_key=f"decided:{claim_id}",
    )
    return claim, city


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
        .where(col(Delegate.status) == DelegateStatus.PENDING)
        .order_by(col(Delegate.created_at), col(Delegate.id))
    )
    return [(d, c, u) for d, c, u in rows.all()]
