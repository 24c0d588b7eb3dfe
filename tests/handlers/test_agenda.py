"""The agenda through the real bot: requests from cities, the organisers' decisions, supports
and opinions, the deadline, the order and time of the items, /next and the reminders, the
outcomes after the session; and every refusal explained with nothing changed.

The group spans three offsets in winter (Belgrade +1, Athens +2, İstanbul +3), so a
deadline shown at the wrong offset cannot pass."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from telegram import Update

from bot.application import sweep_sessions
from playground.emulator import Call
from playground.updates import User, callback, group
from storage import audit
from storage.models import AgendaItem, AgendaOpinion, AgendaSupport, WorkingSession
from tests.conftest import (
    SECRETARY,
    BotHarness,
    Clock,
    link_chat,
    make_delegate,
    replies,
    snapshot,
    working_group,
)

CHAT = group(-1007790001, "B40 Climate")
OTHER_CHAT = group(-1007790002, "B40 Smart Cities")
COORDINATOR = User(id=79_100_001, first_name="Marko", language_code="en")  # Belgrade
ELENI = User(id=79_100_002, first_name="Eleni", language_code="en")  # Athens
DENIZ = User(id=79_100_003, first_name="Deniz", language_code="en")  # İstanbul
OUTSIDER = User(id=79_100_004, first_name="Ana", language_code="en")  # Zagreb, not in the group
STRANGER = User(id=79_100_005, first_name="Alex", language_code="en")  # nobody's delegate
KOSTAS = User(id=79_100_006, first_name="Kostas", language_code="en")  # Athens too
MEMBERS = ((COORDINATOR, "Belgrade"), (ELENI, "Athens"), (DENIZ, "İstanbul"))

# 2026-02-10 10:00 Belgrade is 09:00 UTC; requests close 7 days before.
FIRST = "/schedule 2026-02-10 10:00 Europe/Belgrade 90 | Winter session"
FIRST_DEADLINE = "Tuesday, 3 February 2026 10:00 Belgrade · 11:00 Athens · 12:00 İstanbul"


async def _climate_group(harness: BotHarness) -> None:
    await working_group(harness, CHAT, "climate", MEMBERS, coordinator=COORDINATOR)
    await make_delegate(harness, KOSTAS, "Athens")
    await make_delegate(harness, OUTSIDER, "Zagreb")


async def _schedule(harness: BotHarness, text: str = FIRST) -> WorkingSession:
    calls = await harness.command(text, COORDINATOR, CHAT)
    assert any("is fixed" in t for t in replies(calls, CHAT.id)), replies(calls)
    async with harness.db.transaction() as session:
        rows = await session.exec(select(WorkingSession).order_by(col(WorkingSession.id).desc()))
        return rows.first()  # type: ignore[return-value]


async def _propose(harness: BotHarness, text: str, user: User = DENIZ) -> tuple[str, Call]:
    """The reply to a request and its card (the message with the buttons)."""
    calls = await harness.command(text, user, CHAT)
    sent = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
    assert len(sent) == 2, [c.text for c in sent]
    return sent[0].text, sent[1]


def _said(calls: list[Call], chat_id: int = CHAT.id) -> list[str]:
    """What the bot said in a chat (new messages, not the cards it redrew)."""
    return [c.text for c in calls if c.method == "sendMessage" and c.chat_id == chat_id]


def _alert(calls: list[Call]) -> str:
    [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
    return str(answer.params.get("text"))


def _edited(calls: list[Call]) -> str:
    [edit] = [c for c in calls if c.method == "editMessageText" and c.chat_id == CHAT.id]
    return edit.text


async def _card_message(harness: BotHarness, item_id: int) -> dict[str, Any]:
    """The request's card as the group sees it now, after every redraw."""
    async with harness.db.transaction() as session:
        item = await session.get(AgendaItem, item_id)
    assert item is not None and item.message_id is not None and item.chat_id == CHAT.id
    shown = harness.telegram.shown(CHAT.id, item.message_id)
    assert shown is not None
    return shown


async def _press(harness: BotHarness, data: str, user: User) -> list[Call]:
    """Press a button on a request's card as it stands (``ag:<item>:…``)."""
    item_id = int(data.split(":")[1])
    return await harness.send(callback(data, user, await _card_message(harness, item_id), CHAT))


def _buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def _items(harness: BotHarness) -> list[AgendaItem]:
    async with harness.db.transaction() as session:
        return list((await session.exec(select(AgendaItem).order_by(col(AgendaItem.id)))).all())


async def _card_now(harness: BotHarness, item_id: int) -> str:
    return str((await _card_message(harness, item_id))["text"])


async def test_a_request_supported_accepted_ordered_timed_and_shown_in_next_and_reminders(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    meeting = await _schedule(harness)
    reply, card = await _propose(
        harness, "/propose Heat action plans\nHow cities keep schools cool.\nWith <b>data</b>."
    )
    assert reply == (
        f"Noted: request #1 is for session #{meeting.id}. The organisers decide on it; "
        f"requests for that session close {FIRST_DEADLINE}."
    )
    assert card.text == (
        "📌 Agenda request #1 · <b>Local Climate Action</b> (climate)\n"
        "<b>Heat action plans</b>\n"
        "How cities keep schools cool.\nWith &lt;b&gt;data&lt;/b&gt;.\n"
        f"Asked by İstanbul for session #{meeting.id}.\n"
        "⏳ Waiting for the organisers' decision.\n"
        "<i>Other cities: support it with the button, or give your city's opinion with "
        "/opinion 1 &lt;text&gt;. Organisers: accept or defer it with the buttons; "
        "/decline 1 &lt;reason&gt; declines it.</i>"
    )
    buttons = dict(card.buttons())
    assert list(buttons.values()) == ["ag:1:sup", "ag:1:acc", "ag:1:def", "ag:1:dec"]

    # Another city supports it; its second delegate's press withdraws the city's support.
    assert _alert(await _press(harness, "ag:1:sup", ELENI)) == (
        "Noted: Athens supports request #1."
    )
    assert "👍 Supported by: Athens" in await _card_now(harness, 1)
    assert _alert(await _press(harness, "ag:1:sup", KOSTAS)) == (
        "Noted: Athens no longer supports request #1."
    )
    assert "Supported by" not in await _card_now(harness, 1)
    # The city that asked does not support its own request: it is told why.
    own = await _press(harness, "ag:1:sup", DENIZ)
    assert _alert(own) == "İstanbul asked for request #1 itself; support is for the other cities."
    await _press(harness, "ag:1:sup", ELENI)
    await _press(harness, "ag:1:sup", COORDINATOR)
    assert "👍 Supported by: Athens, Belgrade" in await _card_now(harness, 1)
    assert "👍 Support · 2" in str((await _card_message(harness, 1))["reply_markup"])

    # A delegate who is no organiser cannot accept; the coordinator can.
    refused = await _press(harness, "ag:1:acc", ELENI)
    assert _alert(refused).startswith("Only this working group's coordinators, the secretariat")
    accepted = await _press(harness, "ag:1:acc", COORDINATOR)
    assert _alert(accepted) == f"Request #1 is accepted for session #{meeting.id}."
    shown = _edited(accepted)
    assert f"✅ Accepted for session #{meeting.id}. Item 1 on the agenda." in shown
    # The delegate who asked is told, in private.
    [told] = replies(accepted, DENIZ.id)
    assert told == (
        "✅ Your agenda request #1 for <b>Local Climate Action</b> (climate), "
        f"<b>Heat action plans</b>, is accepted for session #{meeting.id}."
    )

    await _propose(harness, "/propose Flood defence", COORDINATOR)
    await _press(harness, "ag:2:acc", SECRETARY)
    await harness.command("/agenda order 2 1", COORDINATOR, CHAT)
    [timed] = _said(await harness.command("/agenda minutes 2 30", COORDINATOR, CHAT))
    assert "Item 1 on the agenda. 30 minutes." in await _card_now(harness, 2)
    assert (
        "<b>Agenda</b>\n"
        "1. #2 Flood defence — Belgrade · 30 min\n"
        "2. #1 Heat action plans — İstanbul\n"
        "Timed items take 30 of the session's 90 minutes."
    ) in timed

    [shown_next] = replies(await harness.command("/next", DENIZ, CHAT), CHAT.id)
    assert (
        "<b>Agenda</b>\n1. Flood defence — Belgrade · 30 min\n2. Heat action plans — İstanbul"
    ) in shown_next
    clock.now = meeting.starts_at - timedelta(days=1)
    assert await sweep_sessions(harness.app) == 1
    await harness.settle()
    [reminder] = [t for t in harness.telegram.texts(CHAT.id) if t.startswith("⏰")]
    assert "1. Flood defence — Belgrade · 30 min\n2. Heat action plans — İstanbul" in reminder

    async with harness.db.transaction() as session:
        logged = [e for e in await audit.entries(session) if e.subject == "agenda:1"]
    assert [(e.action, e.actor_id, e.details.get("city")) for e in logged] == [
        ("agenda.propose", DENIZ.id, "İstanbul"),
        ("agenda.support", ELENI.id, "Athens"),
        ("agenda.unsupport", KOSTAS.id, "Athens"),
        ("agenda.support", ELENI.id, "Athens"),
        ("agenda.support", COORDINATOR.id, "Belgrade"),
        ("agenda.accept", COORDINATOR.id, None),
    ]
    assert {e.details["group"] for e in logged} == {"climate"}
    # Withdrawing a support touches that request only: Athens still supports #2.
    await _press(harness, "ag:2:sup", ELENI)
    await _press(harness, "ag:1:sup", KOSTAS)
    async with harness.db.transaction() as session:
        supports = sorted(
            (s.item_id, s.city_id) for s in (await session.exec(select(AgendaSupport))).all()
        )
    assert [item for item, _city in supports] == [1, 2]


async def test_a_late_request_goes_to_the_following_session_and_the_delegate_is_told(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    first = await _schedule(harness)
    clock.now = datetime(2026, 2, 5, 9, 0, tzinfo=UTC)  # after 3 February's deadline
    reply, card = await _propose(harness, "/propose Urban forests")
    assert reply == (
        f"⚠ Requests for session #{first.id} closed {FIRST_DEADLINE}. Your request #1 is "
        "for the next session, once one is planned."
    )
    assert "It came after the deadline of the next session" in card.text
    [shown] = replies(await harness.command("/agenda", DENIZ, CHAT), CHAT.id)
    assert "Requests for it have closed; new ones go to the following session." in shown
    assert (
        "<b>Other requests waiting</b>\n"
        "#1 Urban forests — İstanbul · for the next session, once one is planned"
    ) in shown

    # The spring session is fixed: the waiting request goes to it.
    spring = await _schedule(harness, "/schedule 2026-05-12 10:00 Europe/Belgrade 90")
    [item] = await _items(harness)
    assert item.session_id == spring.id and item.late
    # A request now, with the winter session's list closed, goes to spring at once.
    reply, _card = await _propose(harness, "/propose Cooling centres", ELENI)
    assert reply.startswith(f"⚠ Requests for session #{first.id} closed")
    assert reply.endswith(f"Your request #2 is for session #{spring.id}.")

    # The group keeps requests open until 3 days before: the winter session takes them again.
    [set_to] = replies(await harness.command("/agenda deadline 3", COORDINATOR, CHAT), CHAT.id)
    assert set_to == (
        "Agenda requests for <b>Local Climate Action</b> (climate) now close 3 days before "
        "each session."
    )
    async with harness.db.transaction() as session:
        [logged] = await audit.entries(session, action="agenda.deadline")
    assert (logged.subject, logged.actor_id, logged.details) == (
        "climate",
        COORDINATOR.id,
        {"was": 7, "days": 3},
    )
    reply, _card = await _propose(harness, "/propose Green roofs", COORDINATOR)
    assert reply.startswith(f"Noted: request #3 is for session #{first.id}.")
    assert "close Saturday, 7 February 2026 10:00 Belgrade · 11:00 Athens" in reply


async def test_decline_with_a_reason_defer_and_a_cancelled_session(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    first = await _schedule(harness)
    spring = await _schedule(harness, "/schedule 2026-05-12 10:00 Europe/Belgrade 90")
    _reply, card = await _propose(harness, "/propose Heat <action> & plans")
    await _propose(harness, "/propose Flood defence", ELENI)

    # Decline needs a reason: the button says how; the command without one shows its usage.
    hint = await _press(harness, "ag:1:dec", COORDINATOR)
    assert _alert(hint) == "Declining needs a reason: send /decline 1 <reason>."
    [usage] = replies(await harness.command("/decline 1", COORDINATOR, CHAT), CHAT.id)
    assert usage.startswith("Give the request's number and the reason: /decline &lt;number&gt;")
    calls = await harness.command("/decline 1 Covered by <the> heat item", COORDINATOR, CHAT)
    assert _said(calls) == ["Request #1 is declined; its city is told why."]
    [told] = replies(calls, DENIZ.id)
    assert told == (
        "✖ Your agenda request #1 for <b>Local Climate Action</b> (climate), "
        "<b>Heat &lt;action&gt; &amp; plans</b>, is declined. "
        "The reason: Covered by &lt;the&gt; heat item"
    )
    shown = await _card_now(harness, 1)
    assert "✖ Declined: Covered by &lt;the&gt; heat item" in shown
    assert _buttons(await _card_message(harness, 1)) == []
    # A stale copy of the card, still showing Support (a client that missed the edit).
    refused = await harness.press("ag:1:sup", ELENI, on=card, chat=CHAT)
    assert _alert(refused).startswith("Request #1 was declined; it takes no more support")

    # Accepted, then deferred: it waits for a decision again, for the spring session.
    await _press(harness, "ag:2:acc", COORDINATOR)
    deferred = await _press(harness, "ag:2:def", COORDINATOR)
    assert _alert(deferred) == f"Request #2 is deferred for session #{spring.id}."
    assert f"⏭ Deferred for session #{spring.id}; waiting for the organisers' decision." in _edited(
        deferred
    )
    # Deferred again, there is no session after spring: it waits for one.
    clock.now += timedelta(hours=1)
    await _press(harness, "ag:2:def", COORDINATOR)
    [declined, waiting] = await _items(harness)
    assert waiting.session_id is None and waiting.deferrals == 2 and waiting.status == "pending"
    assert (waiting.position, waiting.decided_by, waiting.decided_at) == (
        None,
        COORDINATOR.id,
        clock.now,
    )
    assert (declined.decided_by, declined.reason) == (COORDINATOR.id, "Covered by <the> heat item")

    # Accepted for spring, then spring is cancelled: it goes back to wait, still accepted,
    # and to the next session fixed.
    await _press(harness, "ag:2:acc", COORDINATOR)
    [_declined, accepted] = await _items(harness)
    assert accepted.session_id == first.id  # the next session there is
    await harness.command(f"/cancel {first.id}", COORDINATOR, CHAT)
    [_declined, released] = await _items(harness)
    assert released.session_id == spring.id and released.status == "accepted"
    await harness.command(f"/cancel {spring.id}", COORDINATOR, CHAT)
    [_declined, released] = await _items(harness)
    assert released.session_id is None and released.status == "accepted"
    summer = await _schedule(harness, "/schedule 2026-08-11 10:00 Europe/Belgrade 90")
    [_declined, gathered] = await _items(harness)
    assert gathered.session_id == summer.id and gathered.status == "accepted"
    async with harness.db.transaction() as session:
        actions = [e.action for e in await audit.entries(session) if e.subject == "agenda:2"]
    assert actions == [
        "agenda.propose",
        "agenda.accept",
        "agenda.defer",
        "agenda.defer",
        "agenda.accept",
    ]


async def test_opinions_one_per_city_shown_escaped(harness: BotHarness) -> None:
    await _climate_group(harness)
    await _schedule(harness)
    await _propose(harness, "/propose Heat action plans")
    said = _said(await harness.command("/opinion 1 We agree <b>strongly</b>", ELENI, CHAT))
    assert said == ["Noted: the opinion of Athens on request #1."]
    # A second delegate of Athens speaks for the city: the opinion is replaced, not added.
    await harness.command("/opinion 1 Athens can present its plan\nin ten minutes.", KOSTAS, CHAT)
    await harness.command("/opinion #1 İstanbul asks for this.", DENIZ, CHAT)
    assert "💬 Opinions from: Athens, İstanbul (/opinion 1 shows them)" in (
        await _card_now(harness, 1)
    )
    [listed] = replies(await harness.command("/opinion 1", OUTSIDER, CHAT), CHAT.id)
    assert listed == (
        "💬 Opinions on request #1: <b>Heat action plans</b>\n\n"
        "<b>Athens</b>: Athens can present its plan\nin ten minutes.\n\n"
        "<b>İstanbul</b>: İstanbul asks for this."
    )
    async with harness.db.transaction() as session:
        opinions = (await session.exec(select(AgendaOpinion))).all()
        assert sorted(o.user_id for o in opinions) == [DENIZ.id, KOSTAS.id]
        logged = await audit.entries(session, action="agenda.opinion")
    assert [(e.subject, e.actor_id, e.details["city"]) for e in logged] == [
        ("agenda:1", ELENI.id, "Athens"),
        ("agenda:1", KOSTAS.id, "Athens"),
        ("agenda:1", DENIZ.id, "İstanbul"),
    ]
    assert logged[1].details["text"] == "Athens can present its plan\nin ten minutes."
    [refused] = replies(await harness.command("/opinion 1 Zagreb too", OUTSIDER, CHAT), CHAT.id)
    assert refused == "Zagreb is not a member of Local Climate Action."


async def test_outcomes_after_the_session_and_the_past_agenda(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    meeting = await _schedule(harness)
    for text in ("/propose Heat action plans", "/propose Flood defence", "/propose Tree cover"):
        _reply, card = await _propose(harness, text)
        number = card.text.split("#")[1].split(" ")[0]
        await _press(harness, f"ag:{number}:acc", COORDINATOR)
    # Accepted in turn, each is the next on the agenda.
    assert "Item 3 on the agenda." in await _card_now(harness, 3)
    [early] = replies(await harness.command("/outcome 1 Adopt plans", COORDINATOR, CHAT), CHAT.id)
    assert early.startswith("Item #1's session has not begun yet")

    clock.now = meeting.starts_at + timedelta(minutes=100)
    [refused] = replies(await harness.command("/outcome 1 Adopt plans", DENIZ, CHAT), CHAT.id)
    assert refused.startswith("Only this working group's coordinators")
    calls = await harness.command(
        "/outcome 1 Every member city adopts a heat action plan by June.", COORDINATOR, CHAT
    )
    assert _said(calls) == ["The outcome of item #1 is recorded."]
    assert "➡ Recommendation: Every member city adopts a heat action plan by June." in (
        await _card_now(harness, 1)
    )
    [offer] = [
        c
        for c in await harness.command("/outcome 2", COORDINATOR, CHAT)
        if c.method == "sendMessage"
    ]
    assert [d for _l, d in offer.buttons()] == ["ao:2:noted", "ao:2:unreached"]
    pressed = await harness.press("ao:2:noted", COORDINATOR, on=offer, chat=CHAT)
    assert "Item #2, Flood defence: Noted; no recommendation." in replies(pressed, CHAT.id)
    [offer] = [
        c
        for c in await harness.command("/outcome 3", COORDINATOR, CHAT)
        if c.method == "sendMessage"
    ]
    await harness.press("ao:3:unreached", SECRETARY, on=offer, chat=CHAT)
    # An item with its outcome is settled: it can no longer be declined.
    [no_more] = _said(await harness.command("/decline 2 late", COORDINATOR, CHAT))
    assert no_more.startswith("Request #2 has been decided or changed meanwhile.")

    [past] = replies(await harness.command(f"/agenda {meeting.id}", DENIZ, CHAT), CHAT.id)
    assert (
        "<b>Agenda</b>\n"
        "1. #1 Heat action plans — İstanbul\n"
        "    ➡ Recommendation: Every member city adopts a heat action plan by June.\n"
        "2. #2 Flood defence — İstanbul\n"
        "    ➡ Noted; no recommendation.\n"
        "3. #3 Tree cover — İstanbul\n"
        "    ➡ Not reached at the session."
    ) in past
    async with harness.db.transaction() as session:
        outcomes = [
            (e.subject, e.details["outcome"])
            for e in await audit.entries(session, action="agenda.outcome")
        ]
    assert outcomes == [
        ("agenda:1", "recommendation"),
        ("agenda:2", "noted"),
        ("agenda:3", "not_reached"),
    ]


@pytest.mark.parametrize(
    ("user", "text", "expected"),
    [
        (DENIZ, "/propose", "Give the item's title, and any description"),
        (DENIZ, "/propose " + "x" * 201, "An agenda item needs a title of at most 200 characters"),
        (DENIZ, "/propose T\n" + "y" * 1501, "That text is too long: at most 1500 characters"),
        (DENIZ, "/propose Heat ACTION plans", "İstanbul has already asked for this: request #1."),
        (OUTSIDER, "/propose Zagreb's item", "Zagreb is not a member of Local Climate Action."),
        (STRANGER, "/propose An item", "You are not a delegate of a member city yet."),
        (DENIZ, "/decline 1 no", "Only this working group's coordinators, the secretariat"),
        (COORDINATOR, "/decline 9 no", "There is no agenda request #9 in this working group."),
        (COORDINATOR, "/decline 1 " + "r" * 301, "That text is too long: at most 300 characters"),
        (COORDINATOR, "/agenda minutes 1 20", "Request #1 is not on an agenda"),
        (COORDINATOR, "/agenda order 1", "Request #1 is not on an agenda"),
        (COORDINATOR, "/agenda order 1 1", "/agenda shows the next session's agenda"),
        (COORDINATOR, "/agenda deadline 61", "Requests can close from 0 to 60 days"),
        (COORDINATOR, "/agenda deadline soon", "/agenda shows the next session's agenda"),
        (COORDINATOR, "/agenda 999", "There is no session #999"),
        (COORDINATOR, "/outcome", "Give the item's number and the recommendation made"),
        (COORDINATOR, "/outcome 1 Adopt", "Request #1 is not on an agenda"),
        (DENIZ, "/opinion", "Give the request's number and your city's opinion"),
        (DENIZ, "/opinion x y", "Give the request's number and your city's opinion"),
        (DENIZ, "/opinion 1", "No city has given an opinion on request #1 yet."),
    ],
)
async def test_bad_requests_are_explained_and_change_nothing(
    harness: BotHarness, user: User, text: str, expected: str
) -> None:
    await _climate_group(harness)
    await _schedule(harness)
    await _propose(harness, "/propose Heat action plans")
    before = await snapshot(harness.db)
    said = _said(await harness.command(text, user, CHAT))
    assert len(said) == 1 and expected in said[0], said
    assert await snapshot(harness.db) == before


async def test_the_agenda_belongs_to_a_working_groups_chat(harness: BotHarness) -> None:
    await _climate_group(harness)
    [private] = replies(await harness.command("/propose Heat", DENIZ), DENIZ.id)
    assert private == "This command works in a working group's chat. Send it there."
    await link_chat(harness, OTHER_CHAT, "smart-cities")
    await _propose(harness, "/propose Heat action plans")
    # Request #1 is Climate's: from Smart Cities' chat it is unknown, and its buttons too.
    [unknown] = replies(
        await harness.command("/decline 1 not ours", COORDINATOR, OTHER_CHAT), OTHER_CHAT.id
    )
    assert unknown == "There is no agenda request #1 in this working group. /agenda lists them."


async def test_forged_replayed_and_simultaneous_presses(harness: BotHarness) -> None:
    await _climate_group(harness)
    await harness.command("/language en", SECRETARY)  # Ayşe's answers, in English here
    await _schedule(harness)
    _reply, card = await _propose(harness, "/propose Heat action plans")
    before = await snapshot(harness.db)
    for forged in ("ag:2:acc", "ag:1:xyz", "ag:1:acc:1", "ao:1:noted"):
        calls = await harness.press(forged, COORDINATOR, on=card, chat=CHAT)
        assert [c.params.get("text") for c in calls if c.method == "answerCallbackQuery"] == [None]
    assert await snapshot(harness.db) == before

    # The same press delivered twice is one support, not a support and its withdrawal.
    message_ = harness.telegram._message(card.params, message_id=4242)
    pressed = callback("ag:1:sup", ELENI, message_, CHAT)
    await harness.send(pressed)
    await harness.send(pressed)
    async with harness.db.transaction() as session:
        assert len((await session.exec(select(AgendaSupport))).all()) == 1

    # Two organisers press at once, one Accept and one Defer: one wins, the other is told.
    updates = [
        Update.de_json(callback(data, who, message_, CHAT), harness.app.bot)
        for who, data in ((COORDINATOR, "ag:1:acc"), (SECRETARY, "ag:1:def"))
    ]
    before_calls = len(harness.telegram.calls)
    await asyncio.wait_for(
        asyncio.gather(*(harness.app.process_update(u) for u in updates)), timeout=60
    )
    await harness.settle()
    answers = [
        str(c.params.get("text"))
        for c in harness.telegram.calls[before_calls:]
        if c.method == "answerCallbackQuery"
    ]
    [item] = await _items(harness)
    async with harness.db.transaction() as session:
        decisions = [
            e.action
            for e in await audit.entries(session)
            if e.subject == "agenda:1" and e.action in ("agenda.accept", "agenda.defer")
        ]
    # Whichever ran first, each press either took effect (and is in the log) or was told
    # the request changed meanwhile; the request is what the logged decisions make it.
    refused = [a for a in answers if "decided or changed meanwhile" in a]
    assert len(answers) == 2 and len(decisions) + len(refused) == 2, answers
    assert decisions, answers
    assert item.status == ("accepted" if decisions[-1] == "agenda.accept" else "pending")
    assert item.deferrals == decisions.count("agenda.defer")


async def test_many_cities_support_at_once_and_the_count_is_exact(harness: BotHarness) -> None:
    await _climate_group(harness)
    await _schedule(harness)
    cities = ["Sofia", "Skopje", "Tirana", "Sarajevo", "Podgorica", "Zagreb"]
    crowd = []
    for n, city in enumerate(cities):
        for k in range(3):
            user = User(id=79_200_000 + n * 10 + k, first_name=f"S{n}{k}", language_code="en")
            await make_delegate(harness, user, city)
            if k == 0:
                await harness.command("/join", user, CHAT)
            crowd.append(user)
    _reply, card = await _propose(harness, "/propose Heat action plans")
    message_ = harness.telegram._message(card.params, message_id=4242)
    # Three delegates of each of six cities press Support at the same moment: each city's
    # presses toggle its one support, so an odd number of presses leaves it supporting.
    updates = [
        Update.de_json(callback("ag:1:sup", who, message_, CHAT), harness.app.bot) for who in crowd
    ]
    await asyncio.wait_for(
        asyncio.gather(*(harness.app.process_update(u) for u in updates)), timeout=60
    )
    await harness.settle()
    async with harness.db.transaction() as session:
        supports = (await session.exec(select(AgendaSupport))).all()
        logged = await audit.entries(session)
    assert len(supports) == 6 and len({s.city_id for s in supports}) == 6
    toggles = [e for e in logged if e.action in ("agenda.support", "agenda.unsupport")]
    assert len(toggles) == 18
    assert sum(e.action == "agenda.support" for e in toggles) == 12


async def test_cancelling_a_session_moves_only_its_own_items(harness: BotHarness) -> None:
    await _climate_group(harness)
    first = await _schedule(harness)
    spring = await _schedule(harness, "/schedule 2026-05-12 10:00 Europe/Belgrade 90")
    await _propose(harness, "/propose Declined on spring")
    await _press(harness, "ag:1:def", COORDINATOR)
    await harness.command("/decline 1 Not this year", COORDINATOR, CHAT)
    for text in ("/propose Heat action plans", "/propose Flood defence"):
        _reply, card = await _propose(harness, text)
        number = card.text.split("#")[1].split(" ")[0]
        await _press(harness, f"ag:{number}:acc", COORDINATOR)
    await _press(harness, "ag:3:def", COORDINATOR)  # to spring, waiting for a decision there
    await _press(harness, "ag:3:acc", COORDINATOR)
    await harness.command("/agenda order 2", COORDINATOR, CHAT)
    # Spring's agenda counts its own items: the first accepted there is its item 1.
    assert (await _items(harness))[2].position == 1
    await harness.command(f"/cancel {spring.id}", COORDINATOR, CHAT)
    declined, kept, moved = await _items(harness)
    # A declined request stays where it was declined.
    assert (declined.session_id, declined.status) == (spring.id, "declined")
    # The winter session's item keeps its place; spring's goes to the session taking
    # requests (winter), still accepted, after the items already ordered there.
    assert (kept.session_id, kept.position, kept.status) == (first.id, 1, "accepted")
    assert (moved.session_id, moved.position, moved.status) == (first.id, None, "accepted")


async def test_a_request_left_undecided_past_its_session_goes_to_the_next_when_accepted(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    first = await _schedule(harness)
    spring = await _schedule(harness, "/schedule 2026-05-12 10:00 Europe/Belgrade 90")
    await _propose(harness, "/propose Heat action plans")
    clock.now = first.ends_at + timedelta(days=1)
    accepted = await _press(harness, "ag:1:acc", COORDINATOR)
    assert _alert(accepted) == f"Request #1 is accepted for session #{spring.id}."
    # A stale card's Accept, pressed again: the request has been decided meanwhile.
    again = await harness.press("ag:1:acc", COORDINATOR, on=_first_card(harness), chat=CHAT)
    assert _alert(again) == (
        "Request #1 has been decided or changed meanwhile. /agenda shows where it stands."
    )


def _first_card(harness: BotHarness) -> Call:
    return next(
        c
        for c in harness.telegram.calls
        if c.method == "sendMessage" and c.text.startswith("📌 Agenda request #1 ")
    )


async def test_a_request_accepted_while_no_session_is_planned_waits_for_one(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    reply, _card = await _propose(harness, "/propose Heat action plans")
    assert reply.startswith("Noted: request #1 waits for the next session")
    accepted = await _press(harness, "ag:1:acc", COORDINATOR)
    assert _alert(accepted) == ("Request #1 is accepted for the next session, once one is planned.")
    meeting = await _schedule(harness)
    [item] = await _items(harness)
    assert (item.session_id, item.status, item.position) == (meeting.id, "accepted", 1)
