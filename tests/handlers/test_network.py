"""Cities, presidency, new working groups, applications, languages, the secretariat."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from handlers.errors import ROLE_NEEDED
from locales import _, use_language
from playground.updates import User, group
from storage.db import Database
from storage.models import City, MembershipApplication, WorkingGroup
from tests.conftest import (
    SECRETARY,
    BotHarness,
    Clock,
    link_chat,
    make_delegate,
    replies,
    running_bot,
    snapshot,
)

MAYOR_SOFIA = User(id=44_000_001, first_name="Ivan", language_code="bg")
FOCAL_ZAGREB = User(id=44_000_002, first_name="Marija", language_code="hr")
OHRID = User(id=44_000_003, first_name="Elena", language_code="mk")
CHAT = group(-1005555555555, "B40 Economy")


def local_times(text: str, city: str) -> str:
    match = re.search(re.escape(city) + r"[^\n]*? — (\d{1,2}:\d{2})", text)
    assert match, f"{city} not in {text}"
    return match.group(1)


@pytest.mark.parametrize(
    ("now", "istanbul", "athens", "belgrade", "chisinau"),
    [
        # Winter: +3 / +2 / +1 — three different clocks.
        (datetime(2026, 1, 15, 9, 0, tzinfo=UTC), "12:00", "11:00", "10:00", "11:00"),
        # Summer: Istanbul stays +3; Athens and Chisinau +3; Belgrade +2.
        (datetime(2026, 7, 15, 9, 0, tzinfo=UTC), "12:00", "12:00", "11:00", "12:00"),
        # 00:30 UTC on 29 March 2026, half an hour before the EU switch: still winter time.
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "03:30", "02:30", "01:30", "02:30"),
        # 01:30 UTC the same night: the switch happened at 01:00 UTC everywhere (Chisinau too).
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "04:30", "04:30", "03:30", "04:30"),
    ],
)
async def test_cities_shows_each_local_time(
    harness: BotHarness, now: datetime, istanbul: str, athens: str, belgrade: str, chisinau: str
) -> None:
    harness.clock.now = now
    text = replies(
        await harness.command("/cities", User(id=1, first_name="A", language_code="en"))
    )[0]
    assert "34 member cities" in text
    assert local_times(text, "İstanbul") == istanbul
    assert local_times(text, "Athens") == athens
    assert local_times(text, "Belgrade") == belgrade
    assert local_times(text, "Pristina") == belgrade  # Kosovo keeps Belgrade's clock
    assert local_times(text, "Chișinău") == chisinau
    assert "Kosovo" in text and "★" in text


async def test_presidency_terms_and_the_consecutive_rule(harness: BotHarness) -> None:
    reader = User(id=5, first_name="Z", language_code="en")
    text = replies(await harness.command("/presidency", reader))[0]
    assert text == "No term presidency is recorded for today."
    await harness.command("/language en", SECRETARY)
    recorded = replies(await harness.command("/presidency 2026 Zagreb", SECRETARY))[0]
    assert recorded == "Recorded: Zagreb (Croatia) holds the term presidency of 2026."
    refused = replies(await harness.command("/presidency 2027 Zagreb", SECRETARY))[0]
    assert "no city may hold two terms in a row" in refused
    await harness.command("/presidency 2027 Sofia", SECRETARY)
    shown = replies(await harness.command("/presidency", reader))[0]
    # The clock says 15 January 2026: Zagreb presides, and both terms are listed, newest first.
    assert shown.startswith("Term presidency 2026: Zagreb (Croatia), 1 Jan 2026 – 31 Dec 2026.")
    assert shown.index("2027 — Sofia") < shown.index("2026 — Zagreb")


async def test_new_group_needs_presidency_and_secretariat(harness: BotHarness) -> None:
    await harness.command("/presidency 2026 Sofia", SECRETARY)
    await make_delegate(harness, MAYOR_SOFIA, "Sofia", "mayor")
    proposed = await harness.command("/newgroup water-energy Water and Energy", MAYOR_SOFIA)
    assert "water-energy" in replies(proposed, MAYOR_SOFIA.id)[-1]
    # The secretariat is asked, with a Confirm button.
    ask = harness.telegram.sent(SECRETARY.id)[-1]
    confirm = [data for _l, data in ask.buttons() if data.startswith("ng:ok:")]
    assert confirm
    # The proposer cannot confirm alone; an outsider cannot confirm at all.
    again = await harness.command("/newgroup water-energy Water and Energy", MAYOR_SOFIA)
    # Bulgarian, the mayor's language, with the other side's name filled in.
    assert (
        replies(again)[-1]
        == "Работната група „water-energy“ е предложена и чака секретариатът да я потвърди."
    )
    async with harness.db.transaction() as session:
        group_row = (
            await session.exec(select(WorkingGroup).where(WorkingGroup.slug == "water-energy"))
        ).one()
        assert group_row.status == "proposed"
    done = await harness.press(confirm[0], SECRETARY, on=ask)
    assert replies(done)[-1] == "<b>Water and Energy</b> (water-energy) çalışma grubu oluşturuldu."
    listing = replies(await harness.command("/groups", MAYOR_SOFIA))[-1]
    assert "Water and Energy" in listing
    await link_chat(harness, CHAT, "water-energy")
    assert "Water and Energy" in harness.telegram.texts(CHAT.id)[-1]


async def test_apply_admit_and_decline(harness: BotHarness) -> None:
    applied = await harness.command("/apply Ohrid, mk, europe/skopje", OHRID)
    assert "Ohrid" in replies(applied, OHRID.id)[-1]
    ask = harness.telegram.sent(SECRETARY.id)[-1]
    admit = next(data for _l, data in ask.buttons() if data.startswith("app:ok:"))
    await harness.press(admit, SECRETARY, on=ask)
    assert "Ohrid" in harness.telegram.texts(OHRID.id)[-1]  # the applicant hears back
    async with harness.db.transaction() as session:
        city = (await session.exec(select(City).where(City.name == "Ohrid"))).one()
        assert (city.country_code, city.timezone) == ("MK", "Europe/Skopje")
    # Pressing Admit a second time changes nothing and says why.
    before = await snapshot(harness.db)
    twice = await harness.press(admit, SECRETARY, on=ask)
    # (in Turkish: the secretary's Telegram language)
    assert twice[-1].params["text"] == "Ohrid başvurusu hakkında zaten karar verildi."
    assert await snapshot(harness.db) == before

    await harness.command("/apply Bitola, MK, Europe/Skopje", OHRID)
    ask = harness.telegram.sent(SECRETARY.id)[-1]
    decline = next(data for _l, data in ask.buttons() if data.startswith("app:no:"))
    await harness.press(decline, SECRETARY, on=ask)
    async with harness.db.transaction() as session:
        bitola = (
            await session.exec(
                select(MembershipApplication).where(MembershipApplication.city_name == "Bitola")
            )
        ).one()
        assert bitola.status == "declined"
        assert (await session.exec(select(City).where(City.name == "Bitola"))).first() is None


async def test_language_in_private_and_in_groups(harness: BotHarness) -> None:
    user = User(id=44_000_010, first_name="Dana", language_code="en")
    set_reply = replies(await harness.command("/language sr-Latn", user))[0]
    assert "Srpski" in set_reply
    # Choosing by button works the same.
    menu = await harness.command("/language", user)
    assert ("lang:sl") in [d for _l, d in menu[-1].buttons()]
    await harness.press("lang:sl", user, on=menu[-1])
    harness.register(CHAT)
    # A plain member may not set the group's language; a chat admin may.
    before = await snapshot(harness.db)
    refused = replies(await harness.command("/language tr", user, CHAT))[0]
    with use_language("sl"):  # Dana chose Slovenian by button
        assert refused == _(ROLE_NEEDED["chat_admin"])
    assert await snapshot(harness.db) == before
    harness.telegram.admins.add((CHAT.id, user.id))
    await harness.command("/language el", user, CHAT)
    # Now the group hears Greek, whoever asks; group names are data, shown as they are.
    greek = replies(await harness.command("/groups", FOCAL_ZAGREB, CHAT))[0]
    assert greek.startswith("<b>Ομάδες εργασίας</b>") and "Local Climate Action" in greek


async def test_only_this_groups_organisers_set_its_language(harness: BotHarness) -> None:
    other_chat = group(-1005555555556, "B40 Climate")
    await link_chat(harness, CHAT, "economy")
    await link_chat(harness, other_chat, "climate")
    await make_delegate(harness, FOCAL_ZAGREB, "Zagreb")
    await harness.command(f"/coordinator {FOCAL_ZAGREB.id}", SECRETARY, other_chat)
    # A coordinator of climate is no organiser of economy's chat.
    before = await snapshot(harness.db)
    refused = replies(await harness.command("/language en", FOCAL_ZAGREB, CHAT))[0]
    with use_language("hr"):
        assert refused == _(ROLE_NEEDED["chat_admin"])
    assert await snapshot(harness.db) == before
    allowed = replies(await harness.command("/language en", FOCAL_ZAGREB, other_chat))[0]
    assert allowed == "I will speak English in this chat."


async def test_secretariat_adds_and_removes_staff(harness: BotHarness) -> None:
    staff = User(id=44_000_020, first_name="Mehmet", language_code="tr")
    refused = replies(await harness.command("/approve 1", staff))[0]
    with use_language("tr"):
        assert refused == _(ROLE_NEEDED["secretariat"])
    await harness.command(f"/secretariat add {staff.id}", SECRETARY)
    listing = replies(await harness.command("/secretariat", staff))[0]
    assert str(SECRETARY.id) in listing and str(staff.id) in listing
    # Staff from B40_SECRETARIAT can only be removed in the configuration.
    kept = replies(await harness.command(f"/secretariat remove {SECRETARY.id}", staff))[0]
    assert "B40_SECRETARIAT" in kept
    await harness.command(f"/secretariat remove {staff.id}", SECRETARY)
    gone = replies(await harness.command("/secretariat", staff))[0]
    assert str(SECRETARY.id) not in gone


async def test_a_redelivered_update_changes_nothing(harness: BotHarness) -> None:
    from playground.updates import command

    await link_chat(harness, CHAT, "economy")
    await make_delegate(harness, FOCAL_ZAGREB, "Zagreb")
    update = command("/join", FOCAL_ZAGREB, CHAT)
    first = await harness.send(update)
    assert len(replies(first)) == 1
    before = await snapshot(harness.db)
    second = await harness.send(update)  # Telegram delivers at least once
    assert second == []
    assert await snapshot(harness.db) == before


async def test_roster_lists_cities_delegates_and_coordinators(harness: BotHarness) -> None:
    await link_chat(harness, CHAT, "economy")
    await make_delegate(harness, MAYOR_SOFIA, "Sofia", "mayor")
    await make_delegate(harness, FOCAL_ZAGREB, "Zagreb")
    technical = User(id=44_000_030, first_name="Goran", username="goran_zg", language_code="hr")
    await make_delegate(harness, technical, "Zagreb", "technical")
    for user in (MAYOR_SOFIA, FOCAL_ZAGREB):
        await harness.command("/join", user, CHAT)
    await harness.command(f"/coordinator {technical.id}", SECRETARY, CHAT)
    harness.clock.now = datetime(2026, 7, 1, 6, 5, tzinfo=UTC)
    reader = User(id=44_000_040, first_name="R", language_code="en")
    text = replies(await harness.command("/roster", reader, CHAT))[0]
    assert text.splitlines()[:2] == [
        "<b>Local Economic and Cultural Cooperation</b> (economy)",
        "2 member cities, local time now:",
    ]
    # Bulgaria before Croatia; summer: Sofia UTC+3, Zagreb UTC+2.
    assert text.index("<b>Bulgaria</b>") < text.index("<b>Croatia</b>")
    assert "• Sofia — 09:05" in text and "• Zagreb — 08:05" in text
    assert "◦ Ivan, mayor" in text
    assert "◦ Marija, focal point" in text
    assert "◦ Goran (@goran_zg), technical staff — coordinator" in text


async def test_cities_before_any_city_is_imported_says_so(db: Database, clock: Clock) -> None:
    async with running_bot(db, clock, seed=False) as bare:
        answer = replies(await bare.command("/cities", User(id=66_000_001, first_name="Ana")))
    assert answer == ["No member cities are registered yet."]


async def test_a_group_the_secretariat_proposes_waits_for_the_presidency(
    harness: BotHarness,
) -> None:
    [proposed] = replies(await harness.command("/newgroup water Water and Energy", SECRETARY))
    # Turkish, the secretary's language; the other side named.
    assert proposed == (
        "<b>Water and Energy</b> (water) çalışma grubu önerildi; "
        "dönem başkanlığı onayladığında oluşturulacak."
    )
    [usage] = replies(await harness.command("/newgroup", SECRETARY))
    assert usage == (
        "Bir kısa ad ve bir ad yazın: /newgroup &lt;kısa-ad&gt; &lt;ad&gt;, "
        "örneğin /newgroup water-energy Su ve Enerji."
    )


async def test_cities_by_country_in_the_readers_language_with_founders_marked(
    db: Database, clock: Clock
) -> None:
    from datetime import date

    from storage import roster

    rows = roster.parse_cities_csv(
        "name,country,timezone,founding\n"
        "Tirana,AL,Europe/Tirane,true\nZagreb,HR,Europe/Zagreb,false\n"
        "Athens,GR,Europe/Athens,true\nDurrës,AL,Europe/Tirane,false\n"
    )
    async with db.transaction() as session:
        await roster.import_cities(session, rows, today=date(2026, 1, 1))
    async with running_bot(db, clock, seed=False) as bot:
        english = User(id=66_000_201, first_name="Ann", language_code="en")
        greek = User(id=66_000_202, first_name="Νίκη", language_code="el")
        [shown] = replies(await bot.command("/cities", english))
        [in_greek] = replies(await bot.command("/cities", greek))
    # 09:00 UTC in January: Tirana and Zagreb 10:00, Athens 11:00.
    assert shown == (
        "<b>4 member cities</b>, local time now:\n\n"
        "<b>Albania</b>\n• Durrës — 10:00\n• Tirana ★ — 10:00\n\n"
        "<b>Croatia</b>\n• Zagreb — 10:00\n\n"
        "<b>Greece</b>\n• Athens ★ — 11:00\n\n"
        "★ founding city (Istanbul, 2021)"
    )
    # Countries in the order of their names in Greek: Greece comes before Croatia.
    assert in_greek.index("<b>Ελλάδα</b>") < in_greek.index("<b>Κροατία</b>")


async def test_a_group_the_presidency_proposes_is_created_when_the_secretariat_agrees(
    harness: BotHarness,
) -> None:
    president = User(id=66_000_301, first_name="Ivan", language_code="en")
    await harness.command("/presidency 2026 Sofia", SECRETARY)
    await make_delegate(harness, president, "Sofia", "mayor")
    [proposed] = replies(
        await harness.command("/newgroup water Water and Energy", president), president.id
    )
    assert proposed == (
        "Working group <b>Water and Energy</b> (water) is proposed. "
        "It is created when the secretariat confirms."
    )
    await harness.command("/language en", SECRETARY)
    # The other side agrees by proposing the same short name.
    [created] = replies(
        await harness.command("/newgroup water Water and Energy", SECRETARY), SECRETARY.id
    )
    assert created == "Working group <b>Water and Energy</b> (water) is created."
