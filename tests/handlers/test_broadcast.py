"""Broadcasts through the real bot: the secretariat writes, chooses, previews and confirms;
every reachable recipient gets the message exactly once through 429s, 5xx, timeouts,
403s and a migrated chat; the report names the others."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from playground.emulator import Call
from playground.updates import User, group, message
from storage.models import Broadcast, OutboxMessage
from tests.conftest import (
    SECRETARY,
    BotHarness,
    make_delegate,
    replies,
    snapshot,
    working_group,
)

ELENI = User(id=83_100_001, first_name="Eleni", language_code="en")  # Athens, GR
MARKO = User(id=83_100_002, first_name="Marko", language_code="en")  # Belgrade, RS
DENIZ = User(id=83_100_003, first_name="Deniz", language_code="en")  # İstanbul, TR
ANA = User(id=83_100_004, first_name="Ana", language_code="en")  # Thessaloniki, GR
PEOPLE = ((ELENI, "Athens"), (MARKO, "Belgrade"), (DENIZ, "İstanbul"), (ANA, "Thessaloniki"))
CLIMATE = group(-1008310001, "B40 Climate")
SMART = group(-1008310002, "B40 Smart Cities")

TEXT = "The summit is on 12 May in Thessaloniki."


async def _delegates(harness: BotHarness) -> None:
    await harness.command("/language en", SECRETARY)
    for user, city in PEOPLE:
        await make_delegate(harness, user, city)


def _control(calls: list[Call]) -> Call:
    """The message of the bot's that carries a broadcast's buttons."""
    [control] = [c for c in calls if any(d.startswith("bc:") for _l, d in c.buttons())]
    return control


def _button(call: Call, prefix: str) -> str:
    [data] = [d for _label, d in call.buttons() if d.startswith(prefix)]
    return data


async def _draft(harness: BotHarness, text: str = TEXT, **extra: Any) -> Call:
    calls = await harness.send(message(f"/broadcast {text}", SECRETARY, SECRETARY.private, **extra))
    return _control(calls)


async def _choose(harness: BotHarness, control: Call, audience: str) -> Call:
    calls = await harness.press(_button(control, f"bc:1:a:{audience}"), SECRETARY, on=control)
    return _control(calls)


def _received(harness: BotHarness, text: str = TEXT) -> Counter[int]:
    """Chat id -> how many accepted messages with this text it got (the author's preview
    aside)."""
    telegram = harness.telegram
    return Counter(
        call.chat_id
        for call, status in zip(telegram.calls, telegram.statuses, strict=True)
        if call.method == "sendMessage"
        and status == 200
        and call.text == text
        and call.chat_id not in (None, SECRETARY.id)
    )


async def test_a_broadcast_to_every_delegate_reaches_each_once_and_reports(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    calls = await harness.send(
        message(
            f"/broadcast {TEXT}",
            SECRETARY,
            SECRETARY.private,
            entities=[
                {"type": "bot_command", "offset": 0, "length": 10},
                {"type": "bold", "offset": 11, "length": 10},
            ],
        )
    )
    # The preview is the message exactly as recipients will see it, formatting kept.
    shown = "<b>The summit</b> is on 12 May in Thessaloniki."
    assert shown in replies(calls, SECRETARY.id)
    control = _control(calls)
    assert "Who should receive it?" in control.text

    control = await _choose(harness, control, "delegates")
    assert "Recipients: <b>4</b>." in control.text
    send = _button(control, "bc:1:ok:")
    assert send == "bc:1:ok:4"
    assert _received(harness, shown) == Counter()  # nothing before Send

    calls = await harness.press(send, SECRETARY, on=control)
    assert _received(harness, shown) == Counter({u.id: 1 for u, _c in PEOPLE})
    report = [t for t in replies(calls, SECRETARY.id) if "is finished" in t]
    assert report == [
        "📣 <b>Broadcast #1</b> is finished: 4 of 4 recipients reached.\n"
        "Everyone was reached, once."
    ]
    # The control message became the progress message, and shows the end.
    progress = [c.text for c in calls if c.method == "editMessageText"]
    assert "Sent 0 · not reached 0 · left 4 (of 4)" in progress[0]
    assert "Sent 4 · not reached 0 · left 0 (of 4)" in progress[-1]
    assert "Finished" in progress[-1]

    listing = replies(await harness.command("/broadcasts", SECRETARY), SECRETARY.id)
    assert "#1" in listing[0] and "finished" in listing[0] and "sent 4, not reached 0" in listing[0]


async def test_delegates_of_chosen_countries_and_chats_of_chosen_groups(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    control = await _choose(harness, await _draft(harness), "countries")
    assert "Choose at least one below." in control.text
    assert not [d for _l, d in control.buttons() if d.startswith("bc:1:ok:")]
    calls = await harness.press("bc:1:t:countries:GR", SECRETARY, on=control)
    control = _control(calls)
    assert "Recipients: <b>2</b>." in control.text  # Eleni and Ana
    assert ("✅ Greece", "bc:1:t:countries:GR") in control.buttons()
    calls = await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    assert _received(harness) == Counter({ELENI.id: 1, ANA.id: 1})

    await working_group(harness, CLIMATE, "climate", [], coordinator=SECRETARY)
    await working_group(harness, SMART, "smart-cities", [], coordinator=SECRETARY)
    control = await _draft(harness, "Second")
    calls = await harness.press("bc:2:a:groups", SECRETARY, on=control)
    calls = await harness.press("bc:2:t:groups:smart-cities", SECRETARY, on=_control(calls))
    control = _control(calls)
    assert "Recipients: <b>1</b>." in control.text
    await harness.press(_button(control, "bc:2:ok:"), SECRETARY, on=control)
    assert _received(harness, "Second") == Counter({SMART.id: 1})


async def test_confirm_pressed_twice_or_after_the_roster_changed_sends_nothing_twice(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    control = await _choose(harness, await _draft(harness), "delegates")
    # A delegate joins between the preview (4) and the press: the count shown would lie.
    late = User(id=83_100_009, first_name="Luka", language_code="en")
    await make_delegate(harness, late, "Zagreb")
    calls = await harness.press("bc:1:ok:4", SECRETARY, on=control)
    alert = [c for c in calls if c.method == "answerCallbackQuery"]
    assert "now 5 recipients" in alert[0].params["text"]
    assert _received(harness) == Counter()
    control = _control(calls)
    assert "Recipients: <b>5</b>." in control.text

    await harness.press("bc:1:ok:5", SECRETARY, on=control)
    again = await harness.press("bc:1:ok:5", SECRETARY, on=control)
    said = replies(again) + [c.params.get("text", "") for c in again]
    assert any("no longer a draft" in t for t in said), said
    assert _received(harness) == Counter({u.id: 1 for u in (ELENI, MARKO, DENIZ, ANA, late)})
    async with harness.db.transaction() as session:
        rows = (await session.exec(select(OutboxMessage).where(OutboxMessage.batch_id == 1))).all()
    assert len(rows) == 5


async def test_refusals_change_nothing(harness: BotHarness) -> None:
    await _delegates(harness)
    before = await snapshot(harness.db)
    cases = {
        "/broadcast": "Write the broadcast after the command",
        "/broadcast   ": "Write the broadcast after the command",
    }
    for text, expected in cases.items():
        calls = await harness.command(text, SECRETARY)
        assert any(expected in t for t in replies(calls, SECRETARY.id)), (text, replies(calls))
    # Not the secretariat; not in private.
    calls = await harness.command(f"/broadcast {TEXT}", ELENI)
    assert any("secretariat" in t for t in replies(calls, ELENI.id))
    harness.register(CLIMATE)
    calls = await harness.command(f"/broadcast {TEXT}", SECRETARY, CLIMATE)
    assert any("private chat" in t for t in replies(calls, CLIMATE.id))
    assert await snapshot(harness.db) == before


@pytest.mark.parametrize("hours", [0])
async def test_a_long_broadcast_is_cut_at_paragraphs_and_each_part_arrives_once(
    harness: BotHarness, hours: int
) -> None:
    await _delegates(harness)
    paragraphs = [f"Paragraph {n}: " + "word " * 300 for n in range(1, 5)]
    text = "\n\n".join(p.strip() for p in paragraphs)  # about 6,400 characters
    control = await _choose(harness, await _draft(harness, text), "delegates")
    assert "2 messages long" in control.text
    harness.clock.now += timedelta(hours=hours)
    await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    for user, _city in PEOPLE:
        got = [c.text for c in harness.telegram.sent(user.id) if c.text.startswith("Paragraph")]
        assert len(got) == 2
        assert got[0].endswith("word") and got[1].startswith("Paragraph 3")
        assert "\n\n".join(got) == text


async def test_the_draft_is_stored_once_per_command(harness: BotHarness) -> None:
    await _delegates(harness)
    await _draft(harness)
    async with harness.db.transaction() as session:
        drafts = (await session.exec(select(Broadcast))).all()
    assert [(d.state, d.parts, d.author_id) for d in drafts] == [("draft", 1, SECRETARY.id)]
