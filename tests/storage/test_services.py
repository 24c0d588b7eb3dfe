"""The rules, tested without Telegram, against the real database (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.exc import StatementError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.context import Deps
from storage import (
    applications,
    audit,
    delegates,
    errors,
    groups,
    presidency,
    roster,
    updates,
    users,
)
from storage.db import Database, async_url
from storage.models import (
    AuditEntry,
    City,
    Delegate,
    DelegateRole,
    OutboxMessage,
    ProcessedUpdate,
    User,
)
from storage.roles import Actor, resolve_actor
from tests.conftest import DATA, seed_cities

SECRETARIAT = Actor(user_id=1, is_secretariat=True)
TODAY = date(2026, 6, 1)


async def test_standing_groups_exist_after_the_first_migration(db: Database) -> None:
    async with db.transaction() as session:
        slugs = [entry.group.slug for entry in await groups.overview(session)]
    assert slugs == ["climate", "democracy-migration", "smart-cities", "economy"]


async def test_import_is_idempotent_and_all_or_nothing(db: Database) -> None:
    await seed_cities(db)
    text = (DATA / "b40-cities.csv").read_text(encoding="utf-8")
    async with db.transaction() as session:
        result = await roster.import_cities(session, roster.parse_cities_csv(text), today=TODAY)
    assert (result.added, result.updated, result.unchanged) == (0, 0, 34)
    bad = text + "Kumanovo,MK,Europe/Skopje,true\nNowhere,MK,Mars/Olympus,false\n"
    with pytest.raises(errors.InvalidImport) as caught:
        roster.parse_cities_csv(bad)
    assert caught.value.params["line"] == 37
    async with db.transaction() as session:
        assert len(await roster.list_cities(session)) == 34
        kosovo = [c for c in await roster.list_cities(session) if c.country_code == "XK"]
        assert {c.timezone for c in kosovo} == {"Europe/Belgrade"}


@pytest.mark.parametrize(
    ("csv_text", "line", "reason"),
    [
        ("name,country,timezone\nA,GR\n", 2, "columns"),
        ("name,country,timezone\nAthens,GR,Europe/Athens\nathens,gr,europe/athens\n", 3, "repeats"),
        ("name,country,timezone\nX,GR,Europe/Athens,maybe\n", 2, "founding"),
        ("name,country,timezone\n", 0, "no cities"),
    ],
)
def test_bad_rows_name_their_line(csv_text: str, line: int, reason: str) -> None:
    with pytest.raises(errors.InvalidImport) as caught:
        roster.parse_cities_csv(csv_text)
    assert caught.value.params["line"] == line and reason in caught.value.params["reason"]


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("Istanbul", "İstanbul"),
        ("ISTANBUL", "İstanbul"),
        ("kirklareli", "Kırklareli"),
        ("Tekirdag", "Tekirdağ"),
        ("chisinau", "Chișinău"),
        ("Durres", "Durrës"),
        ("  laktasi ", "Laktaši"),
    ],
)
async def test_cities_are_found_however_they_are_typed(
    db: Database, typed: str, found: str
) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        assert (await roster.find_city(session, typed)).name == found


NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


async def _actor(session: AsyncSession, user_id: int) -> Actor:
    return await resolve_actor(session, user_id=user_id, bootstrap_secretariat={1}, today=TODAY)


async def _claim(
    session: AsyncSession, user_id: int, city: str, role: DelegateRole
) -> tuple[int, bool]:
    found = await roster.find_city(session, city)
    claim, new = await delegates.claim_city(
        session, actor=await _actor(session, user_id), city=found, role=role, bootstrap={1}, now=NOW
    )
    return claim.id or 0, new


async def _notices(session: AsyncSession) -> list[OutboxMessage]:
    return list((await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


async def test_delegate_lifecycle_and_roles(db: Database) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        stranger = await _actor(session, 42)
        with pytest.raises(errors.NotADelegate):
            stranger.approved_city()
        claim, new = await _claim(session, 42, "Plovdiv", DelegateRole.MAYOR)
        assert new
        pending = await _actor(session, 42)
        with pytest.raises(errors.DelegateNotApproved):
            pending.approved_city()
        with pytest.raises(errors.NotAllowed):
            await delegates.decide(session, actor=pending, claim_id=claim, approve=True, now=NOW)
        secretary = await _actor(session, 1)
        await delegates.decide(session, actor=secretary, claim_id=claim, approve=True, now=NOW)
        with pytest.raises(errors.ClaimNotPending):
            await delegates.decide(session, actor=secretary, claim_id=claim, approve=False, now=NOW)
        with pytest.raises(errors.UnknownClaim):
            await delegates.decide(session, actor=secretary, claim_id=999, approve=True, now=NOW)
        approved = await _actor(session, 42)
        assert approved.approved_city().name == "Plovdiv"
        with pytest.raises(errors.AlreadyDelegate):
            await _claim(session, 42, "Burgas", DelegateRole.MAYOR)
        with pytest.raises(errors.AlreadyDelegate):
            await _claim(session, 42, "Plovdiv", DelegateRole.MAYOR)
        actions = [
            e.action for e in await audit.entries(session) if e.action.startswith("delegate.")
        ]
        kinds = [(m.chat_id, m.kind) for m in await _notices(session)]
    assert actions == ["delegate.claim", "delegate.approve"]
    assert kinds == [(1, delegates.CLAIMED), (42, delegates.APPROVED)]


async def test_a_decision_lands_on_the_claim_it_names(db: Database) -> None:
    """Eve claims Zagreb, then Sofia: Approve on the Zagreb notice approves nothing."""
    await seed_cities(db)
    async with db.transaction() as session:
        zagreb_claim, _new = await _claim(session, 42, "Zagreb", DelegateRole.FOCAL_POINT)
        sofia_claim, _new = await _claim(session, 42, "Sofia", DelegateRole.FOCAL_POINT)
        secretary = await _actor(session, 1)
        with pytest.raises(errors.ClaimNotPending):
            await delegates.decide(
                session, actor=secretary, claim_id=zagreb_claim, approve=True, now=NOW
            )
        eve = await _actor(session, 42)
        assert not eve.is_approved_delegate
        assert eve.pending is not None and eve.pending.id == sofia_claim
        rows = {d.id: d.status for d in (await session.exec(select(Delegate))).all()}
    assert rows == {zagreb_claim: "withdrawn", sofia_claim: "pending"}


async def test_a_role_change_is_a_new_claim(db: Database) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        first, _new = await _claim(session, 42, "Belgrade", DelegateRole.FOCAL_POINT)
        secretary = await _actor(session, 1)
        await delegates.decide(session, actor=secretary, claim_id=first, approve=True, now=NOW)
        second, new = await _claim(session, 42, "Belgrade", DelegateRole.MAYOR)
        assert new and second != first
        focal = await _actor(session, 42)
        # Still the focal point until the secretariat decides; the mayor claim waits.
        assert focal.delegate is not None and focal.delegate.role == "focal_point"
        assert focal.pending is not None and focal.pending.role == "mayor"
        await delegates.decide(session, actor=secretary, claim_id=second, approve=True, now=NOW)
        mayor = await _actor(session, 42)
        assert mayor.delegate is not None and mayor.delegate.role == "mayor"
        statuses = {d.id: d.status for d in (await session.exec(select(Delegate))).all()}
    assert statuses == {first: "superseded", second: "approved"}


async def test_a_repeated_claim_notifies_nobody_again(db: Database) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        first, new = await _claim(session, 42, "Varna", DelegateRole.FOCAL_POINT)
        again, repeated_is_new = await _claim(session, 42, "Varna", DelegateRole.FOCAL_POINT)
        notices = await _notices(session)
    assert new and not repeated_is_new and again == first
    assert [(m.chat_id, m.kind) for m in notices] == [(1, delegates.CLAIMED)]


async def test_a_rejected_claim_cannot_be_renewed_at_once(db: Database) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        claim, _new = await _claim(session, 42, "Varna", DelegateRole.FOCAL_POINT)
        secretary = await _actor(session, 1)
        await delegates.decide(session, actor=secretary, claim_id=claim, approve=False, now=NOW)
        with pytest.raises(errors.ClaimRejected):
            await _claim(session, 42, "Varna", DelegateRole.FOCAL_POINT)
        # Another city is another question.
        _other, new = await _claim(session, 42, "Burgas", DelegateRole.FOCAL_POINT)
        kinds = [m.kind for m in await _notices(session)]
    assert new
    assert kinds == [delegates.CLAIMED, delegates.REJECTED, delegates.CLAIMED]


async def test_presidency_is_never_held_twice_in_a_row(db: Database) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        zagreb = await roster.find_city(session, "Zagreb")
        sofia = await roster.find_city(session, "Sofia")
        await presidency.set_term(session, actor=SECRETARIAT, city=zagreb, year=2026)
        with pytest.raises(errors.ConsecutiveTerm):
            await presidency.set_term(session, actor=SECRETARIAT, city=zagreb, year=2027)
        with pytest.raises(errors.ConsecutiveTerm):
            await presidency.set_term(session, actor=SECRETARIAT, city=zagreb, year=2025)
        with pytest.raises(errors.TermExists):
            await presidency.set_term(session, actor=SECRETARIAT, city=sofia, year=2026)
        await presidency.set_term(session, actor=SECRETARIAT, city=sofia, year=2027)
        await presidency.set_term(session, actor=SECRETARIAT, city=zagreb, year=2028)
        with pytest.raises(errors.NotAllowed):
            await presidency.set_term(session, actor=Actor(user_id=5), city=sofia, year=2030)
        current = await presidency.current(session, today=date(2027, 12, 31))
        assert current is not None and current[1].name == "Sofia"


async def test_a_group_needs_both_sides(db: Database) -> None:
    async with db.transaction() as session:
        president = Actor(user_id=7, is_presidency=True)
        other_president = Actor(user_id=8, is_presidency=True)
        group, active = await groups.propose_group(
            session,
            actor=president,
            slug="Water-Energy",
            name="Water  and Energy",
            bootstrap={1},
            today=TODAY,
        )
        assert (group.slug, group.name, active) == ("water-energy", "Water and Energy", False)
        with pytest.raises(errors.GroupAlreadyProposed):
            await groups.confirm_group(session, actor=other_president, group_id=group.id or 0)
        with pytest.raises(errors.NotAllowed):
            await groups.confirm_group(session, actor=Actor(user_id=9), group_id=group.id or 0)
        both = Actor(user_id=7, is_presidency=True, is_secretariat=True)
        with pytest.raises(errors.GroupAlreadyProposed):  # the proposer cannot confirm alone
            await groups.confirm_group(session, actor=both, group_id=group.id or 0)
        confirmed = await groups.confirm_group(session, actor=SECRETARIAT, group_id=group.id or 0)
        assert confirmed.status == "active"
        with pytest.raises(errors.GroupExists):
            await groups.propose_group(
                session, actor=SECRETARIAT, slug="climate", name="x", bootstrap={1}, today=TODAY
            )
        for slug in ("-bad", "a", "x" * 41, "ünï", "two words"):
            with pytest.raises(errors.InvalidSlug):
                await groups.propose_group(
                    session, actor=SECRETARIAT, slug=slug, name="Name", bootstrap={1}, today=TODAY
                )


async def test_applications(db: Database) -> None:
    await seed_cities(db)
    async with db.transaction() as session:
        with pytest.raises(errors.CityAlreadyMember):
            await applications.apply(
                session,
                applicant=None,
                bootstrap={1},
                applicant_id=3,
                name="istanbul",
                country_code="tr",
                timezone="Europe/Istanbul",
            )
        with pytest.raises(errors.UnknownTimezone):
            await applications.apply(
                session,
                applicant=None,
                bootstrap={1},
                applicant_id=3,
                name="Ohrid",
                country_code="MK",
                timezone="UTC+2",
            )
        application = await applications.apply(
            session,
            applicant=None,
            bootstrap={1},
            applicant_id=3,
            name="Ohrid",
            country_code="mk",
            timezone="EUROPE/SKOPJE",
        )
        assert (application.country_code, application.timezone) == ("MK", "Europe/Skopje")
        with pytest.raises(errors.AlreadyApplied):
            await applications.apply(
                session,
                applicant=None,
                bootstrap={1},
                applicant_id=4,
                name="OHRID",
                country_code="MK",
                timezone="Europe/Skopje",
            )
        _, city = await applications.decide(
            session, actor=SECRETARIAT, application_id=application.id or 0, admit=True, today=TODAY
        )
        assert city is not None and city.joined_on == TODAY


async def test_instants_are_utc_on_every_backend(db: Database) -> None:
    athens_evening = datetime(2026, 10, 25, 2, 30, tzinfo=timezone(timedelta(hours=3)))
    async with db.transaction() as session:
        session.add(OutboxMessage(chat_id=2**62, kind="text", not_before=athens_evening))
    async with db.transaction() as session:
        row = (await session.exec(select(OutboxMessage))).one()
    assert row.not_before == datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
    assert row.not_before.utcoffset() == timedelta(0)
    assert row.chat_id == 2**62  # Telegram ids are 64-bit
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.transaction() as session:
            session.add(OutboxMessage(chat_id=1, kind="text", not_before=datetime(2026, 1, 1)))  # noqa: DTZ001


async def test_update_ids_are_claimed_once(db: Database) -> None:
    async with db.transaction() as session:
        assert await updates.claim(session, 10**12) is True
        assert await updates.claim(session, 10**12) is False
    async with db.transaction() as session:
        assert await updates.claim(session, 10**12) is False


async def test_a_failed_unit_of_work_leaves_nothing(db: Database) -> None:
    await seed_cities(db)
    with pytest.raises(errors.CityAlreadyMember):
        async with db.transaction() as session:
            await roster.add_city(
                session, name="Ohrid", country_code="MK", timezone="Europe/Skopje", joined_on=TODAY
            )
            await roster.add_city(
                session, name="Sofia", country_code="BG", timezone="Europe/Sofia", joined_on=TODAY
            )
    async with db.transaction() as session:
        assert (await session.exec(select(City).where(City.name == "Ohrid"))).first() is None
        assert not [
            e for e in (await session.exec(select(AuditEntry))).all() if e.subject == "Ohrid"
        ]


def test_the_right_async_driver_is_chosen() -> None:
    assert async_url("sqlite:///b40.db") == "sqlite+aiosqlite:///b40.db"
    assert async_url("postgresql://u:p@h:5432/d") == "postgresql+asyncpg://u:p@h:5432/d"
    assert (
        async_url("postgresql://u@h/d?sslmode=require") == "postgresql+asyncpg://u@h/d?ssl=require"
    )
    with pytest.raises(ValueError, match="unsupported"):
        async_url("mysql://h/d")


async def test_forgetting_old_update_ids_keeps_the_recent_ones(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        for update_id, age in (
            (1, timedelta(hours=72)),
            (2, timedelta(hours=47)),
            (3, timedelta(0)),
        ):
            session.add(ProcessedUpdate(update_id=update_id, processed_at=now - age))
    async with db.transaction() as session:
        assert await updates.forget_old(session) == 1
    async with db.transaction() as session:
        kept = sorted(row.update_id for row in (await session.exec(select(ProcessedUpdate))).all())
    assert kept == [2, 3]


async def test_a_users_names_follow_telegram(db: Database) -> None:
    async with db.transaction() as session:
        await users.touch_user(
            session,
            existing=None,
            telegram_id=5,
            full_name="Ana Horvat",
            username="ana",
            telegram_language="hr",
        )
    async with db.transaction() as session:
        row = await session.get(User, 5)
        await users.touch_user(
            session,
            existing=row,
            telegram_id=5,
            full_name="Ana Kovač",
            username=None,
            telegram_language="sl",
        )
    async with db.transaction() as session:
        row = await session.get(User, 5)
    assert row is not None
    assert (row.full_name, row.username, row.telegram_language) == ("Ana Kovač", None, "sl")


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # 22:30 UTC on New Year's Eve is already 1 January in Istanbul (+3), not in Belgrade (+1).
        (datetime(2026, 12, 31, 22, 30, tzinfo=UTC), "Europe/Istanbul", date(2027, 1, 1)),
        (datetime(2026, 12, 31, 22, 30, tzinfo=UTC), "Europe/Belgrade", date(2026, 12, 31)),
        (datetime(2026, 12, 31, 22, 30, tzinfo=UTC), "Europe/Athens", date(2027, 1, 1)),
    ],
)
def test_the_networks_date_is_the_date_in_its_zone(
    instant: datetime, zone: str, expected: date
) -> None:
    deps = Deps(db=None, reference_zone=zone, clock=lambda: instant)  # type: ignore[arg-type]
    assert deps.today() == expected


async def test_the_migrations_build_exactly_the_models(db: Database) -> None:
    """A model changed without a migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))

    async with db.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []


async def test_a_decision_touches_its_own_claim_and_is_on_record(db: Database) -> None:
    """Mutation testing found these unguarded: deciding one claim must leave another
    user's alone, and the record must say who decided what."""
    await seed_cities(db)
    async with db.transaction() as session:
        varna, _new = await _claim(session, 42, "Varna", DelegateRole.FOCAL_POINT)
        burgas, _new = await _claim(session, 43, "Burgas", DelegateRole.MAYOR)
        secretary = await _actor(session, 1)
        await delegates.decide(session, actor=secretary, claim_id=varna, approve=False, now=NOW)
        rows = {d.id: d for d in (await session.exec(select(Delegate))).all()}
        trail = [
            (e.action, e.actor_id, e.subject, e.details)
            for e in await audit.entries(session)
            if e.action in ("delegate.approve", "delegate.reject")
        ]
    assert rows[burgas].status == "pending" and rows[burgas].decided_by is None
    assert rows[varna].status == "rejected"
    assert (rows[varna].decided_by, rows[varna].decided_at) == (1, NOW)
    assert trail == [("delegate.reject", 1, "Varna", {"claim": varna, "user_id": 42})]
