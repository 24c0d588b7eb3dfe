"""The network's annual summit: recorded by the secretariat, shown in the network's calendar."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors
from storage.models import City, Summit
from storage.roles import Actor

MAX_DAYS = 7  # a summit lasts a day to a week


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    city: City,
    starts_on: date,
    ends_on: date,
    now: datetime,
) -> Summit:
    """The summit of the year it starts in; recorded again, it changes (its version rises)."""
    actor.require_secretariat()
    if ends_on < starts_on or (ends_on - starts_on).days >= MAX_DAYS:
        raise errors.InvalidSummitDates(max=MAX_DAYS)
    year = starts_on.year
    summit = (await session.exec(select(Summit).where(Summit.year == year))).first()
    if summit is None:
        summit = Summit(year=year, city_id=city.id or 0, starts_on=starts_on, ends_on=ends_on)
    else:
        summit.sequence += 1
    summit.city_id = city.id or 0
    summit.starts_on = starts_on
    summit.ends_on = ends_on
    summit.recorded_by = actor.user_id
    summit.updated_at = now
    session.add(summit)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="summit.record",
        subject=f"summit:{year}",
        city=city.name,
        starts_on=starts_on.isoformat(),
        ends_on=ends_on.isoformat(),
    )
    return summit


async def listed(session: AsyncSession, *, since: date | None = None) -> list[tuple[Summit, City]]:
    """Summits (ending on or after ``since``), soonest first."""
    query = select(Summit, City).join(City, col(City.id) == col(Summit.city_id))
    if since is not None:
        query = query.where(col(Summit.ends_on) >= since)
    rows = await session.exec(query.order_by(col(Summit.starts_on)))
    return [(summit, city) for summit, city in rows.all()]
