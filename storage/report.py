"""The annual report's figures: what the network did in a year, read from the database.

A year is the network's calendar year in its reference zone. A session was held if it
was not cancelled and had begun by ``now``; a city was expected at it if it was a member
of the group when the session began, and is counted as attending if any of its delegates
answered that they were coming (the bot records answers, not presence).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import polls
from storage.models import (
    AgendaItem,
    AgendaStatus,
    City,
    Delegate,
    DelegateStatus,
    GroupMembership,
    Poll,
    PollKind,
    PollStatus,
    Presidency,
    SessionRsvp,
    SessionStatus,
    WorkingGroup,
    WorkingSession,
)


@dataclass
class GroupSessions:
    name: str
    slug: str
    held: int = 0
    cancelled: int = 0


@dataclass
class CityAttendance:
    city: str
    country: str
    expected: int = 0  # sessions of its groups held while it was a member
    attended: int = 0  # of those, the ones it answered it was coming to
    by_quarter: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # attended


@dataclass
class AgendaLine:
    group: str
    session: int
    title: str
    city: str
    outcome: str  # an AgendaOutcome, or "none" when not recorded
    recommendation: str


@dataclass
class PollLine:
    group: str  # "" for the whole network (the election)
    kind: str
    question: str
    voted: int
    entitled: int
    result: str  # the options that carried, "" when none


@dataclass
class AnnualReport:
    year: int
    groups: list[GroupSessions]
    attendance: list[CityAttendance]
    agenda: list[AgendaLine]
    polls: list[PollLine]
    new_cities: list[tuple[str, str, date]]  # name, country, joined
    new_delegates: list[tuple[str, str]]  # city, role
    presidency: tuple[str, date, date] | None

    @property
    def empty(self) -> bool:
        return not (
            any(g.held or g.cancelled for g in self.groups)
            or self.agenda
            or self.polls
            or self.new_cities
            or self.new_delegates
            or self.presidency
        )

    def by_country(self) -> list[tuple[str, int, int]]:
        expected: Counter[str] = Counter()
        attended: Counter[str] = Counter()
        for row in self.attendance:
            expected[row.country] += row.expected
            attended[row.country] += row.attended
        return [(country, expected[country], attended[country]) for country in sorted(expected)]

    def outcomes(self) -> dict[str, int]:
        return dict(Counter(line.outcome for line in self.agenda))


def _bounds(year: int, zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    return (
        datetime.combine(date(year, 1, 1), time(), tz),
        datetime.combine(date(year + 1, 1, 1), time(), tz),
    )


async def build(session: AsyncSession, *, year: int, zone: str, now: datetime) -> AnnualReport:
    start, end = _bounds(year, zone)
    tz = ZoneInfo(zone)
    groups = {
        g.id: g
        for g in (await session.exec(select(WorkingGroup).order_by(col(WorkingGroup.slug)))).all()
    }
    rows = (
        await session.exec(
            select(WorkingSession).where(
                col(WorkingSession.starts_at) >= start,
                col(WorkingSession.starts_at) < end,
                col(WorkingSession.starts_at) <= now,
            )
        )
    ).all()
    per_group = {gid: GroupSessions(g.name, g.slug) for gid, g in groups.items()}
    held = [m for m in rows if m.status != SessionStatus.CANCELLED.value]
    for meeting in rows:
        entry = per_group[meeting.group_id]
        if meeting.status == SessionStatus.CANCELLED.value:
            entry.cancelled += 1
        else:
            entry.held += 1

    cities = {c.id: c for c in (await session.exec(select(City))).all()}
    members: dict[int, list[GroupMembership]] = {}
    for membership in (await session.exec(select(GroupMembership))).all():
        members.setdefault(membership.group_id, []).append(membership)
    answers = (
        await session.exec(
            select(SessionRsvp.session_id, SessionRsvp.city_id).where(
                col(SessionRsvp.session_id).in_([m.id for m in held]),
                SessionRsvp.answer == "yes",
            )
        )
    ).all()
    coming = {(session_id, city_id) for session_id, city_id in answers}
    attendance: dict[int, CityAttendance] = {}
    for meeting in held:
        quarter = (meeting.starts_at.astimezone(tz).month - 1) // 3
        for membership in members.get(meeting.group_id, []):
            if membership.joined_at > meeting.starts_at:
                continue
            city = cities[membership.city_id]
            row = attendance.setdefault(
                membership.city_id, CityAttendance(city.name, city.country_code)
            )
            row.expected += 1
            if (meeting.id, membership.city_id) in coming:
                row.attended += 1
                row.by_quarter[quarter] += 1

    held_ids = {m.id for m in held}
    items = (
        await session.exec(
            select(AgendaItem)
            .where(
                col(AgendaItem.session_id).in_(list(held_ids)),
                AgendaItem.status == AgendaStatus.ACCEPTED.value,
            )
            .order_by(col(AgendaItem.session_id), col(AgendaItem.position), col(AgendaItem.id))
        )
    ).all()
    agenda = [
        AgendaLine(
            group=groups[item.group_id].name,
            session=item.session_id or 0,
            title=item.title,
            city=cities[item.city_id].name,
            outcome=item.outcome or "none",
            recommendation=item.recommendation,
        )
        for item in items
    ]

    closed = (
        await session.exec(
            select(Poll)
            .where(
                col(Poll.kind).in_([PollKind.CHOICE.value, PollKind.ELECTION.value]),
                Poll.status == PollStatus.CLOSED.value,
                col(Poll.closed_at) >= start,
                col(Poll.closed_at) < end,
            )
            .order_by(col(Poll.closed_at))
        )
    ).all()
    poll_lines = []
    for poll in closed:
        found = await polls.outcome(session, poll)
        labels = {o.position: o.label for o in await polls.options(session, poll.id or 0)}
        poll_lines.append(
            PollLine(
                group=groups[poll.group_id].name if poll.group_id in groups else "",
                kind=poll.kind,
                question=poll.question,
                voted=found.voted,
                entitled=found.entitled,
                result=", ".join(labels[p] for p in found.carried),
            )
        )

    new_cities = [
        (c.name, c.country_code, c.joined_on)
        for c in sorted(cities.values(), key=lambda c: (c.joined_on, c.name))
        if start.date() <= c.joined_on < end.date()
    ]
    approved = (
        await session.exec(
            select(Delegate).where(
                col(Delegate.status).in_(
                    [DelegateStatus.APPROVED.value, DelegateStatus.SUPERSEDED.value]
                ),
                col(Delegate.decided_at) >= start,
                col(Delegate.decided_at) < end,
            )
        )
    ).all()
    new_delegates = sorted((cities[d.city_id].name, d.role) for d in approved)
    term = (await session.exec(select(Presidency).where(Presidency.year == year))).first()
    return AnnualReport(
        year=year,
        groups=list(per_group.values()),
        attendance=sorted(attendance.values(), key=lambda r: (r.country, r.city)),
        agenda=agenda,
        polls=poll_lines,
        new_cities=new_cities,
        new_delegates=new_delegates,
        presidency=(cities[term.city_id].name, term.starts_on, term.ends_on) if term else None,
    )
