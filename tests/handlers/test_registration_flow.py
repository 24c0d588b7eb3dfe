"""From /start to the roster of a working group's chat, with the secretariat approving."""

from __future__ import annotations

import pytest
from sqlmodel import select

from playground.updates import User, group, my_chat_member
from storage.models import Delegate, GroupMembership
from tests.conftest import SECRETARY, BotHarness, replies

CLIMATE_CHAT = group(-1001234567890, "B40 Climate Action")


async def register_through_buttons(
    harness: BotHarness, user: User, language: str, country: str, city: str
) -> None:
    start = await harness.command("/start", user)
    menu = start[-1]
    assert (f"reg:lang:{language}") in [data for _label, data in menu.buttons()]

    countries = await harness.press(f"reg:lang:{language}", user, on=menu)
    country_menu = [c for c in countries if c.method == "editMessageText"][-1]
    country_buttons = {data: label for label, data in country_menu.buttons()}
    assert f"reg:cc:{country}" in country_buttons

    cities = await harness.press(f"reg:cc:{country}", user, on=country_menu)
    city_menu = [c for c in cities if c.method == "editMessageText"][-1]
    city_data = [data for label, data in city_menu.buttons() if label == city]
    assert city_data, city_menu.buttons()

    roles = await harness.press(city_data[0], user, on=city_menu)
    role_menu = [c for c in roles if c.method == "editMessageText"][-1]
    focal = [data for _label, data in role_menu.buttons() if data.endswith(":focal_point")]
    done = await harness.press(focal[0], user, on=role_menu)
    assert any(city in text for text in replies(done, user.id))


@pytest.mark.parametrize(
    ("language", "telegram_language", "pending_word", "welcome_word", "joined_word"),
    [
        ("en", "en", "waiting for the secretariat", "approved you", "joined"),
        ("tr", "en", "sekretarya", "onayladı", "katıldı"),
        ("sr-Cyrl", "sr", "секретаријат", "одобр", "приступи"),
        ("sl", "de", "sekretariat", "odobril", "pridruži"),
    ],
)
async def test_new_delegate_reaches_the_roster(
    harness: BotHarness,
    language: str,
    telegram_language: str,
    pending_word: str,
    welcome_word: str,
    joined_word: str,
) -> None:
    delegate = User(
        id=22_000_001,
        first_name="Nikos",
        last_name="Papadopoulos",
        username="nikos_thess",
        language_code=telegram_language,
    )
    harness.register(CLIMATE_CHAT)

    start = await harness.command("/start", delegate)
    # Before choosing, the bot speaks Telegram's language if it has it, else the default.
    assert len(replies(start)) == 1

    await register_through_buttons(harness, delegate, language, "GR", "Thessaloniki")
    pending_text = harness.telegram.texts(delegate.id)[-1]
    assert pending_word.lower() in pending_text.lower()

    # The secretariat was told, in Turkish (the secretary's Telegram language), with buttons.
    notice = harness.telegram.sent(SECRETARY.id)[-1]
    async with harness.db.transaction() as session:
        claim = (await session.exec(select(Delegate))).one()
    assert str(delegate.id) in notice.text and "Thessaloniki" in notice.text
    assert f"#{claim.id}" in notice.text and f"/approve {claim.id}" in notice.text
    assert f"dlg:ok:{claim.id}" in [data for _l, data in notice.buttons()]

    approved = await harness.press(f"dlg:ok:{claim.id}", SECRETARY, on=notice)
    assert any("Thessaloniki" in t for t in replies(approved, SECRETARY.id))
    welcome = harness.telegram.texts(delegate.id)[-1]
    assert welcome_word.lower() in welcome.lower()

    # The bot is added to the group; the secretariat links it; the delegate joins.
    await harness.send(my_chat_member(CLIMATE_CHAT, SECRETARY, "left", "member"))
    linked = await harness.command("/link climate", SECRETARY, CLIMATE_CHAT)
    assert "Local Climate Action" in replies(linked, CLIMATE_CHAT.id)[-1]

    await harness.command(f"/language {language}", SECRETARY, CLIMATE_CHAT)
    joined = await harness.command("/join", delegate, CLIMATE_CHAT, address=True)
    assert joined_word.lower() in replies(joined, CLIMATE_CHAT.id)[-1].lower()

    roster = await harness.command("/roster", delegate, CLIMATE_CHAT)
    text = replies(roster, CLIMATE_CHAT.id)[-1]
    assert "Thessaloniki" in text and "Nikos Papadopoulos" in text and "@nikos_thess" in text
    # 09:00 UTC in January is 11:00 in Thessaloniki (UTC+2), not 10:00 or 12:00.
    assert "11:00" in text

    async with harness.db.transaction() as session:
        stored = (await session.exec(select(Delegate))).one()
        assert stored.status == "approved"
        assert len((await session.exec(select(GroupMembership))).all()) == 1
    assert harness.telegram.refused == []
