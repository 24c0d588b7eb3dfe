"""Extra sessions on request: a third of the group's cities asking (in the last 90 days,
since planning last opened this way) opens planning; each step is in the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, groups, plans, polls, roster
from storage.db import Database
from storage.models import (
    Delegate,
    DelegateStatus,
    GroupMembership,
    Poll,
    SessionRequest,
    WorkingGroup,
)
from storage.roles import Actor

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
TODAY = date(2026, 1, 15)
ZONE = "Europe/Istanbul"
# Six member cities: two must ask (a third), in three zones.
MEMBERS = ("Sofia", "Athens", "İstanbul", "Belgrade", "Sarajevo", "Varna")


async def _group(session: AsyncSession, slug: str, cities: tuple[str, ...]) -> WorkingGroup:
    group = await groups.get_group(session, slug)
    for name in cities:
        city = await roster.find_city(session, name)
        session.add(GroupMembership(group_id=group.id or 0, city_id=city.id or 0))
    await session.flush()
    return group


async def _delegate(session: AsyncSession, name: str, user_id: int) -> Actor:
    """An approved delegate as the rules see one (the claim itself is not stored)."""
    city = await roster.find_city(session, name)
    claim = Delegate(user_id=user_id, city_id=city.id or 0, status=DelegateStatus.APPROVED.value)
    return Actor(user_id=user_id, delegate=claim, city=city)


async def _ask(
    session: AsyncSession,
    actor: Actor,
    group: WorkingGroup,
    *,
    now: datetime = NOW,
    reason: str = "",
) -> plans.RequestOutcome:
    return await plans.request_session(
        session,
        actor=actor,
        group=group,
        reason=reason,
        now=now,
        today=now.date(),
        reference_zone=ZONE,
    )


async def test_a_third_of_the_cities_asking_opens_planning(seeded: Database) -> None:
    async with seeded.transaction() as session:
        group = await _group(session, "climate", MEMBERS)
        sofia, athens = (
            await _delegate(session, "Sofia", 11),
            await _delegate(session, "Athens", 12),
        )
        first = await _ask(session, sofia, group, reason="  Floods\nin   spring ")
        assert (first.asked, first.needed, first.poll) == (["Sofia"], 2, None)
        second = await _ask(session, athens, group, now=NOW + timedelta(hours=1))
        assert second.asked == ["Athens", "Sofia"] and second.needed == 2
        assert second.poll is not None and second.poll.purpose == plans.REQUEST
        assert second.poll.group_id == group.id
        stored = (await session.exec(select(SessionRequest).order_by(col(SessionRequest.id)))).all()
        # Both requests now belong to the poll they opened, so they are not counted again.
        assert [r.poll_id for r in stored] == [second.poll.id, second.poll.id]
        assert [(r.user_id, r.reason) for r in stored] == [(11, "Floods in spring"), (12, "")]
        assert [r.requested_at for r in stored] == [NOW, NOW + timedelta(hours=1)]
        entries = await audit.entries(session, action="session.request")
        assert [(e.actor_id, e.subject, e.details) for e in entries] == [
            (11, "climate", {"city": "Sofia", "reason": "Floods in spring"}),
            (12, "climate", {"city": "Athens", "reason": ""}),
        ]
        # After planning opened, asking starts again from nothing.
        third = await _ask(session, sofia, group, now=NOW + timedelta(days=1))
        assert (third.asked, third.poll) == (["Sofia"], None)


async def test_one_city_in_a_group_of_one_is_enough(seeded: Database) -> None:
    async with seeded.transaction() as session:
        group = await _group(session, "economy", ("Varna",))
        outcome = await _ask(session, await _delegate(session, "Varna", 21), group)
        assert outcome.needed == 1 and outcome.poll is not None


async def test_requests_count_for_90_days_and_only_in_their_group(seeded: Database) -> None:
    async with seeded.transaction() as session:
        climate = await _group(session, "climate", MEMBERS)
        economy = await _group(session, "economy", MEMBERS)
        sofia, athens = (
            await _delegate(session, "Sofia", 11),
            await _delegate(session, "Athens", 12),
        )
        belgrade = await _delegate(session, "Belgrade", 13)
        await _ask(session, sofia, climate)
        # Athens asks in another group: Sofia's request does not count there.
        other = await _ask(session, athens, economy)
        assert other.asked == ["Athens"] and other.poll is None
        # Exactly 90 days later Sofia's request no longer counts; a second earlier, it does.
        late = await _ask(session, belgrade, climate, now=NOW + plans.REQUEST_MAX_AGE)
        assert late.asked == ["Belgrade"] and late.poll is None
        just_in_time = await _ask(
            session, athens, climate, now=NOW + plans.REQUEST_MAX_AGE - timedelta(seconds=1)
        )
        assert just_in_time.asked == ["Athens", "Belgrade", "Sofia"]
        assert just_in_time.poll is not None


async def test_bad_requests_say_why_and_store_nothing(seeded: Database) -> None:
    async with seeded.transaction() as session:
        group = await _group(session, "climate", MEMBERS)
        sofia = await _delegate(session, "Sofia", 11)
        outsider = await _delegate(session, "Tirana", 14)
        with pytest.raises(errors.NotInGroup) as not_member:
            await _ask(session, outsider, group)
        assert not_member.value.params == {"city": "Tirana", "group": group.name}
        with pytest.raises(errors.InvalidRequestReason) as too_long:
            await _ask(session, sofia, group, reason="x" * (plans.MAX_REASON + 1))
        assert too_long.value.params == {"max": plans.MAX_REASON}
        # Exactly the limit is accepted; asking again while it waits is refused.
        await _ask(session, sofia, group, reason="x" * plans.MAX_REASON)
        with pytest.raises(errors.AlreadyRequested) as again:
            await _ask(session, sofia, group)
        assert again.value.params == {"city": "Sofia"}
        assert len((await session.exec(select(SessionRequest))).all()) == 1
        assert (await session.exec(select(Poll))).all() == []


async def test_quarterly_planning_opens_once_for_each_group_that_is_due(seeded: Database) -> None:
    """Climate has no chat and economy no member city: neither keeps smart-cities, due
    too, from opening its planning, once, told to its chat."""
    from storage.models import Chat, OutboxMessage

    today = date(2026, 3, 10)  # Q2 starts on 1 April; four weeks before is 4 March
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    async with seeded.transaction() as session:
        await _group(session, "climate", ("Sofia", "Athens"))
        economy = await groups.get_group(session, "economy")
        smart = await _group(session, "smart-cities", ("Sofia", "Athens", "İstanbul"))
        for chat_id, group in ((-1001, economy), (-1002, smart)):
            session.add(Chat(chat_id=chat_id, type="supergroup", title="c", group_id=group.id))
        await session.flush()
        # The day before the cadence allows, nothing opens.
        early = await plans.open_due_quarters(
            session, now=now - timedelta(days=7), today=date(2026, 3, 3), reference_zone=ZONE
        )
        assert early == []
        opened = await plans.open_due_quarters(session, now=now, today=today, reference_zone=ZONE)
        assert [(p.group_id, p.purpose) for p in opened] == [(smart.id, "2026Q2")]
        told = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.kind == plans.OPENED))
        ).all()
        assert [(m.chat_id, m.dedupe_key) for m in told] == [
            (-1002, f"{plans.OPENED}:{opened[0].id}:-1002")
        ]
        [opened_on_record] = await audit.entries(session, action="plan.open")
        options = await polls.options(session, opened[0].id or 0)
        assert (opened_on_record.actor_id, opened_on_record.subject) == (None, "smart-cities")
        assert opened_on_record.details == {
            "poll": opened[0].id,
            "options": [o.starts_at.isoformat() for o in options if o.starts_at is not None],
        }
        assert len(options) >= 1
        # Once: the next sweep finds the quarter handled.
        again = await plans.open_due_quarters(session, now=now, today=today, reference_zone=ZONE)
        assert again == []
