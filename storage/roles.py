"""Who may do what: the actor of an update, resolved once, checked by the services."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Date,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.orm import aliased
from sqlmodel import col
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
    delegate: Delegate | None = None  # the approved claim, if any
    city: City | None = None  # the city of the approved claim
    pending: Delegate | None = None  # a claim waiting for the secretariat, if any
    pending_city: City | None = None
    is_presidency: bool = False
    coordinates: frozenset[int] = field(default_factory=frozenset)  # working group ids

    @property
    def is_approved_delegate(self) -> bool:
        return self.delegate is not None and self.delegate.status == DelegateStatus.APPROVED

    def approved_city(self) -> City:
        """The city this actor speaks for; raises if they don't (yet)."""
        if self.is_approved_delegate and self.city is not None:
            return self.city
        if self.pending is not None and self.pending_city is not None:
            raise errors.DelegateNotApproved(city=self.pending_city.name)
        raise errors.NotADelegate()

    def require_secretariat(self) -> None:
        if not self.is_secretariat:
            raise errors.NotAllowed(role="secretariat")

    def is_organiser(self, group_id: int) -> bool:
        return self.is_secretariat or group_id in self.coordinates


def _roles_query() -> Any:
    """Every role of one user in one statement, built once: the aliases and subqueries
    cost more to build than the database takes to answer (``user_id`` and ``today``
    are bound at each use)."""
    user_id: BindParameter[int] = bindparam("user_id", type_=BigInteger)
    today: BindParameter[date] = bindparam("today", type_=Date)
    approved, approved_city = aliased(Delegate), aliased(City)
    pending, pending_city = aliased(Delegate), aliased(City)
    one_row = select(literal(1).label("one")).subquery()
    is_staff = exists().where(col(SecretariatMember.user_id) == user_id)
    presidency_city = (
        select(col(Presidency.city_id))
        .where(col(Presidency.starts_on) <= today, col(Presidency.ends_on) >= today)
        .limit(1)
        .scalar_subquery()
    )
    # The groups the user coordinates, as "3,7" (group_concat / string_agg).
    coordinated = (
        select(func.aggregate_strings(cast(col(Coordinator.group_id), String), ","))
        .where(col(Coordinator.user_id) == user_id)
        .scalar_subquery()
    )
    query = (
        select(
            approved,
            approved_city,
            pending,
            pending_city,
            is_staff.label("is_staff"),
            presidency_city.label("presidency_city"),
            coordinated.label("coordinated"),
        )
        .select_from(one_row)
        .outerjoin(
            approved,
            and_(
                col(approved.user_id) == user_id,
                col(approved.status) == DelegateStatus.APPROVED.value,
            ),
        )
        .outerjoin(approved_city, col(approved_city.id) == col(approved.city_id))
        .outerjoin(
            pending,
            and_(
                col(pending.user_id) == user_id,
                col(pending.status) == DelegateStatus.PENDING.value,
            ),
        )
        .outerjoin(pending_city, col(pending_city.id) == col(pending.city_id))
    )
    return query


_ROLES = _roles_query()


async def resolve_actor(
    session: AsyncSession, *, user_id: int, bootstrap_secretariat: Collection[int], today: date
) -> Actor:
    """Every role in one statement: claims, cities, staff, presidency, coordinated groups
    (a coordinator who is no longer a delegate coordinates nothing)."""
    found = await session.exec(_ROLES, params={"user_id": user_id, "today": today})
    row = found.one()
    delegate, city, claim, claim_city, staff, presidency_city_id, coordinated = row
    coordinates: frozenset[int] = frozenset()
    if delegate is not None and coordinated:
        coordinates = frozenset(int(group_id) for group_id in str(coordinated).split(","))
    return Actor(
        user_id=user_id,
        is_secretariat=user_id in bootstrap_secretariat or bool(staff),
        delegate=delegate,
        city=city,
        pending=claim,
        pending_city=claim_city,
        is_presidency=city is not None and presidency_city_id == city.id,
        coordinates=coordinates,
    )
