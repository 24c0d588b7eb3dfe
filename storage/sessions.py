"""Sessions of the working groups: fixing, moving and cancelling them, RSVPs, reminders.

Every instant is UTC; what a person typed in their zone was turned into an instant at
the edge (scheduler.zones). Organisers (the group's coordinators, the secretariat, the
term presidency) fix, move and cancel; the group's chats are told through the outbox.
Reminders are decided here from the database alone, so a restart neither loses nor
repeats one: each has a dedupe key naming the session, its version and the offset.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import agenda, audit, errors, outbox
from storage.db import insert_for
from storage.models import (
    Chat,
    City,
    GroupMembership,
    GroupStatus,
    OutboxMessage,
    SessionRsvp,
    SessionStatus,
    WorkingGroup,
    WorkingSession,
)
from storage.roles import Actor

log = logging.getLogger(__name__)

# Outbox kinds this module writes (rendered by handlers.sessions).
SCHEDULED = "session.scheduled"
MOVED = "session.moved"
CANCELLED = "session.cancelled"
REMINDER = "session.reminder"

MIN_LENGTH = timedelta(minutes=15)
MAX_LENGTH = timedelta(hours=8)
MAX_TITLE = 200
DEFAULT_REMINDERS = (timedelta(days=7), timedelta(days=1), timedelta(hours=1))
# A reminder missed for a session that started less than this ago is recorded as dropped.
MISSED_FOR = timedelta(days=1)
# Jitsi Meet needs no account: a room name nobody can guess is the meeting.
DEFAULT_MEETING_URL = "https://meet.jit.si/{room}"


class Answer(StrEnum):
    YES = "yes"
    MAYBE = "maybe"
    NO = "no"


def meeting_url(template: str, group: WorkingGroup) -> str:
    room = f"B40-{group.slug}-{secrets.token_hex(8)}"
    return template.replace("{room}", room)


def _check_times(starts_at: datetime, length: timedelta, *, now: datetime) -> None:
    if starts_at.tzinfo is None:
        raise ValueError("starts_at must be an aware UTC instant")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise errors.InvalidSessionLength(
            minutes=int(length.total_seconds() // 60),
            min=int(MIN_LENGTH.total_seconds() // 60),
            max=int(MAX_LENGTH.total_seconds() // 60),
        )
    if starts_at <= now:
        raise errors.SessionInPast(starts_at=starts_at)


def clean_title(title: str) -> str:
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise errors.InvalidSessionTitle(max=MAX_TITLE)
    return title


def require_organiser(actor: Actor, group_id: int) -> None:
    if not (actor.is_organiser(group_id) or actor.is_presidency):
        raise errors.NotAllowed(role="session_organiser")


async def group_chats(session: AsyncSession, group_id: int) -> list[int]:
    rows = await session.exec(
        select(Chat.chat_id).where(Chat.group_id == group_id, col(Chat.bot_is_member))
    )
    return sorted(rows.all())


async def places(session: AsyncSession, group_id: int) -> list[tuple[str, str]]:
    """The group's member cities as (name, IANA zone), by name: what a time is shown in."""
    rows = await session.exec(
        select(City.name, City.timezone)
        .join(GroupMembership, col(GroupMembership.city_id) == col(City.id))
        .where(GroupMembership.group_id == group_id)
        .order_by(col(City.search_key), col(City.country_code))
    )
    return [(name, zone) for name, zone in rows.all()]


async def describe(
    session: AsyncSession,
    meeting: WorkingSession,
    group: WorkingGroup,
    *,
    with_attendance: bool = False,
) -> dict[str, object]:
    """What a message about a session needs to say it, as JSON-able facts: times as ISO
    UTC instants, the member cities to show them in, and (when asked) who is coming."""
    found: dict[str, object] = {
        "session": meeting.id,
        "group": group.name,
        "slug": group.slug,
        "group_id": group.id,
        "title": meeting.title,
        "starts_at": meeting.starts_at.isoformat(),
        "ends_at": meeting.ends_at.isoformat(),
        "join_url": meeting.join_url,
        "sequence": meeting.sequence,
        "status": meeting.status,
        "places": [list(place) for place in await places(session, group.id or 0)],
    }
    if meeting.status == SessionStatus.SCHEDULED.value:
        found["agenda"] = agenda.agenda_facts(await agenda.on_agenda(session, meeting.id or 0))
    if with_attendance:
        found["attendance"] = summary(await attendance(session, meeting.id or 0))
    return found


async def _tell_group(
    session: AsyncSession,
    meeting: WorkingSession,
    group: WorkingGroup,
    *,
    kind: str,
    except_chat: int | None,
    extra: dict[str, object] | None = None,
) -> None:
    chats = [c for c in await group_chats(session, group.id or 0) if c != except_chat]
    if not chats:
        return
    described = await describe(session, meeting, group)
    await outbox.enqueue_many(
        session,
        [
            outbox.Entry(
                chat_id=chat_id,
                kind=kind,
                params={**described, **(extra or {})},
                dedupe_key=f"{kind}:{meeting.id}:{meeting.sequence}:{chat_id}",
            )
            for chat_id in chats
        ],
    )


async def schedule(
    session: AsyncSession,
    *,
    actor: Actor,
    group: WorkingGroup,
    starts_at: datetime,
    length: timedelta,
    title: str,
    meeting_url_template: str,
    now: datetime,
    origin_chat: int | None = None,
) -> WorkingSession:
    """An organiser fixes a session; the group's other chats are told."""
    require_organiser(actor, group.id or 0)
    return await fix(
        session,
        group=group,
        starts_at=starts_at,
        length=length,
        title=title,
        meeting_url_template=meeting_url_template,
        now=now,
        created_by=actor.user_id,
        origin_chat=origin_chat,
    )


async def fix(
    session: AsyncSession,
    *,
    group: WorkingGroup,
    starts_at: datetime,
    length: timedelta,
    title: str,
    meeting_url_template: str,
    now: datetime,
    created_by: int | None,
    origin_chat: int | None = None,
) -> WorkingSession:
    """A session is fixed, by an organiser (``schedule``) or by a poll's deadline (the bot,
    ``created_by`` None): no role is checked here."""
    _check_times(starts_at, length, now=now)
    meeting = WorkingSession(
        group_id=group.id or 0,
        title=clean_title(title),
        starts_at=starts_at,
        ends_at=starts_at + length,
        join_url=meeting_url(meeting_url_template, group),
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    await session.flush()
    audit.record(
        session,
        actor_id=created_by,
        action="session.schedule",
        subject=group.slug,
        meeting=meeting.id,
        starts_at=starts_at.isoformat(),
    )
    await agenda.gather_waiting(session, group, now=now)
    await _tell_group(session, meeting, group, kind=SCHEDULED, except_chat=origin_chat)
    return meeting


async def get(session: AsyncSession, session_id: int) -> tuple[WorkingSession, WorkingGroup]:
    row = (
        await session.exec(
            select(WorkingSession, WorkingGroup)
            .join(WorkingGroup, col(WorkingGroup.id) == col(WorkingSession.group_id))
            .where(col(WorkingSession.id) == session_id)
        )
    ).first()
    if row is None:
        raise errors.UnknownSession(session=session_id)
    return row[0], row[1]


async def _changeable(
    session: AsyncSession, session_id: int, *, now: datetime
) -> tuple[WorkingSession, WorkingGroup]:
    """A session that can still be moved, cancelled or answered: neither cancelled nor over."""
    meeting, group = await get(session, session_id)
    if meeting.status == SessionStatus.CANCELLED:
        raise errors.SessionCancelled(session=session_id)
    if meeting.ends_at <= now:
        raise errors.SessionOver(session=session_id)
    return meeting, group


async def move(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: int,
    starts_at: datetime,
    now: datetime,
    origin_chat: int | None = None,
) -> WorkingSession:
    meeting, group = await _changeable(session, session_id, now=now)
    require_organiser(actor, group.id or 0)
    _check_times(starts_at, meeting.ends_at - meeting.starts_at, now=now)
    was = meeting.starts_at
    meeting.ends_at = starts_at + (meeting.ends_at - meeting.starts_at)
    meeting.starts_at = starts_at
    await _new_version(session, meeting, now=now)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="session.move",
        subject=group.slug,
        meeting=session_id,
        was=was.isoformat(),
        starts_at=starts_at.isoformat(),
    )
    await _tell_group(
        session, meeting, group, kind=MOVED, except_chat=origin_chat, extra={"was": was.isoformat()}
    )
    return meeting


async def cancel(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: int,
    now: datetime,
    origin_chat: int | None = None,
) -> WorkingSession:
    meeting, group = await _changeable(session, session_id, now=now)
    require_organiser(actor, group.id or 0)
    meeting.status = SessionStatus.CANCELLED.value
    await _new_version(session, meeting, now=now)
    await agenda.release(session, meeting, group, now=now)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="session.cancel",
        subject=group.slug,
        meeting=session_id,
    )
    await _tell_group(session, meeting, group, kind=CANCELLED, except_chat=origin_chat)
    return meeting


async def _new_version(session: AsyncSession, meeting: WorkingSession, *, now: datetime) -> None:
    """A changed session: its version rises (calendars read it as SEQUENCE), and the
    reminders of the old version that still wait are not sent."""
    meeting.sequence += 1
    meeting.updated_at = now
    session.add(meeting)
    await _withdraw_reminders(session, meeting, now=now)


async def _withdraw_reminders(
    session: AsyncSession, meeting: WorkingSession, *, now: datetime
) -> None:
    """Reminders of the old time that are still waiting are not sent."""
    await session.exec(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.dedupe_key).startswith(f"{REMINDER}:{meeting.id}:"),
            col(OutboxMessage.sent_at).is_(None),
            col(OutboxMessage.failed_at).is_(None),
        )
        .values(failed_at=now, error="withdrawn: the session was moved or cancelled")
    )


async def upcoming(
    session: AsyncSession, *, group_ids: Sequence[int], now: datetime, limit: int = 10
) -> list[tuple[WorkingSession, WorkingGroup]]:
    """Sessions not over yet, cancelled ones included (people need to know), soonest first."""
    if not group_ids:
        return []
    rows = await session.exec(
        select(WorkingSession, WorkingGroup)
        .join(WorkingGroup, col(WorkingGroup.id) == col(WorkingSession.group_id))
        .where(col(WorkingSession.group_id).in_(list(group_ids)), col(WorkingSession.ends_at) > now)
        .order_by(col(WorkingSession.starts_at), col(WorkingSession.id))
        .limit(limit)
    )
    return [(m, g) for m, g in rows.all()]


async def next_session(
    session: AsyncSession, *, group_ids: Sequence[int], now: datetime
) -> tuple[WorkingSession, WorkingGroup] | None:
    """The next session of these groups that is going ahead (or under way)."""
    if not group_ids:
        return None
    row = (
        await session.exec(
            select(WorkingSession, WorkingGroup)
            .join(WorkingGroup, col(WorkingGroup.id) == col(WorkingSession.group_id))
            .where(
                col(WorkingSession.group_id).in_(list(group_ids)),
                WorkingSession.status == SessionStatus.SCHEDULED,
                col(WorkingSession.ends_at) > now,
            )
            .order_by(col(WorkingSession.starts_at), col(WorkingSession.id))
            .limit(1)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def groups_of(session: AsyncSession, actor: Actor) -> list[int]:
    """The working groups whose sessions concern this person: their city's groups; every
    active group for the secretariat and the term presidency."""
    if actor.is_secretariat or actor.is_presidency:
        rows = await session.exec(
            select(WorkingGroup.id).where(WorkingGroup.status == GroupStatus.ACTIVE.value)
        )
        return sorted(group_id for group_id in rows.all() if group_id is not None)
    city = actor.approved_city()
    rows = await session.exec(
        select(GroupMembership.group_id).where(GroupMembership.city_id == city.id)
    )
    return sorted(rows.all())


async def answer(
    session: AsyncSession, *, actor: Actor, session_id: int, reply: Answer, now: datetime
) -> tuple[WorkingSession, City]:
    """A delegate's RSVP; the last answer counts. Only delegates of member cities answer."""
    city = actor.approved_city()
    meeting, group = await _changeable(session, session_id, now=now)
    if await session.get(GroupMembership, (group.id, city.id)) is None:
        raise errors.NotInGroup(city=city.name, group=group.name)
    insert = insert_for(session)
    values = {
        "session_id": session_id,
        "user_id": actor.user_id,
        "city_id": city.id,
        "answer": reply.value,
        "answered_at": now,
    }
    statement = insert(SessionRsvp).values(**values)
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["session_id", "user_id"],
            set_={"answer": reply.value, "answered_at": now, "city_id": city.id},
        )
    )
    return meeting, city


@dataclass(frozen=True)
class Attendance:
    """Per city: the answers of its delegates (the city attends if any says yes)."""

    city: City
    answers: dict[int, str]

    @property
    def attending(self) -> bool:
        return Answer.YES.value in self.answers.values()


async def attendance(session: AsyncSession, session_id: int) -> list[Attendance]:
    rows = await session.exec(
        select(SessionRsvp, City)
        .join(City, col(City.id) == col(SessionRsvp.city_id))
        .where(SessionRsvp.session_id == session_id)
        .order_by(col(City.country_code), col(City.search_key), col(SessionRsvp.user_id))
    )
    by_city: dict[int, Attendance] = {}
    for rsvp, city in rows.all():
        entry = by_city.setdefault(city.id or 0, Attendance(city, {}))
        entry.answers[rsvp.user_id] = rsvp.answer
    return list(by_city.values())


def summary(found: Sequence[Attendance]) -> dict[str, list[str]]:
    """City names by their answer: ``yes`` when any delegate of the city comes, else
    ``maybe`` when any may, else ``no``."""
    by_answer: dict[str, list[str]] = {answer.value: [] for answer in Answer}
    for entry in found:
        values = set(entry.answers.values())
        if Answer.YES.value in values:
            by_answer[Answer.YES.value].append(entry.city.name)
        elif Answer.MAYBE.value in values:
            by_answer[Answer.MAYBE.value].append(entry.city.name)
        else:
            by_answer[Answer.NO.value].append(entry.city.name)
    return by_answer


async def enqueue_due_reminders(
    session: AsyncSession,
    *,
    now: datetime,
    offsets: Sequence[timedelta] = DEFAULT_REMINDERS,
) -> int:
    """Write the reminder each session owes now; returns how many were new.

    A reminder is due at ``starts_at - offset`` and applies to the session as it stands:
    one whose time fell before the session was fixed or last moved is not owed (a session
    fixed two days ahead gets no seven-day reminder). Of the reminders due, only the
    latest counts: after a long outage a session starting in 30 minutes gets its one-hour
    reminder, late, not the seven-day one as well. One owed for a session that has since
    started is written as dropped, and logged, once. The dedupe key (session, version,
    offset, chat) makes writing twice a no-op, so the sweep can run as often as it likes,
    and a restart neither loses nor repeats a reminder.
    """
    longest = max(offsets)
    rows = await session.exec(
        select(WorkingSession, WorkingGroup)
        .join(WorkingGroup, col(WorkingGroup.id) == col(WorkingSession.group_id))
        .where(
            WorkingSession.status == SessionStatus.SCHEDULED,
            col(WorkingSession.starts_at) > now - MISSED_FOR,
            col(WorkingSession.starts_at) <= now + longest,
        )
    )
    written = 0
    for meeting, group in rows.all():
        owed = [
            offset for offset in offsets if meeting.updated_at <= meeting.starts_at - offset <= now
        ]
        if not owed:
            continue
        offset = min(owed)  # the latest one due
        minutes = int(offset.total_seconds() // 60)
        chats = await group_chats(session, group.id or 0)
        if not chats:
            continue
        started = meeting.starts_at <= now
        described = await describe(session, meeting, group, with_attendance=not started)
        new = await outbox.enqueue_many(
            session,
            [
                outbox.Entry(
                    chat_id=chat_id,
                    kind=REMINDER,
                    params={
                        **described,
                        "before_minutes": minutes,
                        # What the reminder says: exact when on time, the truth when late.
                        "starts_in_minutes": int((meeting.starts_at - now).total_seconds() // 60),
                    },
                    dedupe_key=f"{REMINDER}:{meeting.id}:{meeting.sequence}:{minutes}:{chat_id}",
                )
                for chat_id in chats
            ],
            dropped=(now, "dropped: the session had started") if started else None,
        )
        if started and new:
            log.warning(
                "reminder %s min before session %s was not sent in time (started %s); dropped",
                minutes,
                meeting.id,
                meeting.starts_at.isoformat(),
            )
        elif not started:
            written += new
    return written
