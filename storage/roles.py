"""Who may do what: the actor of an update, resolved once, checked by the services."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import errors
from storage.models import (
    City,
    Coordinator,
    Delegate,
    DelegateStatus,
    Presidency,
    SecretariatMember,
)


@dataclass(frozen=True)
class Actor:
    """A Telegram user as the rules see them."""

    user_id: int
    is_secretariat: bool = False
    delegate: Delegate | None = None
    city: City | None = None
    is_presidency: bool = False
    coordinates: frozenset[int] = field(default_factory=frozenset)  # working group ids

    @property
    def is_approved_delegate(self) -> bool:
        return self.delegate is not None and self.delegate.status == DelegateStatus.APPROVED

    def approved_city(self) -> City:
        """The city this actor speaks for; raises if they don't (yet)."""
        if self.delegate is None or self.city is None or self.delegate.status == "removed":
            raise errors.NotADelegate()
        if self.delegate.status != DelegateStatus.APPROVED:
            raise errors.DelegateNotApproved(city=self.city.name)
        return self.city

    def require_secretariat(self) -> None:
        if not self.is_secretariat:
            raise errors.NotAllowed(role="secretariat")

    def is_organiser(self, group_id: int) -> bool:
        return self.is_secretariat or group_id in self.coordinates

    def require_organiser(self, group_id: int) -> None:
        if not self.is_organiser(group_id):
            raise errors.NotAllowed(role="organiser")


async def secretariat_ids(session: AsyncSession, *, bootstrap: Collection[int]) -> set[int]:
    rows = await session.exec(select(SecretariatMember.user_id))
    return set(bootstrap) | set(rows.all())


async def resolve_actor(
    session: AsyncSession, *, user_id: int, bootstrap_secretariat: Collection[int], today: date
) -> Actor:
    is_secretariat = user_id in bootstrap_secretariat or (
        await session.get(SecretariatMember, user_id) is not None
    )
    row = (
        await session.exec(
            select(Delegate, City)
            .join(City, City.id == Delegate.city_id)  # type: ignore[arg-type]
            .where(Delegate.user_id == user_id)
        )
    ).first()
    delegate, city = row if row is not None else (None, None)
    is_presidency = False
    coordinates: frozenset[int] = frozenset()
    if delegate is not None and delegate.status == DelegateStatus.APPROVED:
        term = (
            await session.exec(
                select(Presidency).where(Presidency.starts_on <= today, Presidency.ends_on >= today)
            )
        ).first()
        is_presidency = term is not None and city is not None and term.city_id == city.id
        coordinates = frozenset(
            (
                await session.exec(
                    select(Coordinator.group_id).where(Coordinator.user_id == user_id)
                )
            ).all()
        )
    return Actor(
        user_id=user_id,
        is_secretariat=is_secretariat,
        delegate=delegate,
        city=city,
        is_presidency=is_presidency,
        coordinates=coordinates,
    )
