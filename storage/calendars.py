"""Calendar subscriptions: who may read which sessions, behind which secret address.

A feed is a person's (every session of their groups, with their own answer), a working
group's, or the network's (every group's). Its address carries a token of 256 bits that
is never stored: it is an HMAC of the feed's ``nonce`` under the server's key, so the
bot can show the address again while a copy of the database alone opens no calendar.
A request is looked up by the token's SHA-256, and the stored hash is compared in
constant time; an unknown, malformed or revoked token finds nothing, at the cost of the
same one lookup.

``state`` is what a feed's content depends on, read in one statement: the HTTP layer
answers a conditional request from it (304) without building the feed, and caches the
feed it built under it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel import select as sqlmodel_select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import agenda, audit, sessions, summits
from storage.models import (
    AgendaItem,
    CalendarFeed,
    Chat,
    City,
    FeedKind,
    GroupMembership,
    GroupStatus,
    SessionRsvp,
    Summit,
    User,
    WorkingGroup,
    WorkingSession,
)
from storage.roles import Actor
from storage.types import UTCDateTime

TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url without padding
HISTORY = timedelta(days=400)  # how far back a feed shows sessions


def derive_key(secret: str) -> bytes:
    """The key tokens are made with, from a configured secret (or the bot's token)."""
    return hashlib.sha256(f"b40-calendar-key:{secret}".encode()).digest()


def token_of(key: bytes, nonce: str) -> str:
    digest = hmac.new(key, f"b40-calendar:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _scope(kind: FeedKind, *, user_id: int | None, group_id: int | None) -> list[object]:
    return [
        CalendarFeed.kind == kind.value,
        col(CalendarFeed.user_id).is_(None) if user_id is None else CalendarFeed.user_id == user_id,
        col(CalendarFeed.group_id).is_(None)
        if group_id is None
        else CalendarFeed.group_id == group_id,
        col(CalendarFeed.revoked_at).is_(None),
    ]


async def _create(
    session: AsyncSession,
    key: bytes,
    kind: FeedKind,
    *,
    user_id: int | None,
    group_id: int | None,
    now: datetime,
) -> tuple[CalendarFeed, str]:
    nonce = secrets.token_hex(16)
    token = token_of(key, nonce)
    feed = CalendarFeed(
        kind=kind.value,
        user_id=user_id,
        group_id=group_id,
        nonce=nonce,
        token_hash=hash_of(token),
        created_at=now,
    )
    session.add(feed)
    await session.flush()
    return feed, token


async def address(
    session: AsyncSession,
    key: bytes,
    kind: FeedKind,
    *,
    user_id: int | None = None,
    group_id: int | None = None,
    now: datetime,
) -> tuple[CalendarFeed, str]:
    """The feed's current token, made the first time it is asked for."""
    found = (
        await session.exec(
            sqlmodel_select(CalendarFeed)
            .where(*_scope(kind, user_id=user_id, group_id=group_id))  # type: ignore[arg-type]
            .order_by(col(CalendarFeed.id).desc())
        )
    ).first()
    if found is not None:
        return found, token_of(key, found.nonce)
    return await _create(session, key, kind, user_id=user_id, group_id=group_id, now=now)


async def reset(
    session: AsyncSession,
    key: bytes,
    kind: FeedKind,
    *,
    actor: Actor,
    user_id: int | None = None,
    group_id: int | None = None,
    now: datetime,
) -> tuple[CalendarFeed, str]:
    """The old address stops working at once (404); a new one replaces it."""
    if kind is FeedKind.GROUP:
        agenda.require_organiser(actor, group_id or 0)
    await session.exec(
        update(CalendarFeed)
        .where(*_scope(kind, user_id=user_id, group_id=group_id))  # type: ignore[arg-type]
        .values(revoked_at=now)
    )
    feed, token = await _create(session, key, kind, user_id=user_id, group_id=group_id, now=now)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="calendar.reset",
        subject=f"calendar:{kind.value}",
        user=user_id,
        group=group_id,
        feed=feed.id,
    )
    return feed, token


def _since(now: datetime) -> datetime:
    """The oldest sessions a feed shows end after this: midnight, so it moves once a day."""
    return (now - HISTORY).replace(hour=0, minute=0, second=0, microsecond=0)


def _state_columns(in_groups: Callable[[Any], Any], user: Any, since: Any) -> list[Any]:
    """What a feed's content depends on, as scalar subqueries: its sessions (every change
    raises a session's version, even a move to the same instant), their agendas, the
    groups' cities (their local times are shown) and the person's answers."""

    def of(*columns: Any, where: Any) -> list[Any]:
        return [select(column).where(where).scalar_subquery() for column in columns]

    return [
        *of(
            func.count(col(WorkingSession.id)),
            func.max(WorkingSession.updated_at),
            func.sum(WorkingSession.sequence),
            where=in_groups(col(WorkingSession.group_id)) & (col(WorkingSession.ends_at) >= since),
        ),
        *of(
            func.count(col(AgendaItem.id)),
            func.max(AgendaItem.updated_at),
            where=in_groups(col(AgendaItem.group_id)),
        ),
        *of(
            func.count(col(GroupMembership.city_id)),
            func.max(GroupMembership.joined_at),
            where=in_groups(col(GroupMembership.group_id)),
        ),
        *of(
            func.count(col(SessionRsvp.session_id)),
            func.max(SessionRsvp.answered_at),
            where=col(SessionRsvp.user_id) == user,
        ),
        # The network's feed shows the summits (the others ignore them, at no cost).
        *of(
            func.count(col(Summit.id)),
            func.max(Summit.updated_at),
            func.sum(Summit.sequence),
            where=col(Summit.id).is_not(None),
        ),
    ]


def _lookup_statement() -> Any:
    """The feed behind a token's hash, the language it speaks (its person's, or its group
    chat's) and, for a group's feed, its state: one statement, built once."""
    person_language = (
        select(func.coalesce(User.language, User.telegram_language))
        .where(col(User.telegram_id) == col(CalendarFeed.user_id))
        .scalar_subquery()
    )
    chat_language = (
        select(col(Chat.language))
        .where(col(Chat.group_id) == col(CalendarFeed.group_id), col(Chat.language).is_not(None))
        .order_by(col(Chat.chat_id))
        .limit(1)
        .scalar_subquery()
    )
    return select(
        col(CalendarFeed.id),
        col(CalendarFeed.kind),
        col(CalendarFeed.user_id),
        col(CalendarFeed.group_id),
        col(CalendarFeed.token_hash),
        col(CalendarFeed.created_at),
        func.coalesce(person_language, chat_language),
        *_state_columns(
            lambda column: column == col(CalendarFeed.group_id),
            col(CalendarFeed.user_id),
            bindparam("since", type_=UTCDateTime),
        ),
    ).where(
        col(CalendarFeed.token_hash) == bindparam("token_hash", type_=String),
        col(CalendarFeed.revoked_at).is_(None),
    )


_LOOKUP = _lookup_statement()


@dataclass(frozen=True)
class Found:
    """A live feed found by its token, the language it speaks, and (a group's feed) its
    state; a person's feeds need their person's roles first (``state``)."""

    feed: CalendarFeed
    language: str | None
    state: tuple[object, ...] | None


async def lookup(connection: AsyncConnection, token: str, *, now: datetime) -> Found | None:
    """The live feed behind a token from a request, or None: one statement, on a plain
    connection (the path every calendar app's hourly poll takes)."""
    if not TOKEN.fullmatch(token):
        return None
    wanted = hash_of(token)
    since = _since(now)
    row = (await connection.execute(_LOOKUP, {"token_hash": wanted, "since": since})).first()
    if row is None or not hmac.compare_digest(row[4], wanted):
        return None
    feed = CalendarFeed(
        id=row[0],
        kind=row[1],
        user_id=row[2],
        group_id=row[3],
        nonce="",
        token_hash=row[4],
        created_at=row[5],
    )
    state = None
    if feed.kind == FeedKind.GROUP.value and feed.group_id is not None:
        state = (feed.id, (feed.group_id,), since.date(), *tuple(row)[7:])
    return Found(feed, row[6], state)


# --- what a feed shows -------------------------------------------------------------------------


async def group_ids(session: AsyncSession, feed: CalendarFeed, actor: Actor | None) -> list[int]:
    """The working groups whose sessions the feed shows. A person's feeds (their own, and
    the network's as they see it) show nothing once they are no longer a delegate."""
    if feed.kind == FeedKind.GROUP.value:
        return [feed.group_id] if feed.group_id is not None else []
    if actor is None or not (
        actor.is_secretariat or actor.is_presidency or actor.is_approved_delegate
    ):
        return []
    if feed.kind == FeedKind.PERSON.value:
        return await sessions.groups_of(session, actor)
    rows = await session.exec(
        sqlmodel_select(WorkingGroup.id).where(WorkingGroup.status == GroupStatus.ACTIVE.value)
    )
    return sorted(group_id for group_id in rows.all() if group_id is not None)


async def state(
    session: AsyncSession, feed: CalendarFeed, groups: Sequence[int], *, now: datetime
) -> tuple[object, ...]:
    """What the feed's content depends on (see ``_state_columns``), in one statement."""
    since = _since(now)
    in_groups = list(groups)
    user_id = feed.user_id if feed.user_id is not None else -1
    columns = _state_columns(lambda column: column.in_(in_groups), user_id, since)
    row = (await session.exec(select(*columns))).one()  # type: ignore[call-overload]
    return (feed.id, tuple(groups), since.date(), *tuple(row))


@dataclass
class Shown:
    """A session as a feed shows it."""

    meeting: WorkingSession
    group: WorkingGroup
    places: list[tuple[str, str]]
    agenda: list[dict[str, object]]
    answer: str | None = None
    # The last change of anything the event shows (its agenda, the person's answer too).
    changed: datetime | None = None


async def _shown(
    session: AsyncSession,
    meeting: WorkingSession,
    group: WorkingGroup,
    places: list[tuple[str, str]],
    answer: tuple[str, datetime] | None = None,
) -> Shown:
    items = await agenda.on_agenda(session, meeting.id or 0)
    changes = [meeting.updated_at, *(item.updated_at for item, _city in items)]
    if answer is not None:
        changes.append(answer[1])
    return Shown(
        meeting=meeting,
        group=group,
        places=places,
        agenda=agenda.agenda_facts(items),
        answer=answer[0] if answer is not None else None,
        changed=max(changes),
    )


@dataclass
class FeedContent:
    feed: CalendarFeed
    group: WorkingGroup | None
    shown: list[Shown] = field(default_factory=list)
    summits: list[tuple[Summit, City]] = field(default_factory=list)


async def content(
    session: AsyncSession, feed: CalendarFeed, groups: Sequence[int], *, now: datetime
) -> FeedContent:
    rows = await session.exec(
        sqlmodel_select(WorkingSession, WorkingGroup)
        .join(WorkingGroup, col(WorkingGroup.id) == col(WorkingSession.group_id))
        .where(
            col(WorkingSession.group_id).in_(list(groups)),
            col(WorkingSession.ends_at) >= _since(now),
        )
        .order_by(col(WorkingSession.starts_at), col(WorkingSession.id))
    )
    found = list(rows.all())
    places = {group_id: await sessions.places(session, group_id) for group_id in groups}
    answers: dict[int, tuple[str, datetime]] = {}
    if feed.user_id is not None and found:
        rsvps = await session.exec(
            sqlmodel_select(
                SessionRsvp.session_id, SessionRsvp.answer, SessionRsvp.answered_at
            ).where(
                SessionRsvp.user_id == feed.user_id,
                col(SessionRsvp.session_id).in_([m.id for m, _g in found]),
            )
        )
        answers = {session_id: (said, at) for session_id, said, at in rsvps.all()}
    shown = [
        await _shown(
            session,
            meeting,
            group,
            places.get(group.id or 0, []),
            answers.get(meeting.id or 0),
        )
        for meeting, group in found
    ]
    group = await session.get(WorkingGroup, feed.group_id) if feed.group_id else None
    found_summits = []
    if feed.kind == FeedKind.NETWORK.value and groups:
        found_summits = await summits.listed(session, since=_since(now).date())
    return FeedContent(feed=feed, group=group, shown=shown, summits=found_summits)


async def one(session: AsyncSession, session_id: int) -> Shown:
    """A single session, for a one-off .ics file."""
    meeting, group = await sessions.get(session, session_id)
    return await _shown(session, meeting, group, await sessions.places(session, group.id or 0))
