"""Working groups: their member cities, linked chats, coordinators and creation."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, chats, delegates, errors, outbox, presidency, secretariat
from storage.db import insert_new
from storage.models import (
    Chat,
    City,
    Coordinator,
    Delegate,
    DelegateStatus,
    GroupMembership,
    GroupStatus,
    User,
    WorkingGroup,
)
from storage.roles import Actor
from storage.types import utcnow

# Outbox kinds this module writes (rendered by handlers.groups).
COORDINATOR_APPOINTED = "group.coordinator"
PROPOSED = "group.proposed"

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,38}[a-z0-9]")
MAX_GROUP_NAME = 120


@dataclass(frozen=True)
class GroupOverview:
    group: WorkingGroup
    cities: list[City]
    chats: list[Chat]


def group_facts(group: WorkingGroup) -> dict[str, object]:
    return {"group_id": group.id, "slug": group.slug, "name": group.name}


async def get_group(session: AsyncSession, slug: str) -> WorkingGroup:
    group = (
        await session.exec(select(WorkingGroup).where(WorkingGroup.slug == slug.strip().lower()))
    ).first()
    if group is None or group.status != GroupStatus.ACTIVE:
        raise errors.UnknownGroup(slug=slug.strip()[:40])
    return group


async def active(session: AsyncSession) -> list[WorkingGroup]:
    """The working groups at work, oldest first."""
    rows = await session.exec(
        select(WorkingGroup)
        .where(WorkingGroup.status == GroupStatus.ACTIVE)
        .order_by(col(WorkingGroup.id))
    )
    return list(rows.all())


async def overview(session: AsyncSession) -> list[GroupOverview]:
    groups = await active(session)
    members = await session.exec(
        select(GroupMembership.group_id, City)
        .join(City, col(City.id) == col(GroupMembership.city_id))
        .order_by(col(City.country_code), col(City.search_key))
    )
    cities: dict[int, list[City]] = {}
    for group_id, city in members.all():
        cities.setdefault(group_id, []).append(city)
    linked: dict[int, list[Chat]] = {}
    for chat in (
        await session.exec(select(Chat).where(col(Chat.group_id).is_not(None), Chat.bot_is_member))
    ).all():
        linked.setdefault(chat.group_id or 0, []).append(chat)
    return [GroupOverview(g, cities.get(g.id or 0, []), linked.get(g.id or 0, [])) for g in groups]


async def link_chat(
    session: AsyncSession, *, actor: Actor, chat_id: int, chat_type: str, title: str, slug: str
) -> WorkingGroup:
    actor.require_secretariat()
    group = await get_group(session, slug)
    await chats.upsert_chat(
        session,
        chat_id=chat_id,
        chat_type=chat_type,
        title=title,
        group_id=group.id,
        linked_by=actor.user_id,
        bot_is_member=True,
    )
    audit.record(
        session, actor_id=actor.user_id, action="group.link", subject=group.slug, chat=chat_id
    )
    return group


async def join(
    session: AsyncSession, *, actor: Actor, group: WorkingGroup, now: datetime | None = None
) -> City:
    """The actor's city joins the group, from ``now`` (the bot's clock; the annual report
    counts a city at the sessions held while it was a member)."""
    city = actor.approved_city()
    joined_at = now or utcnow()
    if not await insert_new(
        session, GroupMembership, group_id=group.id, city_id=city.id, joined_at=joined_at
    ):
        raise errors.AlreadyInGroup(city=city.name, group=group.name)
    audit.record(
        session, actor_id=actor.user_id, action="group.join", subject=group.slug, city=city.name
    )
    return city


async def leave(session: AsyncSession, *, actor: Actor, group: WorkingGroup) -> City:
    city = actor.approved_city()
    removed = await session.exec(
        delete(GroupMembership).where(
            col(GroupMembership.group_id) == group.id, col(GroupMembership.city_id) == city.id
        )
    )
    if removed.rowcount != 1:
        raise errors.NotInGroup(city=city.name, group=group.name)
    audit.record(
        session, actor_id=actor.user_id, action="group.leave", subject=group.slug, city=city.name
    )
    return city


@dataclass(frozen=True)
class RosterEntry:
    """A member city of a group, with its approved delegates (coordinators marked)."""

    city: City
    delegates: list[tuple[Delegate, User | None, bool]]


async def roster(session: AsyncSession, group: WorkingGroup) -> list[RosterEntry]:
    """The group's roster in one query: cities, approved delegates, names, coordinators."""
    rows = await session.exec(
        select(City, Delegate, User, Coordinator.user_id)
        .join(GroupMembership, col(GroupMembership.city_id) == col(City.id))
        .join(
            Delegate,
            (col(Delegate.city_id) == col(City.id))
            & (col(Delegate.status) == DelegateStatus.APPROVED),
            isouter=True,
        )
        .join(User, col(User.telegram_id) == col(Delegate.user_id), isouter=True)
        .join(
            Coordinator,
            (col(Coordinator.user_id) == col(Delegate.user_id))
            & (col(Coordinator.group_id) == group.id),
            isouter=True,
        )
        .where(GroupMembership.group_id == group.id)
        .order_by(
            col(City.country_code), col(City.search_key), col(Delegate.role), col(Delegate.id)
        )
    )
    entries: dict[int, RosterEntry] = {}
    for city, delegate, user, coordinator_id in rows.all():
        entry = entries.setdefault(city.id or 0, RosterEntry(city, []))
        if delegate is not None:
            entry.delegates.append((delegate, user, coordinator_id is not None))
    return list(entries.values())


async def appoint_coordinator(
    session: AsyncSession, *, actor: Actor, group: WorkingGroup, user_id: int
) -> tuple[Delegate, City]:
    actor.require_secretariat()
    row = (
        await session.exec(
            select(Delegate, City)
            .join(City, col(City.id) == col(Delegate.city_id))
            .where(Delegate.user_id == user_id, Delegate.status == DelegateStatus.APPROVED)
        )
    ).first()
    if row is None:
        raise errors.UnknownDelegate(user_id=user_id)
    if not await insert_new(
        session,
        Coordinator,
        group_id=group.id,
        user_id=user_id,
        appointed_by=actor.user_id,
        appointed_at=utcnow(),
    ):
        raise errors.AlreadyCoordinator(user_id=user_id, group=group.name)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="group.coordinator",
        subject=group.slug,
        user_id=user_id,
    )
    await outbox.enqueue(
        session,
        chat_id=user_id,
        kind=COORDINATOR_APPOINTED,
        params=group_facts(group),
        dedupe_key=f"coordinator:{group.id}:{user_id}",
    )
    return row[0], row[1]


def _side(actor: Actor) -> set[str]:
    sides = set()
    if actor.is_presidency:
        sides.add("presidency")
    if actor.is_secretariat:
        sides.add("secretariat")
    return sides


def clean_group_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_GROUP_NAME or not any(ch.isalpha() for ch in name):
        raise errors.InvalidGroupName(max=MAX_GROUP_NAME)
    return name


async def propose_group(
    session: AsyncSession,
    *,
    actor: Actor,
    slug: str,
    name: str,
    bootstrap: Collection[int],
    today: date,
) -> tuple[WorkingGroup, bool]:
    """Propose a working group, or confirm one the other side proposed.

    Returns the group and whether it is now active. The statutes need the term
    presidency *and* the secretariat: the second must be another person on the
    other side, so nobody creates a group alone.
    """
    sides = _side(actor)
    if not sides:
        raise errors.NotAllowed(role="presidency_or_secretariat")
    slug = slug.strip().lower()
    if not SLUG.fullmatch(slug):
        raise errors.InvalidSlug(slug=slug[:40])
    existing = (await session.exec(select(WorkingGroup).where(WorkingGroup.slug == slug))).first()
    if existing is None:
        group = WorkingGroup(
            slug=slug,
            name=clean_group_name(name),
            status=GroupStatus.PROPOSED,
            proposed_by=actor.user_id,
            proposed_as=sorted(sides)[0],
        )
        session.add(group)
        await session.flush()
        audit.record(
            session, actor_id=actor.user_id, action="group.propose", subject=slug, name=group.name
        )
        await _ask_other_side(session, group, bootstrap=bootstrap, today=today)
        return group, False
    if existing.status != GroupStatus.PROPOSED:
        raise errors.GroupExists(slug=slug)
    return await confirm_group(session, actor=actor, group_id=existing.id or 0), True


async def _ask_other_side(
    session: AsyncSession, group: WorkingGroup, *, bootstrap: Collection[int], today: date
) -> None:
    """The side that did not propose is asked: the secretariat, or the presidency's delegates."""
    if group.proposed_as == "presidency":
        recipients = await secretariat.staff_ids(session, bootstrap=bootstrap)
    else:
        recipients = set()
        current = await presidency.current(session, today=today)
        if current is not None:
            city_id = current[1].id or 0
            people = await delegates.delegates_of(session, [city_id])
            recipients = {delegate.user_id for delegate, _user in people.get(city_id, [])}
    await outbox.enqueue_many(
        session,
        [
            outbox.Entry(
                chat_id=user_id,
                kind=PROPOSED,
                params=group_facts(group),
                dedupe_key=f"proposed:{group.id}:{user_id}",
            )
            for user_id in sorted(recipients - {group.proposed_by or 0})
        ],
    )


async def confirm_group(session: AsyncSession, *, actor: Actor, group_id: int) -> WorkingGroup:
    if not _side(actor):
        raise errors.NotAllowed(role="presidency_or_secretariat")
    group = await session.get(WorkingGroup, group_id)
    if group is None or group.status != GroupStatus.PROPOSED:
        raise errors.NotAProposal()
    other_side = "secretariat" if group.proposed_as == "presidency" else "presidency"
    if actor.user_id == group.proposed_by or other_side not in _side(actor):
        raise errors.GroupAlreadyProposed(slug=group.slug, needs=other_side)
    group.status = GroupStatus.ACTIVE
    group.confirmed_by = actor.user_id
    session.add(group)
    audit.record(session, actor_id=actor.user_id, action="group.create", subject=group.slug)
    return group
