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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, outbox
from storage.models import (
    Chat,
    City,
    GroupMembership,
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


def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise errors.InvalidSessionTitle(max=MAX_TITLE)
    return title


def require_organiser(actor: Actor, group_id: int) -> None:
    if not (actor.is_organiser(group_id) or actor.is_presidency):
        raise errors.NotAllowed(role="session_organiser")


async def _group_chats(session: AsyncSession, group_id: int) -> list[int]:
    rows = await session.exec(
        select(Chat.chat_id).where(Chat.group_id == group_id, col(Chat.bot_is_member))
    )
    return sorted(rows.all())


def facts(meeting: WorkingSession, group: WorkingGroup) -> dict[str, object]:
    """What a notice about a session needs to say it (times as ISO UTC instants)."""
    return {
        "session": meeting.id,
        "group": group.name,
        "slug": group.slug,
        "group_id": group.id,
        "title": meeting.title,
        "starts_at": meeting.starts_at.isoformat(),
        "ends_at": meeting.ends_at.isoformat(),
        "join_url": meeting.join_url,
        "sequence": meeting.sequence,
    }


async def _tell_group(
    session: AsyncSession,
    meeting: WorkingSession,
    group: WorkingGroup,
    *,
    kind: str,
    except_chat: int | None,
    extra: dict[str, object] | None = None,
) -> None:
    chats = [c for c in await _group_chats(session, group.id or 0) if c != except_chat]
    await outbox.enqueue_many(
        session,
        [
            outbox.Entry(
                chat_id=chat_id,
                kind=kind,
                params={**facts(meeting, group), **(extra or {})},
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
    require_organiser(actor, group.id or 0)
    _check_times(starts_at, length, now=now)
    meeting = WorkingSession(
        group_id=group.id or 0,
        title=_clean_title(title),
        starts_at=starts_at,
        ends_at=starts_at + length,
        join_url=meeting_url(meeting_url_template, group),
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="session.schedule",
        subject=group.slug,
        meeting=meeting.id,
        starts_at=starts_at.isoformat(),
    )
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
    session: AsyncSession, *, group_id: int, now: datetime
) -> WorkingSession | None:
    """The group's next session that is going ahead (or under way)."""
    return (
        await session.exec(
            select(WorkingSession)
            .where(
                WorkingSession.group_id == group_id,
                WorkingSession.status == SessionStatus.SCHEDULED,
                col(WorkingSession.ends_at) > now,
            )
            .order_by(col(WorkingSession.starts_at))
            .limit(1)
        )
    ).first()


async def answer(
    session: AsyncSession, *, actor: Actor, session_id: int, reply: Answer, now: datetime
) -> tuple[WorkingSession, City]:
    """A delegate's RSVP; the last answer counts. Only delegates of member cities answer."""
    city = actor.approved_city()
    meeting, group = await _changeable(session, session_id, now=now)
    if await session.get(GroupMembership, (group.id, city.id)) is None:
        raise errors.NotInGroup(city=city.name, group=group.name)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
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


async def enqueue_due_reminders(
    session: AsyncSession,
    *,
    now: datetime,
    offsets: Sequence[timedelta] = DEFAULT_REMINDERS,
) -> int:
    """Write every reminder whose time has come; returns how many were new.

    A reminder is due at ``starts_at - offset``. It applies only to the session as it
    stands: one whose time fell before the session was fixed or last moved is not
    owed (a session fixed two days ahead gets no seven-day reminder). One missed while
    the bot was down is written late if the session has not started, else dropped. The
    dedupe key makes writing it twice a no-op, so the sweep can run as often as it likes.
    """
    longest = max(offsets)
    rows = await session.exec(
        select(WorkingSession, WorkingGroup)
        .join(WorkingGroup, col(WorkingGroup.id) == col(WorkingSession.group_id))
        .where(
            WorkingSession.status == SessionStatus.SCHEDULED,
            col(WorkingSession.starts_at) > now,
            col(WorkingSession.starts_at) <= now + longest,
        )
    )
    written = 0
    for meeting, group in rows.all():
        for offset in offsets:
            due = meeting.starts_at - offset
            if due > now or due < meeting.updated_at:
                continue
            minutes = int(offset.total_seconds() // 60)
            chats = await _group_chats(session, group.id or 0)
            written += await outbox.enqueue_many(
                session,
                [
                    outbox.Entry(
                        chat_id=chat_id,
                        kind=REMINDER,
                        params={**facts(meeting, group), "before_minutes": minutes},
                        dedupe_key=f"{REMINDER}:{meeting.id}:{meeting.sequence}:{minutes}:{chat_id}",
                    )
                    for chat_id in chats
                ],
            )
    return written
