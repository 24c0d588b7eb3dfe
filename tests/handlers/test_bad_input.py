"""Bad input gets a clear, translated reply; nothing stored changes; the bot keeps answering."""

from __future__ import annotations

import pytest

from playground.updates import User, bot_message, callback, group, message
from tests.conftest import (
    SECRETARY,
    BotHarness,
    approve_button,
    link_chat,
    make_delegate,
    replies,
    snapshot,
)

STRANGER = User(id=33_000_001, first_name="Mallory", language_code="en")
DELEGATE = User(id=33_000_002, first_name="Ana", last_name="Popescu", language_code="ro")
CHAT = group(-1009876543210, "B40 Smart Cities")


async def refused(
    harness: BotHarness, text: str, user: User, chat: object = None, *, expect: str
) -> str:
    """Send a command that must be refused; returns the reply after checking nothing changed."""
    before = await snapshot(harness.db)
    calls = await harness.command(text, user, chat)  # type: ignore[arg-type]
    texts = replies(calls)
    assert len(texts) == 1, texts
    assert expect.lower() in texts[0].lower(), texts[0]
    assert "Traceback" not in texts[0]
    assert await snapshot(harness.db) == before
    assert harness.telegram.refused == []
    # ... and the bot still answers.
    assert replies(await harness.command("/help", user))
    return texts[0]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("/iam Atlantis", "don't know a member city called “Atlantis”"),
        ("/iam", "/iam <city>"),
        ("/iam " + "x" * 5000, "too long"),
        ("/iam 🏙️🌉", "don't know a member city called “🏙️🌉”"),
        ("/iam \u202eluhcsi", "called “luhcsi”"),  # the bidi override is not echoed
        ("/approve 12345", "only the secretariat"),
        ("/reject someone", "/reject &lt;number&gt;"),
        ("/approve 1", "only the secretariat"),
        ("/secretariat add 0", "only the secretariat"),
        ("/secretariat add 1", "only the secretariat"),
        ("/join", "working group's chat"),
        ("/roster", "working group's chat"),
        ("/link climate", "working group's chat"),
        ("/newgroup water Water", "term presidency or the secretariat"),
        ("/presidency 2027 Sofia", "only the secretariat"),
        ("/presidency next year", "/presidency <year> <city>"),
        ("/apply Atlantis", "/apply <city>, <country code>, <IANA zone>"),
        ("/apply Atlantis, QQ, Europe/Atlantis", "not a country code"),
        ("/apply Ohrid, MK, Europe/Ohrid", "not a time zone"),
        ("/apply 🏙️, MK, Europe/Skopje", "letters"),
        ("/apply İstanbul, TR, Europe/Istanbul", "already a member city"),
        ("/language klingon", "not one of my languages"),
        ("/frobnicate", "I don't know that command. /help lists what I can do."),
    ],
)
async def test_private_chat_refusals(harness: BotHarness, text: str, expect: str) -> None:
    reply = await refused(
        harness, text, STRANGER, expect=expect.replace("<", "&lt;").replace(">", "&gt;")
    )
    assert "<city>" not in reply  # angle brackets arrive escaped, so Telegram shows them


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("/join", "not linked to a working group"),
        # The secretary writes in Turkish (Telegram's language_code "tr").
        ("/link nonsense", "“nonsense” adında bir çalışma grubu yok"),
        ("/link", "/link &lt;grup&gt;"),
        ("/coordinator 1", "not linked"),
    ],
)
async def test_unlinked_group_chat_refusals(harness: BotHarness, text: str, expect: str) -> None:
    harness.register(CHAT)
    user = SECRETARY if text.startswith("/link") else STRANGER
    await refused(harness, text, user, CHAT, expect=expect)


async def test_linked_chat_refusals(harness: BotHarness) -> None:
    await link_chat(harness, CHAT, "smart-cities")
    await refused(harness, "/join", STRANGER, CHAT, expect="not a delegate")
    await harness.command("/iam Constanța", DELEGATE)
    await harness.command("/language en", SECRETARY, CHAT)
    # Pending, not yet approved: the refusal says so, not that the city is not a member.
    await refused(
        harness,
        "/leave",
        DELEGATE,
        CHAT,
        expect="your request to represent constanța is still waiting for the secretariat",
    )
    notice, approve = approve_button(harness, DELEGATE.id)
    await harness.press(approve, SECRETARY, on=notice)
    await refused(
        harness,
        "/leave",
        DELEGATE,
        CHAT,
        expect="constanța is not a member of smart cities and digital transformation",
    )
    await refused(harness, "/coordinator 999", SECRETARY, CHAT, expect="999")
    await refused(harness, "/coordinator abc", SECRETARY, CHAT, expect="/coordinator")
    await refused(
        harness, f"/coordinator {DELEGATE.id}", STRANGER, CHAT, expect="only the secretariat"
    )


async def test_double_join_is_refused(harness: BotHarness) -> None:
    await link_chat(harness, CHAT, "smart-cities")
    await make_delegate(harness, DELEGATE, "Constanța")
    await harness.command("/join", DELEGATE, CHAT)
    await refused(harness, "/join", DELEGATE, CHAT, expect="Constanța")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # Real button shapes pressed by someone who may not: refused with the reason.
        ("dlg:ok:33000002", "only the secretariat"),
        ("ng:ok:1", "term presidency or the secretariat"),
        ("app:ok:77", "only the secretariat"),
        # Data no keyboard of ours produced: refused silently.
        ("reg:city:999999", None),
        ("reg:cc:ZZ", None),
        ("reg:lang:xx", None),
        ("reg:role:1:emperor", None),
        ("nonsense", None),
        ("dlg:ok:1; DROP TABLE city", None),
        # Finding 8: an id past 64 bits was "something went wrong" and an error log.
        ("dlg:ok:99999999999999999999", None),
        ("app:ok:99999999999999999999", None),
        ("", None),
    ],
)
async def test_buttons_cannot_be_forged(harness: BotHarness, data: str, reason: str | None) -> None:
    await harness.command("/iam Constanța", DELEGATE)
    before = await snapshot(harness.db)
    # The data is on the message it is pressed on, in the presser's own chat: only the
    # rules (or the shape of the data) can refuse it.
    calls = await harness.send(callback(data, STRANGER, bot_message(STRANGER.private, data)))
    # Only the callback is answered (so the client stops spinning); nothing else happens.
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    answer = calls[0].params
    if reason is None:
        assert "text" not in answer
    else:
        assert reason in answer["text"].lower() and answer["show_alert"] is True
    assert await snapshot(harness.db) == before


async def test_unexpected_errors_are_logged_and_apologised_for(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from storage import roster

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(roster, "list_cities", broken)
    before = await snapshot(harness.db)
    calls = await harness.command("/cities", STRANGER)
    texts = replies(calls)
    assert len(texts) == 1 and "something went wrong" in texts[0].lower()
    assert "database on fire" not in texts[0] and "Traceback" not in texts[0]
    assert "database on fire" in caplog.text and "33000001" in caplog.text
    assert await snapshot(harness.db) == before


@pytest.mark.parametrize(
    "where",
    ["not on the message", "on a group message", "in someone else's chat", "no keyboard"],
)
async def test_buttons_count_only_where_they_were_drawn(harness: BotHarness, where: str) -> None:
    """Finding 15: a registration button pressed on the bot's /roster message in a group
    replaced that message with the registration keyboard."""
    await link_chat(harness, CHAT, "smart-cities")
    data = "reg:lang:tr"
    message = {
        "not on the message": bot_message(STRANGER.private, "reg:lang:el"),
        "on a group message": bot_message(CHAT, data, text="Roster"),
        "in someone else's chat": bot_message(DELEGATE.private, data),
        "no keyboard": bot_message(STRANGER.private),
    }[where]
    before = await snapshot(harness.db)
    calls = await harness.send(callback(data, STRANGER, message, CHAT))
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    assert "text" not in calls[0].params
    assert await snapshot(harness.db) == before


async def test_the_same_button_on_its_own_message_works(harness: BotHarness) -> None:
    """The control for the test above: the same data, drawn where it is pressed."""
    calls = await harness.send(
        callback("reg:lang:tr", STRANGER, bot_message(STRANGER.private, "reg:lang:tr"))
    )
    edits = [c for c in calls if c.method == "editMessageText"]
    assert len(edits) == 1 and "reg:cc:TR" in [d for _l, d in edits[0].buttons()]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        # Finding 16: ids that cannot be Telegram users were stored, and every notice failed.
        ("/secretariat add 0", "0 is not a telegram user id"),
        ("/secretariat add 9223372036854775807", "9223372036854775807 is not a telegram user id"),
        ("/secretariat add 99999999999999999999", "is not a telegram user id"),
        # Finding 16: a year outside the network's life said "overlaps another".
        ("/presidency 2020 Sofia", "2020 cannot be a term of the network: give a year from 2021"),
        ("/approve 99999999999", "/approve &lt;number&gt;"),
    ],
)
async def test_secretariat_refusals(harness: BotHarness, text: str, expect: str) -> None:
    await harness.command("/language en", SECRETARY)
    await refused(harness, text, SECRETARY, expect=expect)


async def test_an_unknown_language_lists_the_ones_there_are(harness: BotHarness) -> None:
    someone = User(id=66_100_001, first_name="Hans", language_code="en")
    [told] = replies(await harness.command("/language klingon", someone))
    assert told == (
        "“klingon” is not one of my languages: en, tr, el, bg, ro, sr-Latn, sr-Cyrl, hr, bs, sq, "
        "mk, sl."
    )


async def test_the_language_menu_works_in_a_group_and_odd_codes_are_forged(
    harness: BotHarness,
) -> None:
    await link_chat(harness, CHAT, "smart-cities")
    menu = await harness.command("/language", SECRETARY, CHAT)
    [drawn] = [c for c in menu if c.method == "sendMessage" and c.chat_id == CHAT.id]
    assert "lang:el" in [data for _label, data in drawn.buttons()]
    chosen = await harness.press("lang:el", SECRETARY, on=drawn, chat=CHAT)
    assert replies(chosen, CHAT.id) == ["Σε αυτή τη συνομιλία θα επικοινωνώ στα Ελληνικά."]
    # Codes that are not the menu's own spelling were not drawn by the bot.
    before = await snapshot(harness.db)
    for data in ("lang:EL", "lang:xx"):
        odd = await harness.press(data, SECRETARY, on=None, chat=SECRETARY.private)
        forged = await harness.send(callback(data, SECRETARY, bot_message(SECRETARY.private, data)))
        for calls in (odd, forged):
            assert [c.method for c in calls] == ["answerCallbackQuery"]
            assert calls[0].params.get("text") is None
    assert await snapshot(harness.db) == before


async def test_a_cancel_button_counts_only_in_a_groups_chat(harness: BotHarness) -> None:
    """The bot draws session buttons in group chats; one in a private chat is forged."""
    await link_chat(harness, CHAT, "smart-cities")
    await harness.command("/schedule 2026-02-10 10:00", SECRETARY, CHAT)
    before = await snapshot(harness.db)
    forged = await harness.send(
        callback("ses:cancel:1", SECRETARY, bot_message(SECRETARY.private, "ses:cancel:1"))
    )
    assert [c.method for c in forged] == ["answerCallbackQuery"]
    assert await snapshot(harness.db) == before


async def test_plain_text_in_private_is_pointed_to_the_commands(harness: BotHarness) -> None:
    someone = User(id=66_100_002, first_name="Lea", language_code="sl")
    told = replies(await harness.send(message("hello, bot", someone, someone.private)))
    assert told == ["Delujem z ukazi. /help izpiše, kaj lahko storim."]
    # In a group, chatter gets no answer at all.
    assert await harness.send(message("hello, all", someone, CHAT)) == []
