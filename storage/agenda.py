"""The agenda of the working groups' sessions: what cities ask to discuss, and what became of it.

A delegate asks for an item on behalf of their city, for the group's next session that
still takes requests: requests close ``WorkingGroup.request_deadline_days`` before a
session starts. A request after that deadline goes to the following session (it is
``late``, and the delegate is told), or waits without a session until one is fixed.
Organisers (the group's coordinators, the secretariat, the term presidency) accept,
decline with a reason, or defer to the following session; they order the accepted
items, give each a time, and after the session record its outcome. Other member cities
support a request and give their opinion on it, one city, one voice.

Every change is one conditional statement on the state that was read, so two organisers
deciding at once cannot both win: the second is told the request changed meanwhile.
Everything is written to the audit log under the subject ``agenda:<number>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, outbox
from storage.db import insert_for
from storage.models import (
    AgendaItem,
    AgendaOpinion,
    AgendaOutcome,
    AgendaStatus,
    AgendaSupport,
    City,
    GroupMembership,
    SessionStatus,
    WorkingGroup,
    WorkingSession,
)
from storage.roles import Actor

# Outbox kind: the delegate who asked is told what the organisers decided.
DECIDED = "agenda.decided"

MAX_TITLE = 200
MAX_TEXT = 1500  # a description, an opinion, a recommendation
MAX_REASON = 300
MAX_MINUTES = 480
MAX_DEADLINE_DAYS = 60
OPEN = (AgendaStatus.PENDING.value, AgendaStatus.ACCEPTED.value)


class Decision(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    DEFER = "defer"


def subject(item_id: int | None) -> str:
    return f"agenda:{item_id}"


def deadline(meeting: WorkingSession, group: WorkingGroup) -> datetime:
    """Requests for ``meeting`` are taken until this instant."""
    return meeting.starts_at - timedelta(days=group.request_deadline_days)


# --- reading ---------------------------------------------------------------------------------


async def get(
    session: AsyncSession, item_id: int, *, lock: bool = False
) -> tuple[AgendaItem, WorkingGroup]:
    """The request and its group; ``lock`` holds the request's row until the commit
    (PostgreSQL), so that presses on one request take turns and each sees the last."""
    query = (
        select(AgendaItem, WorkingGroup)
        .join(WorkingGroup, col(WorkingGroup.id) == col(AgendaItem.group_id))
        .where(col(AgendaItem.id) == item_id)
    )
    if lock:
        query = query.with_for_update(of=AgendaItem)
    row = (await session.exec(query)).first()
    if row is None:
        raise errors.UnknownAgendaItem(item=item_id)
    return row[0], row[1]


async def in_group(session: AsyncSession, item_id: int, group: WorkingGroup) -> AgendaItem:
    """Request ``item_id`` of this group: a number from another group's chat is unknown here."""
    item, of = await get(session, item_id)
    if of.id != group.id:
        raise errors.UnknownAgendaItem(item=item_id)
    return item


async def _upcoming(session: AsyncSession, group_id: int, now: datetime) -> list[WorkingSession]:
    rows = await session.exec(
        select(WorkingSession)
        .where(
            WorkingSession.group_id == group_id,
            WorkingSession.status == SessionStatus.SCHEDULED.value,
            col(WorkingSession.starts_at) > now,
        )
        .order_by(col(WorkingSession.starts_at), col(WorkingSession.id))
    )
    return list(rows.all())


@dataclass(frozen=True)
class Target:
    """Where a request made now goes: the first session still taking requests (None while
    there is none), and whether the session that is next had already stopped taking them."""

    meeting: WorkingSession | None
    late: bool
    missed: WorkingSession | None = None  # the next session, when its deadline has passed


async def target(session: AsyncSession, group: WorkingGroup, *, now: datetime) -> Target:
    upcoming = await _upcoming(session, group.id or 0, now)
    taking = [meeting for meeting in upcoming if deadline(meeting, group) > now]
    if upcoming and deadline(upcoming[0], group) <= now:
        return Target(taking[0] if taking else None, True, upcoming[0])
    return Target(taking[0] if taking else None, False)


async def on_agenda(session: AsyncSession, session_id: int) -> list[tuple[AgendaItem, str]]:
    """A session's accepted items in their order (unordered ones last, first asked first)."""
    rows = await session.exec(
        select(AgendaItem, City.name)
        .join(City, col(City.id) == col(AgendaItem.city_id))
        .where(
            AgendaItem.session_id == session_id,
            AgendaItem.status == AgendaStatus.ACCEPTED.value,
        )
        .order_by(
            col(AgendaItem.position).is_(None),
            col(AgendaItem.position),
            col(AgendaItem.id),
        )
    )
    return [(item, city) for item, city in rows.all()]


def agenda_facts(found: Sequence[tuple[AgendaItem, str]]) -> list[dict[str, Any]]:
    """The accepted items as JSON-able facts, for the messages that show an agenda."""
    return [
        {
            "item": item.id,
            "title": item.title,
            "minutes": item.minutes,
            "city": city,
            "outcome": item.outcome,
            "recommendation": item.recommendation,
        }
        for item, city in found
    ]


@dataclass
class Entry:
    """A request as people see it: the item, who asked, who supports it, who gave an opinion."""

    item: AgendaItem
    city: str
    supporters: list[str] = field(default_factory=list)
    opinions: list[tuple[str, str]] = field(default_factory=list)  # (city, text)


async def entries(session: AsyncSession, items: Sequence[AgendaItem]) -> list[Entry]:
    """The items with their cities, supporters and opinions (three statements in all)."""
    ids = [item.id for item in items]
    if not ids:
        return []
    cities = {
        city.id: city.name
        for city in (
            await session.exec(select(City).where(col(City.id).in_({i.city_id for i in items})))
        ).all()
    }
    found = {item.id: Entry(item, cities.get(item.city_id, "")) for item in items}
    supports = await session.exec(
        select(AgendaSupport.item_id, City.name)
        .join(City, col(City.id) == col(AgendaSupport.city_id))
        .where(col(AgendaSupport.item_id).in_(ids))
        .order_by(col(AgendaSupport.at), col(City.search_key))
    )
    for item_id, name in supports.all():
        found[item_id].supporters.append(name)
    opinions = await session.exec(
        select(AgendaOpinion.item_id, City.name, AgendaOpinion.text)
        .join(City, col(City.id) == col(AgendaOpinion.city_id))
        .where(col(AgendaOpinion.item_id).in_(ids))
        .order_by(col(AgendaOpinion.at), col(City.search_key))
    )
    for item_id, name, text in opinions.all():
        found[item_id].opinions.append((name, text))
    return [found[item.id] for item in items]


@dataclass
class View:
    """What /agenda shows: a session's agenda and requests, and the group's other requests."""

    group: WorkingGroup
    meeting: WorkingSession | None
    accepted: list[Entry]
    pending: list[Entry]
    declined: list[Entry]
    waiting: list[Entry]  # open requests for no session yet, a later one, or left undecided


async def view(
    session: AsyncSession, *, group: WorkingGroup, meeting: WorkingSession | None
) -> View:
    rows = await session.exec(
        select(AgendaItem)
        .where(AgendaItem.group_id == group.id)
        .order_by(col(AgendaItem.position).is_(None), col(AgendaItem.position), col(AgendaItem.id))
    )
    items = list(rows.all())
    mine = [i for i in items if meeting is not None and i.session_id == meeting.id]
    others = [
        i
        for i in items
        if i.status == AgendaStatus.PENDING.value
        and (meeting is None or i.session_id != meeting.id)
    ]
    found = {e.item.id: e for e in await entries(session, mine + others)}
    return View(
        group=group,
        meeting=meeting,
        accepted=[found[i.id] for i in mine if i.status == AgendaStatus.ACCEPTED.value],
        pending=[found[i.id] for i in mine if i.status == AgendaStatus.PENDING.value],
        declined=[found[i.id] for i in mine if i.status == AgendaStatus.DECLINED.value],
        waiting=[found[i.id] for i in others],
    )


# --- checks ----------------------------------------------------------------------------------


def require_organiser(actor: Actor, group_id: int) -> None:
    if not (actor.is_organiser(group_id) or actor.is_presidency):
        raise errors.NotAllowed(role="agenda_organiser")


async def _member_city(session: AsyncSession, actor: Actor, group: WorkingGroup) -> City:
    city = actor.approved_city()
    if await session.get(GroupMembership, (group.id, city.id)) is None:
        raise errors.NotInGroup(city=city.name, group=group.name)
    return city


def clean_title(text: str) -> str:
    title = " ".join(text.split())
    if not title or len(title) > MAX_TITLE:
        raise errors.InvalidAgendaTitle(max=MAX_TITLE)
    return title


def clean_text(text: str, *, limit: int = MAX_TEXT) -> str:
    """Several lines kept as lines, each line's spaces tidied; at most ``limit`` characters."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    cleaned = "\n".join(lines).strip()
    if len(cleaned) > limit:
        raise errors.AgendaTextTooLong(max=limit)
    return cleaned


def _not_declined(item: AgendaItem) -> None:
    if item.status == AgendaStatus.DECLINED.value:
        raise errors.AgendaItemDeclined(item=item.id)


# --- asking ----------------------------------------------------------------------------------


async def propose(
    session: AsyncSession,
    *,
    actor: Actor,
    group: WorkingGroup,
    title: str,
    description: str = "",
    now: datetime,
) -> tuple[AgendaItem, Target]:
    """A delegate asks, for their city, for an item on the group's next session's agenda."""
    city = await _member_city(session, actor, group)
    title = clean_title(title)
    description = clean_text(description)
    same = (
        await session.exec(
            select(AgendaItem, City)
            .join(City, col(City.id) == col(AgendaItem.city_id))
            .where(
                AgendaItem.group_id == group.id,
                col(AgendaItem.status).in_(OPEN),
                col(AgendaItem.outcome).is_(None),
            )
        )
    ).all()
    for item, by in same:
        if item.title.casefold() == title.casefold():
            raise errors.DuplicateAgendaRequest(item=item.id, city=by.name)
    goes_to = await target(session, group, now=now)
    item = AgendaItem(
        group_id=group.id or 0,
        session_id=goes_to.meeting.id if goes_to.meeting else None,
        city_id=city.id or 0,
        user_id=actor.user_id,
        title=title,
        description=description,
        late=goes_to.late,
        requested_at=now,
        updated_at=now,
    )
    session.add(item)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="agenda.propose",
        subject=subject(item.id),
        group=group.slug,
        city=city.name,
        title=title,
        meeting=item.session_id,
        late=goes_to.late,
    )
    return item, goes_to


async def attach(session: AsyncSession, *, item_id: int, chat_id: int, message_id: int) -> None:
    """The request's card was sent: it is redrawn there when the request changes."""
    await session.exec(
        update(AgendaItem)
        .where(col(AgendaItem.id) == item_id)
        .values(chat_id=chat_id, message_id=message_id)
    )


async def forget_card(session: AsyncSession, *, item_id: int, message_id: int) -> None:
    """The card was deleted in the chat: the request has none to redraw any more."""
    await session.exec(
        update(AgendaItem)
        .where(col(AgendaItem.id) == item_id, col(AgendaItem.message_id) == message_id)
        .values(chat_id=None, message_id=None)
    )


# --- deciding --------------------------------------------------------------------------------


async def _change(
    session: AsyncSession, item: AgendaItem, *, statuses: Sequence[str], **values: Any
) -> None:
    """Apply ``values`` if the request still stands as read (status, session, deferrals):
    of two organisers pressing at once, the second finds it changed and is told so."""
    done = await session.exec(
        update(AgendaItem)
        .where(
            col(AgendaItem.id) == item.id,
            col(AgendaItem.status).in_(list(statuses)),
            col(AgendaItem.status) == item.status,
            col(AgendaItem.deferrals) == item.deferrals,
            col(AgendaItem.outcome).is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise errors.AgendaItemDecided(item=item.id)
    await session.refresh(item)


async def _session_of(session: AsyncSession, item: AgendaItem) -> WorkingSession | None:
    return await session.get(WorkingSession, item.session_id) if item.session_id else None


async def decide(
    session: AsyncSession,
    *,
    actor: Actor,
    item_id: int,
    decision: Decision,
    now: datetime,
    reason: str = "",
) -> AgendaItem:
    """Accept, decline (with a reason) or defer a request; its city's delegate is told."""
    item, group = await get(session, item_id, lock=True)
    require_organiser(actor, group.id or 0)
    meeting = await _session_of(session, item)
    if decision is Decision.ACCEPT:
        if item.status != AgendaStatus.PENDING.value:
            raise errors.AgendaItemDecided(item=item_id)
        if (
            meeting is None
            or meeting.status != SessionStatus.SCHEDULED.value
            or (meeting.ends_at <= now)
        ):
            # Left undecided past its session, or asked while none was planned: it goes on
            # the agenda of the next session there is (organisers may, past the deadline).
            upcoming = await _upcoming(session, group.id or 0, now)
            meeting = upcoming[0] if upcoming else None
        last = (
            await session.exec(
                select(func.max(AgendaItem.position)).where(
                    AgendaItem.session_id == (meeting.id if meeting else None),
                    AgendaItem.group_id == group.id,
                    AgendaItem.status == AgendaStatus.ACCEPTED.value,
                )
            )
        ).one()
        await _change(
            session,
            item,
            statuses=[AgendaStatus.PENDING.value],
            status=AgendaStatus.ACCEPTED.value,
            session_id=meeting.id if meeting else None,
            position=(last or 0) + 1,
            decided_by=actor.user_id,
            decided_at=now,
            updated_at=now,
        )
    elif decision is Decision.DECLINE:
        reason = clean_text(reason, limit=MAX_REASON)
        if not reason:
            raise ValueError("declining needs a reason")
        _not_declined(item)
        await _change(
            session,
            item,
            statuses=OPEN,
            status=AgendaStatus.DECLINED.value,
            reason=reason,
            position=None,
            decided_by=actor.user_id,
            decided_at=now,
            updated_at=now,
        )
    else:
        _not_declined(item)
        if item.outcome is not None:
            raise errors.OutcomeRecorded(item=item_id)
        after = meeting.starts_at if meeting is not None else now
        following = [m for m in await _upcoming(session, group.id or 0, now) if m.starts_at > after]
        await _change(
            session,
            item,
            statuses=OPEN,
            status=AgendaStatus.PENDING.value,
            session_id=following[0].id if following else None,
            position=None,
            deferrals=item.deferrals + 1,
            decided_by=actor.user_id,
            decided_at=now,
            updated_at=now,
        )
    audit.record(
        session,
        actor_id=actor.user_id,
        action=f"agenda.{decision.value}",
        subject=subject(item_id),
        group=group.slug,
        meeting=item.session_id,
        **({"reason": item.reason} if decision is Decision.DECLINE else {}),
    )
    await outbox.enqueue(
        session,
        chat_id=item.user_id,
        kind=DECIDED,
        params={
            "item": item_id,
            "title": item.title,
            "group": group.name,
            "slug": group.slug,
            "decision": decision.value,
            "reason": item.reason,
            "session": item.session_id,
        },
        dedupe_key=f"{DECIDED}:{item_id}:{decision.value}:{item.deferrals}",
    )
    return item


# --- other cities' voices --------------------------------------------------------------------


async def support(
    session: AsyncSession, *, actor: Actor, item_id: int, now: datetime
) -> tuple[AgendaItem, City, bool]:
    """A member city supports a request, or withdraws its support (a second press).
    Returns whether the city supports it now. Presses on one request take turns, so
    the presses of a city's delegates alternate its support, each seeing the last."""
    item, group = await get(session, item_id, lock=True)
    city = await _member_city(session, actor, group)
    _not_declined(item)
    if item.city_id == city.id:
        raise errors.OwnAgendaItem(item=item_id, city=city.name)
    added = await session.exec(
        insert_for(session)(AgendaSupport)
        .values(item_id=item_id, city_id=city.id, user_id=actor.user_id, at=now)
        .on_conflict_do_nothing(index_elements=["item_id", "city_id"])
    )
    supports = added.rowcount == 1
    if not supports:
        await session.exec(
            delete(AgendaSupport).where(
                col(AgendaSupport.item_id) == item_id, col(AgendaSupport.city_id) == city.id
            )
        )
    audit.record(
        session,
        actor_id=actor.user_id,
        action="agenda.support" if supports else "agenda.unsupport",
        subject=subject(item_id),
        group=group.slug,
        city=city.name,
    )
    return item, city, supports


async def opine(
    session: AsyncSession, *, actor: Actor, item_id: int, text: str, now: datetime
) -> tuple[AgendaItem, City]:
    """A member city's opinion on an item; a later one from the same city replaces it."""
    item, group = await get(session, item_id)
    city = await _member_city(session, actor, group)
    _not_declined(item)
    text = clean_text(text)
    if not text:
        raise ValueError("an opinion needs words")
    values = {"item_id": item_id, "city_id": city.id, "user_id": actor.user_id, "text": text}
    await session.exec(
        insert_for(session)(AgendaOpinion)
        .values(**values, at=now)
        .on_conflict_do_update(
            index_elements=["item_id", "city_id"],
            set_={"user_id": actor.user_id, "text": text, "at": now},
        )
    )
    audit.record(
        session,
        actor_id=actor.user_id,
        action="agenda.opinion",
        subject=subject(item_id),
        group=group.slug,
        city=city.name,
        text=text,
    )
    return item, city


# --- shaping the agenda ----------------------------------------------------------------------


async def order(
    session: AsyncSession,
    *,
    actor: Actor,
    group: WorkingGroup,
    meeting: WorkingSession,
    first: Sequence[int],
    now: datetime,
) -> list[tuple[AgendaItem, str]]:
    """Put these accepted items first, in this order; the others follow as they were."""
    require_organiser(actor, group.id or 0)
    current = await on_agenda(session, meeting.id or 0)
    by_id = {item.id: item for item, _city in current}
    for item_id in first:
        if item_id not in by_id:
            raise errors.NotOnAgenda(item=item_id)
    rest = [item.id or 0 for item, _city in current if item.id not in first]
    for position, item_id in enumerate([*first, *rest], start=1):
        await session.exec(
            update(AgendaItem)
            .where(col(AgendaItem.id) == item_id)
            .values(position=position, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        by_id[item_id].position = position
    audit.record(
        session,
        actor_id=actor.user_id,
        action="agenda.order",
        subject=group.slug,
        meeting=meeting.id,
        order=[*first, *rest],
    )
    return sorted(current, key=lambda pair: pair[0].position or 0)


async def _accepted(
    session: AsyncSession, actor: Actor, group: WorkingGroup, item_id: int
) -> AgendaItem:
    """An organiser's hold on an accepted item of this group (timing it, its outcome)."""
    item = await in_group(session, item_id, group)
    require_organiser(actor, group.id or 0)
    if item.status != AgendaStatus.ACCEPTED.value:
        raise errors.NotOnAgenda(item=item_id)
    return item


async def set_minutes(
    session: AsyncSession,
    *,
    actor: Actor,
    group: WorkingGroup,
    item_id: int,
    minutes: int,
    now: datetime,
) -> AgendaItem:
    """The time an accepted item gets; 0 takes it away."""
    item = await _accepted(session, actor, group, item_id)
    if not 0 <= minutes <= MAX_MINUTES:
        raise errors.InvalidAgendaMinutes(max=MAX_MINUTES)
    item.minutes = minutes or None
    item.updated_at = now
    session.add(item)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="agenda.minutes",
        subject=subject(item_id),
        group=group.slug,
        minutes=item.minutes,
    )
    return item


async def set_deadline(
    session: AsyncSession, *, actor: Actor, group: WorkingGroup, days: int
) -> WorkingGroup:
    require_organiser(actor, group.id or 0)
    if not 0 <= days <= MAX_DEADLINE_DAYS:
        raise errors.InvalidRequestDeadline(max=MAX_DEADLINE_DAYS)
    was = group.request_deadline_days
    group.request_deadline_days = days
    session.add(group)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="agenda.deadline",
        subject=group.slug,
        was=was,
        days=days,
    )
    return group


async def record_outcome(
    session: AsyncSession,
    *,
    actor: Actor,
    group: WorkingGroup,
    item_id: int,
    outcome: AgendaOutcome,
    recommendation: str = "",
    now: datetime,
) -> AgendaItem:
    """After its session has begun, what became of an accepted item; a later record of the
    same item corrects the earlier one (both are in the audit log)."""
    item = await _accepted(session, actor, group, item_id)
    meeting = await _session_of(session, item)
    if meeting is None or meeting.starts_at > now:
        raise errors.OutcomeTooEarly(item=item_id, session=item.session_id or 0)
    recommendation = clean_text(recommendation)
    if outcome is AgendaOutcome.RECOMMENDATION and not recommendation:
        raise ValueError("a recommendation needs words")
    item.outcome = outcome.value
    item.recommendation = recommendation if outcome is AgendaOutcome.RECOMMENDATION else ""
    item.outcome_by = actor.user_id
    item.outcome_at = now
    item.updated_at = now
    session.add(item)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="agenda.outcome",
        subject=subject(item_id),
        group=group.slug,
        meeting=meeting.id,
        outcome=outcome.value,
        recommendation=item.recommendation,
    )
    return item


# --- when sessions change --------------------------------------------------------------------


async def gather_waiting(session: AsyncSession, group: WorkingGroup, *, now: datetime) -> None:
    """Requests without a session go to the first one that takes requests, if there is one
    (called when a session is fixed or cancelled)."""
    goes_to = await target(session, group, now=now)
    if goes_to.meeting is None:
        return
    waiting = (
        await session.exec(
            select(AgendaItem.id).where(
                AgendaItem.group_id == group.id,
                col(AgendaItem.session_id).is_(None),
                col(AgendaItem.status).in_(OPEN),
                col(AgendaItem.outcome).is_(None),
            )
        )
    ).all()
    if not waiting:
        return
    await session.exec(
        update(AgendaItem)
        .where(col(AgendaItem.id).in_(list(waiting)))
        .values(session_id=goes_to.meeting.id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor_id=None,
        action="agenda.gather",
        subject=group.slug,
        meeting=goes_to.meeting.id,
        items=sorted(i for i in waiting if i is not None),
    )


async def release(
    session: AsyncSession, meeting: WorkingSession, group: WorkingGroup, *, now: datetime
) -> None:
    """A cancelled session's requests and accepted items wait for the next session (and go
    to it at once when one takes requests); accepted ones stay accepted."""
    await session.exec(
        update(AgendaItem)
        .where(
            col(AgendaItem.session_id) == meeting.id,
            col(AgendaItem.status).in_(OPEN),
            col(AgendaItem.outcome).is_(None),
        )
        .values(session_id=None, position=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await gather_waiting(session, group, now=now)
