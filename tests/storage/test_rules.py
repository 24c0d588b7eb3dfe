"""Rules at their edges: the first and last day of a term, the longest group name, the
order lists are shown in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import delegates, errors, groups, plans, polls, presidency, roster
from storage.db import Database
from storage.models import Delegate, DelegateRole, DelegateStatus, User
from storage.roles import Actor

SECRETARIAT = Actor(user_id=1, is_secretariat=True)


async def test_a_term_is_current_from_its_first_day_to_its_last(seeded: Database) -> None:
    async with seeded.transaction() as session:
        sofia = await roster.find_city(session, "Sofia")
        await presidency.set_term(
            session,
            actor=SECRETARIAT,
            city=sofia,
            year=2027,
            starts_on=date(2027, 2, 1),
            ends_on=date(2028, 1, 31),
        )
        seen = {}
        for day in (date(2027, 1, 31), date(2027, 2, 1), date(2028, 1, 31), date(2028, 2, 1)):
            found = await presidency.current(session, today=day)
            seen[day] = found[1].name if found else None
    assert seen == {
        date(2027, 1, 31): None,
        date(2027, 2, 1): "Sofia",
        date(2028, 1, 31): "Sofia",
        date(2028, 2, 1): None,
    }


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("  Water   and\nEnergy ", "Water and Energy"),
        ("W" * groups.MAX_GROUP_NAME, "W" * groups.MAX_GROUP_NAME),
        ("W" * (groups.MAX_GROUP_NAME + 1), None),
        ("2030 / 2040", None),  # no letter in it
        ("   ", None),
    ],
)
def test_a_group_name_is_one_line_of_letters_and_not_too_long(name: str, kept: str | None) -> None:
    if kept is not None:
        assert groups.clean_group_name(name) == kept
        return
    with pytest.raises(errors.InvalidGroupName) as refused:
        groups.clean_group_name(name)
    assert refused.value.params == {"max": groups.MAX_GROUP_NAME}


async def test_a_bad_short_name_is_refused_with_what_was_typed(seeded: Database) -> None:
    async with seeded.transaction() as session:
        with pytest.raises(errors.InvalidSlug) as refused:
            await groups.propose_group(
                session,
                actor=SECRETARIAT,
                slug="Water Energy!" + "x" * 50,
                name="Water",
                bootstrap=frozenset({1}),
                today=date(2026, 1, 15),
            )
    assert refused.value.params == {"slug": ("water energy!" + "x" * 50)[:40]}


async def _claim(
    session: AsyncSession, user_id: int, city: str, role: DelegateRole, at: datetime, status: str
) -> None:
    found = await roster.find_city(session, city)
    session.add(User(telegram_id=user_id, full_name=f"U{user_id}", language="en"))
    session.add(
        Delegate(
            user_id=user_id, city_id=found.id or 0, role=role.value, status=status, created_at=at
        )
    )
    await session.flush()


async def test_waiting_claims_are_listed_oldest_first(seeded: Database) -> None:
    start = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    pending = DelegateStatus.PENDING.value
    async with seeded.transaction() as session:
        # Claimed in this order in time; the ids say otherwise.
        await _claim(session, 503, "Varna", DelegateRole.MAYOR, start + timedelta(hours=2), pending)
        await _claim(session, 501, "Sofia", DelegateRole.MAYOR, start, pending)
        await _claim(
            session, 502, "Burgas", DelegateRole.MAYOR, start + timedelta(hours=1), pending
        )
        listed = await delegates.pending(session)
    assert [(d.user_id, city.name) for d, city, _user in listed] == [
        (501, "Sofia"),
        (502, "Burgas"),
        (503, "Varna"),
    ]


async def test_a_citys_delegates_are_listed_by_role_then_by_claim(seeded: Database) -> None:
    start = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    approved = DelegateStatus.APPROVED.value
    async with seeded.transaction() as session:
        await _claim(session, 601, "Sofia", DelegateRole.TECHNICAL_STAFF, start, approved)
        await _claim(session, 602, "Sofia", DelegateRole.MAYOR, start, approved)
        await _claim(session, 603, "Sofia", DelegateRole.FOCAL_POINT, start, approved)
        await _claim(session, 604, "Sofia", DelegateRole.FOCAL_POINT, start, approved)
        await _claim(session, 605, "Varna", DelegateRole.MAYOR, start, approved)
        await _claim(session, 606, "Sofia", DelegateRole.MAYOR, start, DelegateStatus.PENDING.value)
        sofia = await roster.find_city(session, "Sofia")
        people = await delegates.delegates_of(session, [sofia.id or 0])
    assert list(people) == [sofia.id]
    assert [(d.user_id, user.full_name if user else None) for d, user in people[sofia.id or 0]] == [
        (603, "U603"),
        (604, "U604"),
        (602, "U602"),
        (601, "U601"),
    ]


def test_planning_looks_four_weeks_ahead_from_a_week_on() -> None:
    assert plans.default_window(date(2026, 1, 15)) == (date(2026, 1, 22), date(2026, 2, 18))


NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)


@pytest.mark.parametrize(
    ("facts", "best"),
    [
        # Most cities yes wins, even against fewer no.
        ([(1, {"A": "yes", "B": "no"}), (2, {"A": "maybe", "B": "maybe"})], 1),
        # Yes tied: fewer no wins.
        ([(1, {"A": "yes", "B": "no"}), (2, {"A": "yes", "B": "maybe"})], 2),
        # Yes and no tied: more maybe wins.
        ([(1, {"A": "yes"}), (2, {"A": "yes", "B": "maybe"})], 2),
        # All tied: the planner's order.
        ([(2, {"A": "yes"}), (1, {"A": "yes"})], 1),
        # Only maybe is still a time some city can make; only no is not.
        ([(1, {"A": "no", "B": "no"}), (2, {"A": "maybe"})], 2),
        ([(1, {"A": "no"}), (2, {})], None),
    ],
)
def test_the_deadline_fixes_the_best_answered_time(
    facts: list[tuple[int, dict[str, str]]], best: int | None
) -> None:
    answers = polls.Tally(dict(facts))
    rows = [(position, LATER, answers) for position, _votes in facts]
    assert plans.best_option(rows, now=NOW) == best


def test_the_deadline_skips_times_already_past_or_unknown() -> None:
    answers = polls.Tally({1: {"A": "yes", "B": "yes"}, 2: {"A": "yes"}, 3: {"A": "maybe"}})
    assert plans.best_option([(1, NOW, answers), (2, LATER, answers)], now=NOW) == 2
    assert plans.best_option([(1, None, answers), (3, LATER, answers)], now=NOW) == 3
    # A past time before a good one does not end the search.
    assert (
        plans.best_option([(1, NOW - timedelta(hours=1), answers), (2, LATER, answers)], now=NOW)
        == 2
    )
    assert answers.count(1, "yes") == 2 and answers.count(2, "no") == 0


@pytest.mark.parametrize(
    ("today", "quarter"),
    [
        (date(2026, 1, 15), (date(2026, 4, 1), date(2026, 6, 30), "2026Q2")),
        (date(2026, 3, 31), (date(2026, 4, 1), date(2026, 6, 30), "2026Q2")),
        (date(2026, 4, 1), (date(2026, 7, 1), date(2026, 9, 30), "2026Q3")),
        (date(2026, 8, 31), (date(2026, 10, 1), date(2026, 12, 31), "2026Q4")),
        (date(2026, 11, 28), (date(2027, 1, 1), date(2027, 3, 31), "2027Q1")),
        (date(2027, 9, 30), (date(2027, 10, 1), date(2027, 12, 31), "2027Q4")),
    ],
)
def test_the_next_quarter_and_its_last_day(today: date, quarter: tuple[date, date, str]) -> None:
    assert plans.next_quarter(today) == quarter


async def test_a_city_is_busy_with_any_of_its_groups_sessions_only(seeded: Database) -> None:
    """Sofia is in climate and economy; Varna only in economy; Tirana in neither. An
    economy session keeps Sofia and Varna busy, and nobody else."""
    from storage.models import GroupMembership, WorkingSession

    start = datetime(2026, 2, 10, 8, 0, tzinfo=UTC)
    async with seeded.transaction() as session:
        climate = await groups.get_group(session, "climate")
        economy = await groups.get_group(session, "economy")
        sofia, varna, tirana = [
            await roster.find_city(session, name) for name in ("Sofia", "Varna", "Tirana")
        ]
        for group, city in (
            (climate, sofia),
            (economy, sofia),
            (economy, varna),
            (climate, tirana),
        ):
            session.add(GroupMembership(group_id=group.id or 0, city_id=city.id or 0))
        session.add(
            WorkingSession(
                group_id=economy.id or 0,
                starts_at=start,
                ends_at=start + timedelta(hours=1),
                join_url="https://meet.example.org/x",
                created_by=1,
            )
        )
        session.add(  # a cancelled session keeps nobody busy
            WorkingSession(
                group_id=climate.id or 0,
                starts_at=start,
                ends_at=start + timedelta(hours=1),
                join_url="https://meet.example.org/y",
                status="cancelled",
            )
        )
        await session.flush()
        ids = [sofia.id or 0, varna.id or 0, tirana.id or 0]
        busy = await plans.busy_for(session, ids, start=start - timedelta(days=1), end=start)
        assert busy == []  # it starts as the window ends: not inside it
        busy = await plans.busy_for(
            session, ids, start=start - timedelta(days=1), end=start + timedelta(days=1)
        )
    assert [(b.city_ids, b.start, b.end) for b in busy] == [
        (frozenset({sofia.id, varna.id}), start, start + timedelta(hours=1))
    ]
