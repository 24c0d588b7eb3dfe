"""Term presidencies: one member city a year, never two terms in a row."""

from __future__ import annotations

from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors
from storage.models import City, Presidency
from storage.roles import Actor

# The network was founded in Istanbul in November 2021; its first term is 2021's.
FIRST_YEAR = 2021
LAST_YEAR = 2100


async def current(session: AsyncSession, *, today: date) -> tuple[Presidency, City] | None:
    row = (
        await session.exec(
            select(Presidency, City)
            .join(City, col(City.id) == col(Presidency.city_id))
            .where(Presidency.starts_on <= today, Presidency.ends_on >= today)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def history(session: AsyncSession) -> list[tuple[Presidency, City]]:
    rows = await session.exec(
        select(Presidency, City)
        .join(City, col(City.id) == col(Presidency.city_id))
        .order_by(col(Presidency.year).desc())
    )
    return [(p, c) for p, c in rows.all()]


async def set_term(
    session: AsyncSession,
    *,
    actor: Actor,
    city: City,
    year: int,
    starts_on: date | None = None,
    ends_on: date | None = None,
) -> Presidency:
    """Record the presidency of ``year`` (by default the calendar year)."""
    actor.require_secretariat()
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise errors.TermYearOutOfRange(year=year, first=FIRST_YEAR, last=LAST_YEAR)
    starts_on = starts_on or date(year, 1, 1)
    ends_on = ends_on or date(year, 12, 31)
    if ends_on <= starts_on:
        raise errors.InvalidTerm(year=year)
    if (await session.exec(select(Presidency).where(Presidency.year == year))).first():
        raise errors.TermExists(year=year)
    neighbours = await session.exec(
        select(Presidency).where(col(Presidency.year).in_([year - 1, year + 1]))
    )
    for term in neighbours.all():
        if term.city_id == city.id:
            raise errors.ConsecutiveTerm(city=city.name, year=term.year)
    overlapping = await session.exec(
        select(Presidency).where(Presidency.starts_on <= ends_on, Presidency.ends_on >= starts_on)
    )
    if overlapping.first() is not None:
        raise errors.InvalidTerm(year=year)
    term = Presidency(city_id=city.id or 0, year=year, starts_on=starts_on, ends_on=ends_on)
    session.add(term)
    # Flushed here: two secretaries recording one year at once meet the unique year now.
    await session.flush()
    audit.record(
        session, actor_id=actor.user_id, action="presidency.set", subject=city.name, year=year
    )
    return term
