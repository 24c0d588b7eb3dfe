"""Sessions as the rules see them: who may fix them, when, and which reminders are owed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from scheduler.zones import to_utc
from storage import errors, groups, roster, sessions
from storage.db import Database
from storage.models import (
    Chat,
    City,
    Delegate,
    DelegateStatus,
    GroupMembership,
    OutboxMessage,
    WorkingGroup,
    WorkingSession,
)
from storage.roles import Actor
from tests.conftest import seed_cities

SECRETARIAT = Actor(user_id=1, is_secretariat=True)
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)  # a Friday, nine days before the EU switch
CHAT_ID = -1001112223334
URL = "https://meet.example.org/{room}"


async def _climate(session: AsyncSession) -> WorkingGroup:
    group = await groups.get_group(session, "climate")
    session.add(Chat(chat_id=CHAT_ID, type="supergroup", title="B40 Climate", group_id=group.id))
    await session.flush()
    return group


async def _fix(
    session: AsyncSession,
    group: WorkingGroup,
    starts_at: datetime,
    *,
    length: timedelta = timedelta(hours=1),
    title: str = "",
) -> WorkingSession:
    """A session fixed by the secretariat at ``NOW``."""
    return await sessions.schedule(
        session,
        actor=SECRETARIAT,
        group=group,
        starts_at=starts_at,
        length=length,
        title=title,
        meeting_url_template=URL,
        now=NOW,
    )


async def _reminders(session: AsyncSession) -> list[OutboxMessage]:
    rows = await session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.kind == sessions.REMINDER)
        .order_by(col(OutboxMessage.id))
    )
    return list(rows.all())


async def test_a_session_across_the_switch_keeps_its_instant(db: Database) -> None:
    """Fixed in Belgrade's time before the March switch for a date after it: 10:00 in
    Belgrade on 30 March 2026 is 08:00 UTC (UTC+2 by then), not 09:00."""
    async with db.transaction() as session:
        group = await _climate(session)
        starts = to_utc(date(2026, 3, 30), time(10, 0), zone="Europe/Belgrade")
        meeting = await _fix(
            session, group, starts, length=timedelta(minutes=90), title="Heat action plans"
        )
    async with db.transaction() as session:
        stored, _group = await sessions.get(session, meeting.id or 0)
    assert stored.starts_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert stored.ends_at == datetime(2026, 3, 30, 9, 30, tzinfo=UTC)
    assert stored.join_url.startswith("https://meet.example.org/B40-climate-")
    assert len(stored.join_url.rsplit("-", 1)[1]) == 16  # 64 random bits, not guessable


@pytest.mark.parametrize(
    ("start", "minutes", "error"),
    [
        (NOW - timedelta(minutes=1), 60, errors.SessionInPast),
        (NOW, 60, errors.SessionInPast),
        (NOW + timedelta(days=1), 0, errors.InvalidSessionLength),
        (NOW + timedelta(days=1), 14, errors.InvalidSessionLength),
        (NOW + timedelta(days=1), 8 * 60 + 1, errors.InvalidSessionLength),
    ],
)
async def test_impossible_sessions_are_refused(
    db: Database, start: datetime, minutes: int, error: type[Exception]
) -> None:
    async with db.transaction() as session:
        group = await _climate(session)
        with pytest.raises(error):
            await _fix(session, group, start, length=timedelta(minutes=minutes))


async def test_only_organisers_fix_move_and_cancel(db: Database) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        group = await _climate(session)
        sofia = await roster.find_city(session, "Sofia")
        delegate = Actor(user_id=5, city=sofia)
        coordinator = Actor(user_id=6, coordinates=frozenset({group.id or 0}))
        other_coordinator = Actor(user_id=7, coordinates=frozenset({(group.id or 0) + 1}))
        president = Actor(user_id=8, is_presidency=True)
        kwargs = {
            "group": group,
            "starts_at": NOW + timedelta(days=3),
            "length": timedelta(hours=1),
            "title": "",
            "meeting_url_template": URL,
            "now": NOW,
        }
        for stranger in (delegate, other_coordinator):
            with pytest.raises(errors.NotAllowed):
                await sessions.schedule(session, actor=stranger, **kwargs)  # type: ignore[arg-type]
        for organiser in (coordinator, president, SECRETARIAT):
            await sessions.schedule(session, actor=organiser, **kwargs)  # type: ignore[arg-type]
        first = (await sessions.upcoming(session, group_ids=[group.id or 0], now=NOW))[0][0]
        with pytest.raises(errors.NotAllowed):
            await sessions.cancel(session, actor=delegate, session_id=first.id or 0, now=NOW)


async def test_reminders_are_owed_once_and_follow_a_move(db: Database) -> None:
    async with db.transaction() as session:
        group = await _climate(session)
        meeting = await _fix(session, group, NOW + timedelta(days=10), title="Quarterly session")
    seven_days_before = meeting.starts_at - timedelta(days=7)
    async with db.transaction() as session:
        assert (
            await sessions.enqueue_due_reminders(
                session, now=seven_days_before - timedelta(seconds=1)
            )
            == 0
        )
        assert await sessions.enqueue_due_reminders(session, now=seven_days_before) == 1
        # The sweep runs again (or after a restart): nothing is owed twice.
        assert (
            await sessions.enqueue_due_reminders(
                session, now=seven_days_before + timedelta(minutes=5)
            )
            == 0
        )
        [reminder] = await _reminders(session)
    assert reminder.chat_id == CHAT_ID and reminder.params["before_minutes"] == 7 * 24 * 60
    # Moved two days later, the day before the seven-day mark: the old reminders are done
    # with, and the new time's reminders are owed from now on.
    moved_at = seven_days_before + timedelta(hours=1)
    async with db.transaction() as session:
        await sessions.move(
            session,
            actor=SECRETARIAT,
            session_id=meeting.id or 0,
            starts_at=meeting.starts_at + timedelta(days=2),
            now=moved_at,
        )
        new_start = meeting.starts_at + timedelta(days=2)
        # Its seven-day mark (one day after the move) is owed then, not now.
        assert await sessions.enqueue_due_reminders(session, now=moved_at) == 0
        assert await sessions.enqueue_due_reminders(session, now=new_start - timedelta(days=7)) == 1
        assert await sessions.enqueue_due_reminders(session, now=new_start - timedelta(days=1)) == 1
        assert (
            await sessions.enqueue_due_reminders(session, now=new_start - timedelta(hours=1)) == 1
        )
        kinds = [
            (r.params["sequence"], r.params["before_minutes"], r.failed_at is None)
            for r in await _reminders(session)
        ]
    # The first version's reminder is withdrawn; the new version owes all three.
    assert kinds == [(0, 10080, False), (1, 10080, True), (1, 1440, True), (1, 60, True)]


async def test_a_reminder_missed_while_down_is_sent_late_but_not_after_the_start(
    db: Database,
) -> None:
    async with db.transaction() as session:
        group = await _climate(session)
        meeting = await _fix(session, group, NOW + timedelta(hours=30))
    async with db.transaction() as session:
        # Down from before the one-day mark until 20 minutes before the start: the one-hour
        # reminder is sent late; the one-day reminder, superseded by it, is not sent at all.
        late = meeting.starts_at - timedelta(minutes=20)
        assert await sessions.enqueue_due_reminders(session, now=late) == 1
        [reminder] = await _reminders(session)
        assert reminder.params["before_minutes"] == 60 and reminder.failed_at is None
        # A session that has started owes nothing: what it was owed is recorded as dropped.
    async with db.transaction() as session:
        other = await _fix(session, group, NOW + timedelta(hours=2))
        started = other.starts_at + timedelta(minutes=1)
        assert await sessions.enqueue_due_reminders(session, now=started) == 0
        assert await sessions.enqueue_due_reminders(session, now=started) == 0
        dropped = [r for r in await _reminders(session) if r.params["session"] == other.id]
    assert [(r.params["before_minutes"], r.failed_at, r.sent_at) for r in dropped] == [
        (60, started, None)
    ]
    assert dropped[0].error == "dropped: the session had started"


async def test_cancelling_withdraws_waiting_reminders_and_tells_the_group(db: Database) -> None:
    async with db.transaction() as session:
        group = await _climate(session)
        meeting = await sessions.schedule(
            session,
            actor=SECRETARIAT,
            group=group,
            starts_at=NOW + timedelta(hours=3),
            length=timedelta(hours=1),
            title="",
            meeting_url_template=URL,
            now=NOW,
            origin_chat=CHAT_ID,
        )
        assert (
            await sessions.enqueue_due_reminders(
                session, now=meeting.starts_at - timedelta(hours=1)
            )
            == 1
        )
        await sessions.cancel(
            session, actor=SECRETARIAT, session_id=meeting.id or 0, now=NOW + timedelta(hours=2)
        )
        with pytest.raises(errors.SessionCancelled):
            await sessions.cancel(
                session, actor=SECRETARIAT, session_id=meeting.id or 0, now=NOW + timedelta(hours=2)
            )
        with pytest.raises(errors.SessionCancelled):
            await sessions.move(
                session,
                actor=SECRETARIAT,
                session_id=meeting.id or 0,
                starts_at=NOW + timedelta(days=1),
                now=NOW + timedelta(hours=2),
            )
        [reminder] = await _reminders(session)
        told = [
            m.kind
            for m in (await session.exec(select(OutboxMessage))).all()
            if m.kind != sessions.REMINDER
        ]
    assert reminder.failed_at is not None and "withdrawn" in (reminder.error or "")
    # Scheduled from the group's chat: no notice there (the reply says it); cancelled: told.
    assert told == [sessions.CANCELLED]
    async with db.transaction() as session:
        assert await sessions.next_session(session, group_ids=[group.id or 0], now=NOW) is None


async def test_rsvps_count_the_last_answer_and_only_member_cities(db: Database) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        group = await _climate(session)
        sofia = await roster.find_city(session, "Sofia")
        zagreb = await roster.find_city(session, "Zagreb")
        session.add(GroupMembership(group_id=group.id or 0, city_id=sofia.id or 0))
        await session.flush()
        meeting = await _fix(session, group, NOW + timedelta(days=2))
        ivan = Actor(user_id=21, delegate=_approved(21, sofia), city=sofia)
        iva = Actor(user_id=22, delegate=_approved(22, sofia), city=sofia)
        marija = Actor(user_id=23, delegate=_approved(23, zagreb), city=zagreb)
        await sessions.answer(
            session, actor=ivan, session_id=meeting.id or 0, reply=sessions.Answer.NO, now=NOW
        )
        await sessions.answer(
            session, actor=ivan, session_id=meeting.id or 0, reply=sessions.Answer.YES, now=NOW
        )
        await sessions.answer(
            session, actor=iva, session_id=meeting.id or 0, reply=sessions.Answer.MAYBE, now=NOW
        )
        with pytest.raises(errors.NotInGroup):
            await sessions.answer(
                session,
                actor=marija,
                session_id=meeting.id or 0,
                reply=sessions.Answer.YES,
                now=NOW,
            )
        with pytest.raises(errors.NotADelegate):
            await sessions.answer(
                session,
                actor=Actor(user_id=24),
                session_id=meeting.id or 0,
                reply=sessions.Answer.YES,
                now=NOW,
            )
        over = meeting.ends_at + timedelta(minutes=1)
        with pytest.raises(errors.SessionOver):
            await sessions.answer(
                session, actor=iva, session_id=meeting.id or 0, reply=sessions.Answer.YES, now=over
            )
        [sofia_attends] = await sessions.attendance(session, meeting.id or 0)
    assert sofia_attends.city.name == "Sofia"
    assert sofia_attends.answers == {21: "yes", 22: "maybe"}
    assert sofia_attends.attending


def _approved(user_id: int, city: City) -> Delegate:
    return Delegate(user_id=user_id, city_id=city.id or 0, status=DelegateStatus.APPROVED.value)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    instant=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001
        max_value=datetime(2028, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ).map(lambda value: value.replace(second=0, microsecond=0))
)
async def test_every_stored_instant_round_trips_through_every_member_zone(
    db: Database, instant: datetime
) -> None:
    """Written to the database and read back (SQLite text or PostgreSQL timestamptz), the
    instant is the same, in UTC, and each member zone's wall clock leads back to it."""
    async with db.transaction() as session:
        group = await groups.get_group(session, "climate")
        meeting = await sessions.fix(
            session,
            group=group,
            starts_at=instant,
            length=timedelta(minutes=60),
            title="",
            meeting_url_template=URL,
            now=instant - timedelta(days=1),
            created_by=None,
        )
    async with db.transaction() as session:
        stored, _group = await sessions.get(session, meeting.id or 0)
    assert stored.starts_at == instant and stored.starts_at.utcoffset() == timedelta(0)
    for zone in ("Europe/Istanbul", "Europe/Athens", "Europe/Belgrade", "Europe/Chisinau"):
        local = stored.starts_at.astimezone(ZoneInfo(zone))
        back = to_utc(local.date(), local.time(), zone=zone)
        # The second pass through a repeated hour reads back as the first (the stated rule).
        assert back == instant if local.fold == 0 else back == instant - timedelta(hours=1)


async def test_a_group_without_a_chat_does_not_keep_others_from_their_reminders(
    db: Database,
) -> None:
    async with db.transaction() as session:
        economy = await groups.get_group(session, "economy")  # no chat linked
        climate = await _climate(session)
        for group in (economy, climate):  # economy's session first, in the table too
            await _fix(session, group, NOW + timedelta(hours=30))
    async with db.transaction() as session:
        written = await sessions.enqueue_due_reminders(session, now=NOW + timedelta(hours=7))
        owed = await _reminders(session)
    assert written == 1 and [m.chat_id for m in owed] == [CHAT_ID]
    assert owed[0].params["before_minutes"] == 24 * 60
    assert owed[0].params["starts_in_minutes"] == 23 * 60
