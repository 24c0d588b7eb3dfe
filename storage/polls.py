"""Polls counted one city, one answer: written once, for every kind of poll.

A city answers through its approved delegates; the last answer any of them gives to
an option is the city's answer to it (a row per poll, option and city, overwritten).
Who may answer is decided here: a delegate of a member city of the poll's working
group (any member city for a poll of the whole network), while the poll is open and
its deadline has not passed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import errors
from storage.models import (
    City,
    GroupMembership,
    Poll,
    PollOption,
    PollStatus,
    PollVote,
    WorkingGroup,
)
from storage.roles import Actor


@dataclass(frozen=True)
class NewOption:
    label: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    notes: dict[str, object] = field(default_factory=dict)


async def create(
    session: AsyncSession,
    *,
    kind: str,
    group: WorkingGroup | None,
    question: str,
    options: Sequence[NewOption],
    closes_at: datetime,
    created_by: int | None,
    length_minutes: int | None = None,
    purpose: str | None = None,
) -> Poll:
    if not options:
        raise ValueError("a poll needs options")
    poll = Poll(
        group_id=group.id if group is not None else None,
        kind=kind,
        question=question,
        closes_at=closes_at,
        length_minutes=length_minutes,
        created_by=created_by,
        purpose=purpose,
    )
    session.add(poll)
    await session.flush()
    for position, option in enumerate(options, start=1):
        session.add(
            PollOption(
                poll_id=poll.id or 0,
                position=position,
                label=option.label,
                starts_at=option.starts_at,
                ends_at=option.ends_at,
                notes=option.notes,
            )
        )
    await session.flush()
    return poll


async def get(session: AsyncSession, poll_id: int) -> Poll:
    poll = await session.get(Poll, poll_id)
    if poll is None:
        raise errors.UnknownPoll(poll=poll_id)
    return poll


async def options(session: AsyncSession, poll_id: int) -> list[PollOption]:
    rows = await session.exec(
        select(PollOption).where(PollOption.poll_id == poll_id).order_by(col(PollOption.position))
    )
    return list(rows.all())


def require_open(poll: Poll, *, now: datetime) -> None:
    if poll.status != PollStatus.OPEN.value or poll.closes_at <= now:
        raise errors.PollClosed(poll=poll.id)


async def vote(
    session: AsyncSession,
    *,
    actor: Actor,
    poll_id: int,
    position: int,
    value: str,
    allowed: Collection[str],
    now: datetime,
) -> tuple[Poll, City]:
    """Record the actor's city's answer ``value`` to option ``position``; the last counts."""
    city = actor.approved_city()
    poll = await get(session, poll_id)
    require_open(poll, now=now)
    if value not in allowed or await session.get(PollOption, (poll_id, position)) is None:
        raise errors.UnknownPollOption(poll=poll_id, option=position)
    in_group = poll.group_id is None or (
        await session.get(GroupMembership, (poll.group_id, city.id)) is not None
    )
    if not in_group:
        group = await session.get(WorkingGroup, poll.group_id)
        raise errors.NotInGroup(city=city.name, group=group.name if group else "")
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(PollVote).values(
        poll_id=poll_id,
        position=position,
        city_id=city.id,
        user_id=actor.user_id,
        value=value,
        cast_at=now,
    )
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["poll_id", "position", "city_id"],
            set_={"user_id": actor.user_id, "value": value, "cast_at": now},
        )
    )
    return poll, city


@dataclass
class Tally:
    """Per option: each city's answer (the last one cast for it), cities by name."""

    answers: dict[int, dict[str, str]]

    def count(self, position: int, value: str) -> int:
        return sum(1 for answer in self.answers.get(position, {}).values() if answer == value)

    def cities(self, position: int, value: str) -> list[str]:
        return [city for city, answer in self.answers.get(position, {}).items() if answer == value]

    def by_value(self, position: int, values: Sequence[str]) -> dict[str, list[str]]:
        return {value: self.cities(position, value) for value in values}


async def tally(session: AsyncSession, poll: Poll) -> Tally:
    """Every city's answer to every option. Only cities that are still members count (a
    city that left the group since it answered is not counted)."""
    query = (
        select(PollVote.position, City.name, PollVote.value)
        .join(City, col(City.id) == col(PollVote.city_id))
        .where(PollVote.poll_id == poll.id)
        .order_by(col(PollVote.position), col(City.search_key), col(City.country_code))
    )
    if poll.group_id is not None:
        query = query.join(
            GroupMembership,
            (col(GroupMembership.city_id) == col(PollVote.city_id))
            & (col(GroupMembership.group_id) == poll.group_id),
        )
    answers: dict[int, dict[str, str]] = {}
    for position, name, value in (await session.exec(query)).all():
        answers.setdefault(position, {})[name] = value
    return Tally(answers)


async def close(
    session: AsyncSession,
    poll: Poll,
    *,
    now: datetime,
    outcome: int | None,
    status: PollStatus = PollStatus.CLOSED,
    session_id: int | None = None,
) -> bool:
    """Close an open poll; False if it was no longer open (someone else closed it first)."""
    result = await session.exec(
        update(Poll)
        .where(col(Poll.id) == poll.id, col(Poll.status) == PollStatus.OPEN.value)
        .values(status=status.value, outcome=outcome, closed_at=now, session_id=session_id)
    )
    if result.rowcount != 1:
        return False
    await session.refresh(poll)
    return True


async def due(session: AsyncSession, *, now: datetime, kind: str) -> list[Poll]:
    rows = await session.exec(
        select(Poll)
        .where(Poll.status == PollStatus.OPEN.value, Poll.kind == kind, col(Poll.closes_at) <= now)
        .order_by(col(Poll.closes_at), col(Poll.id))
    )
    return list(rows.all())
