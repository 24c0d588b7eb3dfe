"""Broadcasts through the real bot: the secretariat writes, chooses, previews and confirms;
every reachable recipient gets the message exactly once through 429s, 5xx, timeouts,
403s and a migrated chat; the report names the others."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from telegram import Update
from telegram.error import TimedOut

from handlers.context import UNEXPECTED, esc
from locales import _, use_language
from playground.emulator import Call, EmulatorRequest
from playground.updates import User, bot_message, callback, group, message, my_chat_member
from storage import broadcasts as broadcasts_store
from storage import outbox as outbox_store
from storage import roster
from storage.models import AuditEntry, Broadcast, Delegate, OutboxMessage
from storage.roles import Actor
from tests.conftest import (
    SECRETARY,
    BotHarness,
    make_delegate,
    replies,
    snapshot,
    working_group,
)
from tests.handlers.test_unit_of_work import commits_fail

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
    [data] = [d for _label, d in control.buttons() if d.endswith(f":a:{audience}")]
    calls = await harness.press(data, SECRETARY, on=control)
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
    again = replies(await harness.command("/broadcasts 1", SECRETARY), SECRETARY.id)
    assert again == report
    assert harness.telegram.refused == []  # every text was HTML Telegram accepts


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
    # A second country adds to the first; pressed again, it is taken away.
    calls = await harness.press("bc:1:t:countries:RS", SECRETARY, on=control)
    control = _control(calls)
    assert "Recipients: <b>3</b>." in control.text and "— Greece, Serbia" in control.text
    calls = await harness.press("bc:1:t:countries:RS", SECRETARY, on=control)
    control = _control(calls)
    assert "Recipients: <b>2</b>." in control.text
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
    assert any("Broadcast #1 is no longer a draft" in t for t in said), said
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


LUKA = User(id=83_100_005, first_name="Luka", language_code="en")  # Zagreb, HR
OLD_GROUP = group(-8310003, "B40 Economy", supergroup=False)
NEW_GROUP = group(-1008310003, "B40 Economy", supergroup=True)


class _Later:
    """The outbox worker's clock (real time, as the rows' due times are), run ahead."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def _until_done(harness: BotHarness, rounds: int = 30) -> None:
    """Let the outbox's clock run on (retries and floods wait on it) until nothing is left."""
    clock = harness.app.outbox.clock
    if not isinstance(clock, _Later):
        clock = harness.app.outbox.clock = _Later()
    for _round in range(rounds):
        async with harness.db.transaction() as session:
            left = (
                await session.exec(
                    select(OutboxMessage).where(
                        OutboxMessage.sent_at.is_(None),  # type: ignore[union-attr]
                        OutboxMessage.failed_at.is_(None),  # type: ignore[union-attr]
                    )
                )
            ).all()
        if not left:
            return
        clock.ahead += timedelta(minutes=11)
        await harness.settle()
    raise AssertionError(f"{len(left)} messages still owed")


async def test_429_5xx_timeouts_and_403_each_reachable_gets_one_and_the_report_names_the_rest(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _delegates(harness)
    await make_delegate(harness, LUKA, "Zagreb")
    telegram = harness.telegram
    telegram.rate_limit(chat_id=ELENI.id, retry_after=7, times=2)  # flood control, twice
    telegram.fail("sendMessage", chat_id=MARKO.id, status=502, description="Bad Gateway", times=3)
    telegram.block(ANA.id)  # blocked the bot
    telegram.fail(
        "sendMessage",
        chat_id=LUKA.id,
        status=403,
        description="Forbidden: user is deactivated",
        times=10**6,
    )
    # Deniz's first two sends time out before reaching Telegram.
    handle = telegram.handle
    timeouts = {"left": 2}

    def flaky(method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "sendMessage" and params.get("chat_id") == DENIZ.id and timeouts["left"]:
            timeouts["left"] -= 1
            raise TimedOut("Timed out")
        return handle(method, params)

    monkeypatch.setattr(telegram, "handle", flaky)

    control = await _choose(harness, await _draft(harness), "delegates")
    await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    await _until_done(harness)

    assert _received(harness) == Counter({ELENI.id: 1, MARKO.id: 1, DENIZ.id: 1})
    assert timeouts["left"] == 0
    [report] = [t for t in telegram.texts(SECRETARY.id) if "is finished" in t]
    assert report.splitlines() == [
        "📣 <b>Broadcast #1</b> is finished: 3 of 5 recipients reached.",
        "Not reached (2):",
        "• Ana (Thessaloniki) — blocked the bot",
        "• Luka (Zagreb) — the account was deleted",
    ]
    async with harness.db.transaction() as session:
        rows = (await session.exec(select(OutboxMessage).where(OutboxMessage.batch_id == 1))).all()
    by_chat = {row.chat_id: row for row in rows}
    assert by_chat[ELENI.id].attempts == 0  # flood control uses up no attempt
    assert by_chat[MARKO.id].attempts == 3
    assert by_chat[DENIZ.id].attempts == 2
    # The next broadcast knows Ana and Luka refused: counted, named, not sent to.
    control = await _choose(harness, await _draft(harness, "Again"), "delegates")
    assert "2 of them are known to be unreachable" in control.text
    calls_to_ana = len(telegram.sent(ANA.id))
    await harness.press(_button(control, "bc:2:ok:"), SECRETARY, on=control)
    await _until_done(harness)
    assert len(telegram.sent(ANA.id)) == calls_to_ana
    [second] = [t for t in telegram.texts(SECRETARY.id) if "#2</b> is finished" in t]
    assert "• Ana (Thessaloniki) — not sent: refused the bot's last message" in second
    assert "3 of 5 recipients reached" in second


async def test_server_errors_past_every_retry_are_reported_as_given_up(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    harness.telegram.fail(
        "sendMessage", chat_id=MARKO.id, status=500, description="Internal", times=10**6
    )
    control = await _choose(harness, await _draft(harness), "countries")
    calls = await harness.press("bc:1:t:countries:RS", SECRETARY, on=control)
    control = _control(calls)
    await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    await _until_done(harness)
    [report] = [t for t in harness.telegram.texts(SECRETARY.id) if "is finished" in t]
    assert "0 of 1 recipient reached" in report
    assert "• Marko (Belgrade) — Telegram kept failing; given up after every retry" in report
    assert len(harness.telegram.sent(MARKO.id)) - 2 == 8  # two notices, eight attempts


async def test_a_group_that_became_a_supergroup_is_followed_and_gets_it_once(
    harness: BotHarness,
) -> None:
    await harness.command("/language en", SECRETARY)
    await working_group(harness, OLD_GROUP, "economy", [], coordinator=SECRETARY)
    await working_group(harness, CLIMATE, "climate", [], coordinator=SECRETARY)
    harness.register(NEW_GROUP)
    harness.telegram.migrate(OLD_GROUP.id, NEW_GROUP.id)
    control = await _choose(harness, await _draft(harness), "chats")
    assert "Recipients: <b>2</b>." in control.text
    await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    await _until_done(harness)
    assert _received(harness) == Counter({NEW_GROUP.id: 1, CLIMATE.id: 1})
    [report] = [t for t in harness.telegram.texts(SECRETARY.id) if "is finished" in t]
    assert "2 of 2 recipients reached" in report
    # The stored chat followed: the next broadcast goes to the supergroup straight away.
    control = await _choose(harness, await _draft(harness, "Next"), "chats")
    await harness.press(_button(control, "bc:2:ok:"), SECRETARY, on=control)
    await _until_done(harness)
    assert _received(harness, "Next") == Counter({NEW_GROUP.id: 1, CLIMATE.id: 1})
    assert [c for c in harness.telegram.sent(OLD_GROUP.id) if c.text == "Next"] == []


async def test_the_worker_dying_between_send_and_record_repeats_only_that_message(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies right after Telegram took Marko's message, before it was recorded:
    after the lease runs out, Marko gets it again; nobody else gets it twice or not at all."""
    await _delegates(harness)
    control = await _choose(harness, await _draft(harness), "delegates")

    class Died(BaseException):
        pass

    real = outbox_store.mark_sent

    async def dies_after_marko(session: Any, message_id: int, *, now: Any) -> None:
        row = await session.get(OutboxMessage, message_id)
        if row is not None and row.chat_id == MARKO.id:
            raise Died()
        await real(session, message_id, now=now)

    monkeypatch.setattr(outbox_store, "mark_sent", dies_after_marko)
    with pytest.raises(Died):
        await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    monkeypatch.setattr(outbox_store, "mark_sent", real)
    await _until_done(harness)  # the dead worker's lease runs out
    received = _received(harness)
    assert set(received) == {u.id for u, _c in PEOPLE}
    assert [chat for chat, n in received.items() if n > 1] == [MARKO.id]
    assert received[MARKO.id] == 2


STAFF = User(id=83_100_020, first_name="Mehmet", language_code="en")


def message_with_buttons(user: User, *data: str) -> dict[str, Any]:
    return bot_message(user.private, *data)


def _said(calls: list[Call]) -> list[str]:
    """Every text shown to a person: messages, edits and button alerts."""
    return [
        str(c.params.get("text", ""))
        for c in calls
        if c.method in ("sendMessage", "editMessageText", "answerCallbackQuery")
    ]


async def test_only_the_author_confirms_and_a_cancelled_draft_stays_unsent(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    await harness.command(f"/secretariat add {STAFF.id}", SECRETARY)
    control = await _choose(harness, await _draft(harness), "delegates")
    # Another secretariat member, pressing the author's button: not theirs to press.
    calls = await harness.press("bc:1:ok:4", STAFF, on=control)
    assert _said(calls) == [] or all("Broadcast" not in t for t in _said(calls))
    # ... nor on a message of their own that carries the same data.
    own = message_with_buttons(STAFF, "bc:1:ok:4")
    calls = await harness.send(callback("bc:1:ok:4", STAFF, own))
    assert any("only its author can send or cancel it" in t for t in _said(calls)), _said(calls)
    # A delegate forging the same: refused too.
    calls = await harness.send(
        callback("bc:1:ok:4", ELENI, message_with_buttons(ELENI, "bc:1:ok:4"))
    )
    assert any("secretariat" in t for t in _said(calls)), _said(calls)
    assert _received(harness) == Counter()

    calls = await harness.press("bc:1:x", SECRETARY, on=control)
    assert any("was cancelled; nothing was sent" in t for t in _said(calls))
    calls = await harness.press("bc:1:ok:4", SECRETARY, on=control)
    assert any("no longer a draft" in t for t in _said(calls)), _said(calls)
    assert _received(harness) == Counter()
    async with harness.db.transaction() as session:
        [draft] = (await session.exec(select(Broadcast))).all()
        owed = (await session.exec(select(OutboxMessage).where(OutboxMessage.batch_id == 1))).all()
    assert draft.state == "cancelled" and owed == []
    listing = replies(await harness.command("/broadcasts", SECRETARY), SECRETARY.id)
    assert listing == ["No broadcast yet. /broadcast &lt;text&gt; writes one."]


async def test_change_audience_goes_back_to_the_choice(harness: BotHarness) -> None:
    await _delegates(harness)
    control = await _choose(harness, await _draft(harness), "countries")
    calls = await harness.press("bc:1:t:countries:RS", SECRETARY, on=control)
    calls = await harness.press("bc:1:back", SECRETARY, on=_control(calls))
    control = _control(calls)
    assert "Who should receive it?" in control.text
    control = await _choose(harness, control, "countries")
    assert "Choose at least one below." in control.text  # the earlier choice is gone


async def test_a_reply_to_a_formatted_message_is_sent_with_its_formatting(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    original = message(
        "Heat plans: deadline 1 March. Details at the portal. <not a tag> & more",
        SECRETARY,
        SECRETARY.private,
        entities=[
            {"type": "bold", "offset": 0, "length": 10},
            {"type": "italic", "offset": 12, "length": 16},
            {"type": "text_link", "offset": 45, "length": 6, "url": "https://b40.example/portal"},
            {
                "type": "custom_emoji",
                "offset": 0,
                "length": 4,
                "custom_emoji_id": "5368324170671202286",
            },
        ],
    )["message"]
    reply = message("/broadcast", SECRETARY, SECRETARY.private, reply_to_message=original)
    calls = await harness.send(reply)
    expected = (
        "<b>Heat plans</b>: <i>deadline 1 March</i>. Details at the "
        '<a href="https://b40.example/portal">portal</a>. &lt;not a tag&gt; &amp; more'
    )
    assert expected in replies(calls, SECRETARY.id)
    control = await _choose(harness, _control(calls), "delegates")
    await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    assert _received(harness, expected) == Counter({u.id: 1 for u, _c in PEOPLE})
    assert harness.telegram.refused == []  # Telegram took every message as sent


@pytest.mark.parametrize(
    ("text", "entities"),
    [
        ("x" * 5000, []),  # one word longer than a message
        ("word " * 1000, [{"type": "bold", "offset": 11, "length": 4990}]),  # bold too long
        ("\n\n".join(["word " * 700] * 6), []),  # more than four messages
    ],
)
async def test_a_broadcast_that_cannot_be_cut_cleanly_is_refused(
    harness: BotHarness, text: str, entities: list[dict[str, Any]]
) -> None:
    await _delegates(harness)
    before = await snapshot(harness.db)
    shifted = [
        {"type": "bot_command", "offset": 0, "length": 10},
        *({**e, "offset": e["offset"]} for e in entities),
    ]
    calls = await harness.send(
        message(f"/broadcast {text}", SECRETARY, SECRETARY.private, entities=shifted)
    )
    said = replies(calls, SECRETARY.id)
    assert len(said) == 1 and "at most 4 Telegram messages long" in said[0], said
    assert await snapshot(harness.db) == before


async def test_progress_is_redrawn_at_most_once_per_interval(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the redraws on their own timer, as in production: however fast recipients are
    dealt with, two redraws of the control message are at least an interval apart."""
    await _delegates(harness)
    for n in range(8):
        await make_delegate(harness, User(id=83_200_000 + n, first_name=f"D{n}"), "Sofia")
    control = await _choose(harness, await _draft(harness), "delegates")
    progress = harness.app.broadcasts
    progress.automatic, progress.interval = True, 0.1
    telegram = harness.telegram
    handle = telegram.handle
    edits: list[tuple[float, str]] = []

    def timed(method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "editMessageText":
            edits.append((time.monotonic(), str(params["text"])))
        return handle(method, params)

    monkeypatch.setattr(telegram, "handle", timed)
    answer = EmulatorRequest.do_request

    async def slow(self: EmulatorRequest, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.endswith("/sendMessage"):
            await asyncio.sleep(0.03)  # Telegram taking its time with each message
        return await answer(self, url, *args, **kwargs)

    monkeypatch.setattr(EmulatorRequest, "do_request", slow)
    # Processed and delivered as the bot does, without the tests' forced redraw (settle).
    on = telegram._message(control.params, message_id=4242)
    press = callback(_button(control, "bc:1:ok:"), SECRETARY, on)
    await harness.app.process_update(Update.de_json(press, harness.app.bot))
    await harness.app.outbox.deliver_due()
    for _wait in range(50):
        if any("left 0" in text for _t, text in edits):
            break
        await asyncio.sleep(0.05)
    redraws = [at for at, _text in edits]  # the confirmation's own edit first
    assert "Sent 0 · not reached 0 · left 12 (of 12)" in edits[0][1]
    assert "Sent 12 · not reached 0 · left 0 (of 12)" in edits[-1][1]
    assert len(redraws) >= 3
    gaps = [b - a for a, b in itertools.pairwise(redraws)]
    assert all(gap >= 0.1 - 0.005 for gap in gaps), (gaps, edits)


async def test_send_pressed_twice_at_the_same_moment_queues_it_once(harness: BotHarness) -> None:
    """Two presses processed at once (PostgreSQL serves them on two connections, the draft's
    row lock makes the second wait): one confirms, the other is told, nothing is doubled."""
    await _delegates(harness)
    control = await _choose(harness, await _draft(harness), "delegates")
    on = harness.telegram._message(control.params, message_id=4242)
    presses = [
        Update.de_json(callback("bc:1:ok:4", SECRETARY, on), harness.app.bot) for _ in range(2)
    ]
    before = len(harness.telegram.calls)
    await asyncio.wait_for(
        asyncio.gather(*(harness.app.process_update(p) for p in presses)), timeout=60
    )
    await harness.settle()
    said = _said(harness.telegram.calls[before:])
    assert sum("Sending broadcast #1." in t for t in said) == 1, said
    assert sum("no longer a draft" in t for t in said) == 1, said
    assert _received(harness) == Counter({u.id: 1 for u, _c in PEOPLE})
    async with harness.db.transaction() as session:
        rows = (await session.exec(select(OutboxMessage).where(OutboxMessage.batch_id == 1))).all()
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "broadcast.confirm"))
        ).all()
    assert len(rows) == 4 and len(audit) == 1


async def test_a_confirmation_whose_commit_fails_queues_nothing_and_can_be_pressed_again(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    control = await _choose(harness, await _draft(harness), "delegates")
    before = await snapshot(harness.db)
    on = harness.telegram._message(control.params, message_id=4242)
    start = len(harness.telegram.calls)
    with commits_fail(harness):
        press = Update.de_json(callback("bc:1:ok:4", SECRETARY, on), harness.app.bot)
        await harness.app.process_update(press)
    said = _said(harness.telegram.calls[start:])
    with use_language("tr"):  # the apology speaks the app's language, without the database
        assert said == [esc(_(UNEXPECTED))]
    assert await snapshot(harness.db) == before  # no row owed, the draft still a draft
    await harness.press("bc:1:ok:4", SECRETARY, on=control)
    assert _received(harness) == Counter({u.id: 1 for u, _c in PEOPLE})


async def test_two_broadcasts_in_flight_each_finish_and_report_on_their_own(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    harness.telegram.rate_limit(chat_id=MARKO.id, retry_after=600, times=1)
    first = await _choose(harness, await _draft(harness, "First"), "countries")
    calls = await harness.press("bc:1:t:countries:RS", SECRETARY, on=first)
    first = _control(calls)
    second = await _choose(harness, await _draft(harness, "Second"), "countries")
    calls = await harness.press("bc:2:t:countries:GR", SECRETARY, on=second)
    second = _control(calls)
    await harness.press(_button(first, "bc:1:ok:"), SECRETARY, on=first)  # Marko waits 10 min
    await harness.press(_button(second, "bc:2:ok:"), SECRETARY, on=second)
    texts = harness.telegram.texts(SECRETARY.id)
    assert [t for t in texts if "is finished" in t] == [
        "📣 <b>Broadcast #2</b> is finished: 2 of 2 recipients reached.\n"
        "Everyone was reached, once."
    ]
    async with harness.db.transaction() as session:
        states = {b.id: b.state for b in (await session.exec(select(Broadcast))).all()}
    assert states == {1: "sending", 2: "done"}
    listing = replies(await harness.command("/broadcasts", SECRETARY), SECRETARY.id)[0]
    assert "#1 ·" in listing and "sending · sent 0, not reached 0, left 1" in listing
    await _until_done(harness)
    finished = [t for t in harness.telegram.texts(SECRETARY.id) if "is finished" in t]
    assert len(finished) == 2 and "#1</b> is finished: 1 of 1 recipient reached" in finished[1]
    assert _received(harness, "First") == Counter({MARKO.id: 1})
    assert _received(harness, "Second") == Counter({ELENI.id: 1, ANA.id: 1})
    async with harness.db.transaction() as session:
        audited = [
            e
            for e in (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
            if e.action.startswith("broadcast.")
        ]
        stored = (await session.exec(select(Broadcast).order_by(col(Broadcast.id)))).all()
    entries = [(e.action, e.subject) for e in audited]
    assert [e.actor_id for e in audited] == [SECRETARY.id] * 4 + [None, None]
    assert [(e.actor_id, e.details) for e in audited if e.action == "broadcast.confirm"] == [
        (
            SECRETARY.id,
            {"audience": "countries", "targets": ["RS"], "recipients": 1, "unreachable": 0},
        ),
        (
            SECRETARY.id,
            {"audience": "countries", "targets": ["GR"], "recipients": 2, "unreachable": 0},
        ),
    ]
    assert [(b.id, b.recipients, b.state) for b in stored] == [(1, 1, "done"), (2, 2, "done")]
    assert all(b.confirmed_at and b.finished_at and b.finished_at >= b.confirmed_at for b in stored)
    assert [e.details for e in audited if e.action == "broadcast.done"] == [
        {"sent": 2, "failed": 0},
        {"sent": 1, "failed": 0},
    ]
    assert entries == [
        ("broadcast.draft", "broadcast:1"),
        ("broadcast.draft", "broadcast:2"),
        ("broadcast.confirm", "broadcast:1"),
        ("broadcast.confirm", "broadcast:2"),
        ("broadcast.done", "broadcast:2"),
        ("broadcast.done", "broadcast:1"),
    ]


async def test_broadcasts_lists_the_ten_latest_drafts_included(harness: BotHarness) -> None:
    await harness.command("/language en", SECRETARY)
    for n in range(11):
        await _draft(harness, f"Draft {n}")
    await harness.press("bc:12:x", SECRETARY, on=await _draft(harness, "Dropped"))
    listing = replies(await harness.command("/broadcasts", SECRETARY), SECRETARY.id)[0]
    numbers = re.findall(r"^#(\d+) ·", listing, flags=re.MULTILINE)
    assert numbers == [str(n) for n in range(11, 1, -1)]  # #12 was cancelled; #1 is the 11th
    assert "· draft" in listing
    async with harness.db.transaction() as session:
        [dropped] = (await session.exec(select(Broadcast).where(Broadcast.id == 12))).all()
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "broadcast.cancel"))
        ).all()
    assert dropped.state == "cancelled" and dropped.finished_at is not None
    assert [(a.subject, a.actor_id) for a in audit] == [("broadcast:12", SECRETARY.id)]


async def test_a_delegate_the_bot_never_met_is_named_by_id(harness: BotHarness) -> None:
    await _delegates(harness)
    async with harness.db.transaction() as session:
        sofia = await roster.find_city(session, "Sofia")
        session.add(Delegate(user_id=83_100_099, city_id=sofia.id or 0, status="approved"))
    harness.telegram.fail(
        "sendMessage", chat_id=83_100_099, status=400, description="Bad Request: chat not found"
    )
    control = await _choose(harness, await _draft(harness), "delegates")
    await harness.press(_button(control, "bc:1:ok:5"), SECRETARY, on=control)
    [report] = [t for t in harness.telegram.texts(SECRETARY.id) if "is finished" in t]
    assert report.splitlines()[-1] == "• 83100099 — Telegram knows no such chat"


async def test_a_group_chat_that_removed_the_bot_is_counted_named_and_not_sent_to(
    harness: BotHarness,
) -> None:
    await harness.command("/language en", SECRETARY)
    await working_group(harness, CLIMATE, "climate", [], coordinator=SECRETARY)
    await working_group(harness, SMART, "smart-cities", [], coordinator=SECRETARY)
    await harness.send(my_chat_member(SMART, SECRETARY, "member", "left"))
    control = await _choose(harness, await _draft(harness), "chats")
    assert "Recipients: <b>2</b>." in control.text
    assert "1 of them is known to be unreachable" in control.text
    await harness.press(_button(control, "bc:1:ok:2"), SECRETARY, on=control)
    assert _received(harness) == Counter({CLIMATE.id: 1})
    [report] = [t for t in harness.telegram.texts(SECRETARY.id) if "is finished" in t]
    assert report.splitlines()[-1] == (
        "• B40 Smart Cities (Smart Cities and Digital Transformation) — "
        "the bot is no longer in this chat"
    )


async def test_stop_keeps_the_rest_from_being_sent_and_the_report_counts_them(
    harness: BotHarness,
) -> None:
    await _delegates(harness)
    # Two chats are told to wait ten minutes: they are still owed when Stop is pressed.
    harness.telegram.rate_limit(chat_id=MARKO.id, retry_after=600)
    harness.telegram.rate_limit(chat_id=DENIZ.id, retry_after=600)
    control = await _choose(harness, await _draft(harness), "delegates")
    calls = await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    progress = [c for c in calls if c.method == "editMessageText"][-1]
    assert ("⏹ Stop sending", "bc:1:stop") in progress.buttons()
    assert "Sent 2 · not reached 0 · left 2 (of 4)" in progress.text
    # Only the author stops it.
    forged = await harness.send(
        callback("bc:1:stop", STAFF, message_with_buttons(STAFF, "bc:1:stop"))
    )
    assert any("secretariat" in t for t in _said(forged)), _said(forged)

    calls = await harness.press("bc:1:stop", SECRETARY, on=progress)
    assert "Broadcast #1 stopped: 2 recipients will not get it." in _said(calls)
    await _until_done(harness)
    assert _received(harness) == Counter({ELENI.id: 1, ANA.id: 1})
    [report] = [t for t in harness.telegram.texts(SECRETARY.id) if "is finished" in t]
    assert report.splitlines() == [
        "📣 <b>Broadcast #1</b> is finished: 2 of 4 recipients reached.",
        "You stopped it: 2 recipients were not sent it.",
    ]
    last = [c for c in harness.telegram.calls if c.method == "editMessageText"][-1]
    assert "Finished" in last.text and last.buttons() == []
    again = await harness.press("bc:1:stop", SECRETARY, on=progress)
    assert any("there is nothing to stop" in t for t in _said(again)), _said(again)
    async with harness.db.transaction() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "broadcast.stop"))
        ).all()
    assert [(a.subject, a.actor_id, a.details) for a in audit] == [
        ("broadcast:1", SECRETARY.id, {"stopped": 2})
    ]


async def test_stop_while_the_worker_holds_the_rest_sends_none_of_it(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop pressed while the worker is in the middle of its batch: what it has leased is
    not sent; every recipient got it once or not at all, and the report agrees."""
    await _delegates(harness)
    people = [User(id=83_300_000 + n, first_name=f"S{n}") for n in range(8)]
    for person in people:
        await make_delegate(harness, person, "Sofia")
    await harness.command(f"/secretariat add {STAFF.id}", SECRETARY)
    control = await _choose(harness, await _draft(harness), "delegates")
    telegram = harness.telegram
    handle = telegram.handle
    stopping: list[asyncio.Task[None]] = []

    async def stop_now() -> None:
        async with harness.db.transaction() as session:
            actor = Actor(user_id=SECRETARY.id, is_secretariat=True)
            await broadcasts_store.stop(session, actor=actor, broadcast_id=1, now=datetime.now(UTC))
        harness.app.stopped(1)

    def stop_after_the_first(method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        answer = handle(method, params)
        if method == "sendMessage" and params.get("text") == TEXT and not stopping:
            stopping.append(asyncio.get_running_loop().create_task(stop_now()))
        return answer

    monkeypatch.setattr(telegram, "handle", stop_after_the_first)
    await harness.press(_button(control, "bc:1:ok:"), SECRETARY, on=control)
    await stopping[0]
    await _until_done(harness)
    received = _received(harness)
    assert set(received.values()) == {1} and 1 <= len(received) < 12
    [report] = [t for t in telegram.texts(SECRETARY.id) if "is finished" in t]
    assert report.splitlines() == [
        f"📣 <b>Broadcast #1</b> is finished: {len(received)} of 12 recipients reached.",
        f"You stopped it: {12 - len(received)} recipients were not sent it.",
    ]
