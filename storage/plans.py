"""Planning a session: the planner's best times, put to the cities as an availability poll.

An organiser opens planning (``/plan``), or the bot does at the quarterly cadence; each
member city answers yes / maybe / no to each proposed time through its delegates (the
last answer of any of them counts, ``storage.polls``); an organiser confirms one, or at
the deadline the best answered one is fixed. Reading the planner's inputs from the
database is done here: the cities' zones, countries and working hours, the sessions
already fixed for any of them in any group, and who carried the early or late slot lately.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from scheduler import planning
from scheduler.planning import Busy, Candidate, PlanningCity, ReasonKind, WorkingHours
from storage import audit, errors, outbox, polls, roster, sessions
from storage.models import (
    City,
    GroupMembership,
    GroupStatus,
    Poll,
    PollKind,
    PollStatus,
    SessionRequest,
    SessionStatus,
    WorkingGroup,
    WorkingSession,
)
from storage.roles import Actor

log = logging.getLogger(__name__)

ANSWERS = ("yes", "maybe", "no")
REQUEST = "request"  # the purpose of planning opened by cities' requests
REQUEST_SHARE = 3  # a third of the group's cities asking opens planning
REQUEST_MAX_AGE = timedelta(days=90)  # older requests no longer count
MAX_CADENCE_WEEKS = 12
MAX_REASON = 300
DEADLINE = timedelta(hours=48)
DEFAULT_LENGTH = timedelta(minutes=90)
# Without dates: from a week ahead (time to prepare), four weeks long.
DEFAULT_LEAD = timedelta(days=7)
DEFAULT_DAYS = 28
BURDEN_SESSIONS = 8  # how many past sessions of the group decide who carried the edge
OPENED = "plan.opened"  # outbox kind: planning opened by the bot itself
UNDECIDED = "plan.undecided"  # outbox kind: the deadline passed and no time suited anyone


def working_hours(city: City) -> WorkingHours:
    return WorkingHours(
        start=time.fromisoformat(city.work_start),
        end=time.fromisoformat(city.work_end),
        weekdays=frozenset(int(day) - 1 for day in city.work_days),
    )


async def member_cities(session: AsyncSession, group_id: int) -> list[City]:
    rows = await session.exec(
        select(City)
        .join(GroupMembership, col(GroupMembership.city_id) == col(City.id))
        .where(GroupMembership.group_id == group_id)
        .order_by(col(City.search_key), col(City.country_code))
    )
    return list(rows.all())


def planning_city(city: City) -> PlanningCity:
    return PlanningCity(
        id=city.id or 0,
        name=city.name,
        country=city.country_code,
        zone=city.timezone,
        hours=working_hours(city),
    )


async def busy_for(
    session: AsyncSession, city_ids: Sequence[int], *, start: datetime, end: datetime
) -> list[Busy]:
    """Sessions fixed between ``start`` and ``end`` of any group with one of these cities."""
    if not city_ids:
        return []
    rows = await session.exec(
        select(WorkingSession, GroupMembership.city_id)
        .join(GroupMembership, col(GroupMembership.group_id) == col(WorkingSession.group_id))
        .where(
            WorkingSession.status == SessionStatus.SCHEDULED.value,
            col(WorkingSession.starts_at) < end,
            col(WorkingSession.ends_at) > start,
            col(GroupMembership.city_id).in_(list(city_ids)),
        )
    )
    by_session: dict[int, tuple[WorkingSession, set[int]]] = {}
    for meeting, city_id in rows.all():
        by_session.setdefault(meeting.id or 0, (meeting, set()))[1].add(city_id)
    return [
        Busy(city_ids=frozenset(ids), start=meeting.starts_at, end=meeting.ends_at)
        for meeting, ids in by_session.values()
    ]


async def burden_for(
    session: AsyncSession, group_id: int, cities: Sequence[PlanningCity], *, now: datetime
) -> dict[int, int]:
    """How often each city sat at the edge of its day in the group's recent sessions: the
    planner hands the edge to whoever carried it least, so it rotates quarter by quarter."""
    rows = await session.exec(
        select(WorkingSession)
        .where(
            WorkingSession.group_id == group_id,
            WorkingSession.status == SessionStatus.SCHEDULED.value,
            col(WorkingSession.starts_at) < now,
        )
        .order_by(col(WorkingSession.starts_at).desc())
        .limit(BURDEN_SESSIONS)
    )
    counts: dict[int, int] = {}
    for meeting in rows.all():
        for city_id in planning.edge_cities(cities, start=meeting.starts_at, end=meeting.ends_at):
            counts[city_id] = counts.get(city_id, 0) + 1
    return counts


def default_window(today: date) -> tuple[date, date]:
    first = today + DEFAULT_LEAD
    return first, first + timedelta(days=DEFAULT_DAYS - 1)


def _notes(candidate: Candidate, names: dict[int, str]) -> dict[str, object]:
    """Why cities are left out of a proposal, by city name, as the planner said it."""
    outside = []
    for city_id, reasons in sorted(candidate.reasons.items(), key=lambda r: names[r[0]]):
        said = [
            f"holiday:{reason.holiday}" if reason.kind == ReasonKind.HOLIDAY else reason.kind.value
            for reason in reasons
        ]
        outside.append([names[city_id], said])
    return {
        "outside": outside,
        "edge": sorted(names[city_id] for city_id in candidate.edge),
    }


async def open_plan(
    session: AsyncSession,
    *,
    actor: Actor | None,
    group: WorkingGroup,
    first_day: date,
    last_day: date,
    length: timedelta,
    now: datetime,
    reference_zone: str,
    title: str = "",
    deadline: timedelta = DEADLINE,
    purpose: str | None = None,
) -> Poll:
    """Open an availability poll with the best times; ``actor`` None is the bot itself.

    A group has one planning poll open at a time: a new one supersedes the last.
    """
    if actor is not None:
        sessions.require_organiser(actor, group.id or 0)
    cities = await member_cities(session, group.id or 0)
    if not cities:
        raise errors.NoMemberCities(group=group.name)
    planned = [planning_city(city) for city in cities]
    # The busy sessions of the window, with a day on each side for any zone's midnight.
    window_start = datetime.combine(first_day, time(0), tzinfo=now.tzinfo) - timedelta(days=1)
    window_end = datetime.combine(last_day, time(0), tzinfo=now.tzinfo) + timedelta(days=2)
    candidates = planning.plan(
        planned,
        start=first_day,
        end=last_day,
        duration=length,
        busy=await busy_for(session, [c.id for c in planned], start=window_start, end=window_end),
        now=now,
        reference_zone=reference_zone,
        burden=await burden_for(session, group.id or 0, planned, now=now),
    )
    if not candidates:
        raise errors.NoCandidates(start=first_day, end=last_day, cities=len(cities))
    names = {city.id: city.name for city in planned}
    for old in await open_polls(session, group.id or 0):
        await polls.close(session, old, now=now, outcome=None, status=PollStatus.SUPERSEDED)
    poll = await polls.create(
        session,
        kind=PollKind.AVAILABILITY.value,
        group=group,
        question=sessions.clean_title(title),
        options=[
            polls.NewOption(starts_at=c.start, ends_at=c.end, notes=_notes(c, names))
            for c in candidates
        ],
        closes_at=now + deadline,
        created_by=actor.user_id if actor is not None else None,
        length_minutes=int(length.total_seconds() // 60),
        purpose=purpose,
    )
    audit.record(
        session,
        actor_id=actor.user_id if actor is not None else None,
        action="plan.open",
        subject=group.slug,
        poll=poll.id,
        options=[c.start.isoformat() for c in candidates],
    )
    return poll


async def open_polls(session: AsyncSession, group_id: int) -> list[Poll]:
    rows = await session.exec(
        select(Poll).where(
            Poll.group_id == group_id,
            Poll.kind == PollKind.AVAILABILITY.value,
            Poll.status == PollStatus.OPEN.value,
        )
    )
    return list(rows.all())


async def answer(
    session: AsyncSession, *, actor: Actor, poll_id: int, position: int, value: str, now: datetime
) -> tuple[Poll, City]:
    return await polls.vote(
        session,
        actor=actor,
        poll_id=poll_id,
        position=position,
        value=value,
        allowed=ANSWERS,
        now=now,
    )


async def describe(session: AsyncSession, poll: Poll) -> dict[str, object]:
    """What a message about the poll needs, as JSON-able facts (see handlers.plans)."""
    group = await session.get(WorkingGroup, poll.group_id)
    if group is None:
        raise errors.UnknownPoll(poll=poll.id)
    counted = await polls.tally(session, poll)
    return {
        "poll": poll.id,
        "group": group.name,
        "slug": group.slug,
        "title": poll.question,
        "status": poll.status,
        "outcome": poll.outcome,
        "session": poll.session_id,
        "closes_at": poll.closes_at.isoformat(),
        "length_minutes": poll.length_minutes,
        "places": [list(place) for place in await sessions.places(session, group.id or 0)],
        "options": [
            {
                "position": option.position,
                "starts_at": option.starts_at.isoformat() if option.starts_at else None,
                "ends_at": option.ends_at.isoformat() if option.ends_at else None,
                "notes": option.notes,
                "answers": counted.by_value(option.position, ANSWERS),
            }
            for option in await polls.options(session, poll.id or 0)
        ],
    }


async def confirm(
    session: AsyncSession,
    *,
    actor: Actor,
    poll_id: int,
    position: int,
    now: datetime,
    meeting_url_template: str,
    origin_chat: int | None = None,
) -> WorkingSession:
    """An organiser fixes one of the proposed times; the poll closes with it."""
    poll = await polls.get(session, poll_id)
    if poll.status != PollStatus.OPEN.value:
        raise errors.PollClosed(poll=poll_id)
    group = await session.get(WorkingGroup, poll.group_id)
    if group is None:
        raise errors.UnknownPoll(poll=poll_id)
    sessions.require_organiser(actor, group.id or 0)
    return await _fix(
        session,
        poll,
        group,
        position,
        now=now,
        created_by=actor.user_id,
        meeting_url_template=meeting_url_template,
        origin_chat=origin_chat,
    )


async def _fix(
    session: AsyncSession,
    poll: Poll,
    group: WorkingGroup,
    position: int,
    *,
    now: datetime,
    created_by: int | None,
    meeting_url_template: str,
    origin_chat: int | None,
) -> WorkingSession:
    option = next(
        (o for o in await polls.options(session, poll.id or 0) if o.position == position), None
    )
    if option is None or option.starts_at is None or option.ends_at is None:
        raise errors.UnknownPollOption(poll=poll.id, option=position)
    meeting = await sessions.fix(
        session,
        group=group,
        starts_at=option.starts_at,
        length=option.ends_at - option.starts_at,
        title=poll.question,
        meeting_url_template=meeting_url_template,
        now=now,
        created_by=created_by,
        origin_chat=origin_chat,
    )
    # Conditional: of two organisers pressing at once, one closes the poll; the other's
    # whole unit of work, the session it fixed included, is rolled back.
    if not await polls.close(session, poll, now=now, outcome=position, session_id=meeting.id):
        raise errors.PollClosed(poll=poll.id)
    audit.record(
        session,
        actor_id=created_by,
        action="plan.confirm",
        subject=group.slug,
        poll=poll.id,
        option=position,
        meeting=meeting.id,
    )
    return meeting


def best_option(
    facts: Sequence[tuple[int, datetime | None, polls.Tally]], *, now: datetime
) -> int | None:
    """The option to fix at the deadline: most cities yes, then fewest no, then most maybe,
    then the planner's order; only one still in the future that some city can make."""
    ranked = []
    for position, starts_at, counted in facts:
        if starts_at is None or starts_at <= now:
            continue
        yes, maybe, no = (counted.count(position, value) for value in ANSWERS)
        if yes + maybe == 0:
            continue
        ranked.append(((-yes, no, -maybe, position), position))
    return min(ranked)[1] if ranked else None


async def close_due(
    session: AsyncSession, *, now: datetime, meeting_url_template: str
) -> list[tuple[Poll, WorkingSession | None]]:
    """Decide every planning poll whose deadline has passed."""
    decided: list[tuple[Poll, WorkingSession | None]] = []
    for poll in await polls.due(session, now=now, kind=PollKind.AVAILABILITY.value):
        group = await session.get(WorkingGroup, poll.group_id)
        if group is None:
            continue
        counted = await polls.tally(session, poll)
        options = await polls.options(session, poll.id or 0)
        position = best_option([(o.position, o.starts_at, counted) for o in options], now=now)
        if position is None:
            await polls.close(session, poll, now=now, outcome=None)
            chats = await sessions.group_chats(session, group.id or 0)
            facts = await describe(session, poll)
            await outbox.enqueue_many(
                session,
                [
                    outbox.Entry(chat, UNDECIDED, facts, dedupe_key=f"{UNDECIDED}:{poll.id}:{chat}")
                    for chat in chats
                ],
            )
            decided.append((poll, None))
            continue
        try:
            async with session.begin_nested():  # one poll that cannot be decided stops no other
                meeting = await _fix(
                    session,
                    poll,
                    group,
                    position,
                    now=now,
                    created_by=None,
                    meeting_url_template=meeting_url_template,
                    origin_chat=None,
                )
        except errors.DomainError as exc:
            log.warning("planning poll %s could not be decided: %r", poll.id, exc)
            continue
        decided.append((poll, meeting))
    return decided


# The quarterly cadence ------------------------------------------------------------------------


def next_quarter(today: date) -> tuple[date, date, str]:
    """The first and last day of the quarter after ``today``'s, and its name (2027Q1)."""
    index = (today.month - 1) // 3 + 1  # 1..4, this quarter
    year, quarter = (today.year + 1, 1) if index == 4 else (today.year, index + 1)
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return first, after - timedelta(days=1), f"{year}Q{quarter}"


async def open_due_quarters(
    session: AsyncSession, *, now: datetime, today: date, reference_zone: str
) -> list[Poll]:
    """Open planning by itself for each group whose next quarter comes within its cadence:
    once per group and quarter, unless organisers are planning already or a session in
    that quarter is fixed. The group's chats get the poll."""
    first, last, name = next_quarter(today)
    groups = (
        await session.exec(
            select(WorkingGroup).where(
                WorkingGroup.status == GroupStatus.ACTIVE.value, col(WorkingGroup.cadence_weeks) > 0
            )
        )
    ).all()
    opened = []
    for group in groups:
        if today < first - timedelta(weeks=group.cadence_weeks):
            continue
        chats = await sessions.group_chats(session, group.id or 0)
        if not chats or await _quarter_handled(session, group, name, first, last):
            continue
        try:
            async with session.begin_nested():
                poll = await open_plan(
                    session,
                    actor=None,
                    group=group,
                    first_day=first,
                    last_day=min(last, first + timedelta(weeks=6) - timedelta(days=1)),
                    length=DEFAULT_LENGTH,
                    now=now,
                    reference_zone=reference_zone,
                    purpose=name,
                )
        except errors.DomainError as exc:
            log.info("no planning opened for %s in %s: %r", group.slug, name, exc)
            continue
        facts = await describe(session, poll)
        await outbox.enqueue_many(
            session,
            [
                outbox.Entry(chat, OPENED, facts, dedupe_key=f"{OPENED}:{poll.id}:{chat}")
                for chat in chats
            ],
        )
        opened.append(poll)
    return opened


async def _quarter_handled(
    session: AsyncSession, group: WorkingGroup, name: str, first: date, last: date
) -> bool:
    """Planning for that quarter was opened, is under way, or a session in it is fixed."""
    poll = (
        await session.exec(
            select(Poll.id).where(
                Poll.group_id == group.id,
                Poll.kind == PollKind.AVAILABILITY.value,
                (Poll.purpose == name) | (Poll.status == PollStatus.OPEN.value),
            )
        )
    ).first()
    if poll is not None:
        return True
    fixed = (
        await session.exec(
            select(WorkingSession.id).where(
                WorkingSession.group_id == group.id,
                WorkingSession.status == SessionStatus.SCHEDULED.value,
                col(WorkingSession.starts_at) >= datetime.combine(first, time(0), tzinfo=UTC),
                col(WorkingSession.starts_at)
                < datetime.combine(last + timedelta(days=1), time(0), tzinfo=UTC),
            )
        )
    ).first()
    return fixed is not None


async def set_cadence(
    session: AsyncSession, *, actor: Actor, group: WorkingGroup, weeks: int
) -> WorkingGroup:
    """Organisers set how many weeks before a quarter planning opens by itself (0: never)."""
    sessions.require_organiser(actor, group.id or 0)
    if not 0 <= weeks <= MAX_CADENCE_WEEKS:
        raise errors.InvalidCadence(weeks=weeks, max=MAX_CADENCE_WEEKS)
    was = group.cadence_weeks
    group.cadence_weeks = weeks
    session.add(group)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="group.cadence",
        subject=group.slug,
        was=was,
        now=weeks,
    )
    return group


# Extra sessions cities ask for -----------------------------------------------------------------


@dataclass(frozen=True)
class RequestOutcome:
    asked: list[str]  # the cities whose requests count now, by name
    needed: int  # how many cities must ask
    poll: Poll | None  # the planning the requests opened, if they did


async def request_session(
    session: AsyncSession,
    *,
    actor: Actor,
    group: WorkingGroup,
    reason: str,
    now: datetime,
    today: date,
    reference_zone: str,
) -> RequestOutcome:
    """A city asks for an extra session; when a third of the group's cities have asked (in
    the last 90 days, since planning last opened this way), planning opens."""
    city = actor.approved_city()
    if await session.get(GroupMembership, (group.id, city.id)) is None:
        raise errors.NotInGroup(city=city.name, group=group.name)
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise errors.InvalidRequestReason(max=MAX_REASON)
    pending = (
        await session.exec(
            select(SessionRequest, City)
            .join(City, col(City.id) == col(SessionRequest.city_id))
            .where(
                SessionRequest.group_id == group.id,
                col(SessionRequest.poll_id).is_(None),
                col(SessionRequest.requested_at) > now - REQUEST_MAX_AGE,
            )
        )
    ).all()
    if any(row_city.id == city.id for _request, row_city in pending):
        raise errors.AlreadyRequested(city=city.name)
    request = SessionRequest(
        group_id=group.id or 0,
        city_id=city.id or 0,
        user_id=actor.user_id,
        reason=reason,
        requested_at=now,
    )
    session.add(request)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="session.request",
        subject=group.slug,
        city=city.name,
        reason=reason,
    )
    asked = sorted(
        {row_city.name for _request, row_city in pending} | {city.name}, key=roster.city_key
    )
    members = len(await member_cities(session, group.id or 0))
    needed = max(1, -(-members // REQUEST_SHARE))
    if len(asked) < needed:
        return RequestOutcome(asked, needed, None)
    first, last = default_window(today)
    poll = await open_plan(
        session,
        actor=None,
        group=group,
        first_day=first,
        last_day=last,
        length=DEFAULT_LENGTH,
        now=now,
        reference_zone=reference_zone,
        purpose=REQUEST,
    )
    for counted, _city in pending:
        counted.poll_id = poll.id
        session.add(counted)
    request.poll_id = poll.id
    session.add(request)
    await session.flush()
    return RequestOutcome(asked, needed, poll)
