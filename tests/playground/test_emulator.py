"""The Bot API emulator refuses what Telegram refuses, through python-telegram-bot's own
Bot: the errors the bot would meet in production, raised the way PTB raises them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot, BotCommand, BotCommandScopeAllGroupChats, InlineKeyboardButton
from telegram import InlineKeyboardMarkup as Keyboard
from telegram.error import BadRequest, Forbidden, RetryAfter

from playground.emulator import (
    BOT_TOKEN,
    NOT_MODIFIED,
    EmulatorRequest,
    TelegramEmulator,
)
from playground.updates import User, command

ANA = User(id=31_000_001, first_name="Ana", language_code="sl")


async def bot_for(telegram: TelegramEmulator) -> AsyncIterator[Bot]:
    request = EmulatorRequest(telegram)
    bot = Bot(BOT_TOKEN, request=request, get_updates_request=request)
    async with bot:
        yield bot


@pytest.fixture
async def strict() -> AsyncIterator[tuple[TelegramEmulator, Bot]]:
    telegram = TelegramEmulator(strict=True)
    async for bot in bot_for(telegram):
        yield telegram, bot


@pytest.fixture
async def lenient() -> AsyncIterator[tuple[TelegramEmulator, Bot]]:
    telegram = TelegramEmulator()
    async for bot in bot_for(telegram):
        yield telegram, bot


def keyboard(data: str) -> Keyboard:
    return Keyboard([[InlineKeyboardButton("Press", callback_data=data)]])


async def test_callback_data_over_64_bytes_is_refused(
    lenient: tuple[TelegramEmulator, Bot],
) -> None:
    telegram, bot = lenient
    # 64 bytes exactly is fine; 33 two-byte letters (66 bytes) are not, though only 33 characters.
    await bot.send_message(ANA.id, "ok", reply_markup=keyboard("x" * 64))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(ANA.id, "too long", reply_markup=keyboard("ş" * 33))
    assert [m["text"] for m in telegram.history[ANA.id]] == ["ok"]


async def test_text_over_4096_characters_and_bad_html_are_refused(
    lenient: tuple[TelegramEmulator, Bot],
) -> None:
    telegram, bot = lenient
    await bot.send_message(ANA.id, "x" * 4096)
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(ANA.id, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)parse entities"):
        await bot.send_message(ANA.id, "<b>open", parse_mode="HTML")
    assert len(telegram.history[ANA.id]) == 1


async def test_strict_the_bot_cannot_write_first(strict: tuple[TelegramEmulator, Bot]) -> None:
    telegram, bot = strict
    with pytest.raises(Forbidden, match=r"(?i)initiate conversation"):
        await bot.send_message(ANA.id, "hello")
    telegram.receive(command("/start", ANA))
    await bot.send_message(ANA.id, "hello")
    assert [m["text"] for m in telegram.history[ANA.id]] == ["/start", "hello"]
    # Groups need no start; the bot is in them or it would not get their updates.
    await bot.send_message(-1_001_000_000_777, "to a group")
    assert telegram.refused == [] and telegram.statuses[-3:] == [403, 200, 200]


async def test_strict_edits_must_find_the_message_and_change_it(
    strict: tuple[TelegramEmulator, Bot],
) -> None:
    telegram, bot = strict
    telegram.receive(command("/start", ANA))
    sent = await bot.send_message(ANA.id, "one", reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("two", chat_id=ANA.id, message_id=sent.message_id + 100)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text(
            "one", chat_id=ANA.id, message_id=sent.message_id, reply_markup=keyboard("a")
        )
    # The same text with other buttons is a change.
    await bot.edit_message_text(
        "one", chat_id=ANA.id, message_id=sent.message_id, reply_markup=keyboard("b")
    )
    [shown] = [m for m in telegram.history[ANA.id] if m["message_id"] == sent.message_id]
    assert shown["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "b"
    assert "edit_date" in shown
    assert [why for _method, why, _text in telegram.refused] == [
        "Bad Request: message to edit not found",
        NOT_MODIFIED,
    ]


async def test_429_on_demand_carries_retry_after(lenient: tuple[TelegramEmulator, Bot]) -> None:
    telegram, bot = lenient
    telegram.rate_limit(retry_after=3, chat_id=ANA.id)
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(ANA.id, "now")
    assert "3" in str(raised.value)
    await bot.send_message(ANA.id, "later")  # once only
    assert telegram.statuses[-2:] == [429, 200]


async def test_the_menu_is_kept_per_scope_and_language(
    lenient: tuple[TelegramEmulator, Bot],
) -> None:
    telegram, bot = lenient
    await bot.set_my_commands([BotCommand("help", "Help")])
    await bot.set_my_commands([BotCommand("help", "Pomoč")], language_code="sl")
    await bot.set_my_commands(
        [BotCommand("roster", "Roster")], scope=BotCommandScopeAllGroupChats()
    )
    assert telegram.menu("sl") == [{"command": "help", "description": "Pomoč"}]
    assert telegram.menu("tr") == [{"command": "help", "description": "Help"}]
    assert telegram.menu("sl", "supergroup") == [{"command": "roster", "description": "Roster"}]


async def test_its_state_survives_a_round_trip(lenient: tuple[TelegramEmulator, Bot]) -> None:
    telegram, bot = lenient
    telegram.receive(command("/start", ANA))
    await bot.send_message(ANA.id, "<b>hi</b>", parse_mode="HTML", reply_markup=keyboard("a"))
    await bot.send_document(ANA.id, b"report", filename="report.csv")
    copy = TelegramEmulator()
    copy.restore(telegram.state())
    assert copy.history == telegram.history
    assert copy.started == {ANA.id}
    [upload] = copy.uploads.values()
    assert (upload.name, upload.data) == ("report.csv", b"report")
    # New messages do not reuse the ids of those restored.
    assert copy.next_message_id() > max(m["message_id"] for m in telegram.history[ANA.id])
