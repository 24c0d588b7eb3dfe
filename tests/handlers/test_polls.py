"""Polls through the real bot: one city, one vote, whatever its delegates press and however
fast; the tally message ends exact; closing by command and at the deadline, after a restart."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select
from telegram import Update

from bot.application import sweep_polls
from playground.emulator import Call
from playground.updates import User, callback, group, message
from storage import audit
from storage.db import Database
from storage.models import Delegate, DelegateStatus, Poll, PollVote
from tests.conftest import (
    SECRETARY,
    BotHarness,
    Clock,
    make_delegate,
    replies,
    running_bot,
    snapshot,
    working_group,
)

CHAT = group(-1007780001, "B40 Climate")
COORDINATOR = User(id=78_100_001, first_name="Marko", language_code="en")  # Belgrade
ELENI = User(id=78_100_002, first_name="Eleni", language_code="el")  # Athens
KOSTAS = User(id=78_100_003, first_name="Kostas", language_code="en")  # Athens too
DENIZ = User(id=78_100_004, first_name="Deniz", language_code="en")  # İstanbul
OUTSIDER = User(id=78_100_005, first_name="Ana", language_code="en")  # Zagreb, not in the group
STRANGER = User(id=78_100_006, first_name="Alex", language_code="en")  # nobody's delegate
MEMBERS = ((COORDINATOR, "Belgrade"), (ELENI, "Athens"), (DENIZ, "İstanbul"))


async def _climate_group(harness: BotHarness) -> None:
    await working_group(harness, CHAT, "climate", MEMBERS, coordinator=COORDINATOR)
    await make_delegate(harness, KOSTAS, "Athens")
    await make_delegate(harness, OUTSIDER, "Zagreb")


async def _open(harness: BotHarness, text: str) -> Call:
    calls = await harness.command(text, COORDINATOR, CHAT)
    [poll] = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
    return poll


def _alert(calls: list[Call]) -> str:
    [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
    return str(answer.params.get("text"))


async def _message(harness: BotHarness, poll: Call) -> dict[str, Any]:
    """The poll's tally message as the group's members see it now (after every edit)."""
    poll_id = int(poll.buttons()[0][1].split(":")[1])
    async with harness.db.transaction() as session:
        stored = await session.get(Poll, poll_id)
    assert stored is not None and stored.message_id is not None
    shown = harness.telegram.shown(CHAT.id, stored.message_id)
    assert shown is not None
    return shown


async def _shown(harness: BotHarness, poll: Call) -> str:
    return str((await _message(harness, poll))["text"])


async def _stored_poll(harness: BotHarness) -> Poll:
    async with harness.db.transaction() as session:
        [poll] = (await session.exec(select(Poll).where(Poll.kind == "choice"))).all()
        return poll


async def test_one_city_one_vote_the_last_delegate_counts_and_the_result_in_words(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    poll = await _open(harness, "/poll Which theme first? | Heat action plans | Flood defence")
    assert poll.text.startswith(
        "📊 Poll #1 · <b>Local Climate Action</b> (climate)\n<b>Which theme first?</b>\n\n"
        "<b>1.</b> Heat action plans — <b>0</b>\n<b>2.</b> Flood defence — <b>0</b>\n\n"
        "0 of 3 cities voted.\n"
        "<i>one choice per city · results live · open: cities are named · no quorum · "
        "carried by more than half of the votes</i>\n"
        # The deadline in every member city's time: 7 days on, 09:00 UTC in January.
        "Closes Thursday, 22 January 2026 "
        "10:00 Belgrade · 11:00 Athens · 12:00 İstanbul."
    ), poll.text
    data = dict(poll.buttons())
    assert list(data) == ["1. Heat action plans", "2. Flood defence"]

    assert _alert(await harness.press(data["1. Heat action plans"], ELENI, on=poll, chat=CHAT)) == (
        "Σημειώθηκε για Athens: 1."
    )
    await harness.press(data["2. Flood defence"], DENIZ, on=poll, chat=CHAT)
    await harness.press(data["1. Heat action plans"], COORDINATOR, on=poll, chat=CHAT)
    # Another delegate of Athens: Athens's one vote is now theirs.
    said = _alert(await harness.press(data["2. Flood defence"], KOSTAS, on=poll, chat=CHAT))
    assert said == "Noted for Athens: 2."
    again = _alert(await harness.press(data["2. Flood defence"], KOSTAS, on=poll, chat=CHAT))
    assert again == "Athens already chose 2; nothing changed."
    assert "<b>1.</b> Heat action plans — <b>1</b> (Belgrade)\n" in (await _shown(harness, poll))
    assert "<b>2.</b> Flood defence — <b>2</b> (Athens, İstanbul)\n" in (
        await _shown(harness, poll)
    )
    assert "3 of 3 cities voted." in (await _shown(harness, poll))

    # Not a member city; nobody's delegate: refused, with the reason, and nothing counted.
    for who, expected in (
        (OUTSIDER, "Zagreb is not a member of Local Climate Action."),
        (STRANGER, "You are not a delegate of a member city yet."),
    ):
        before = await snapshot(harness.db)
        refused = await harness.press(data["1. Heat action plans"], who, on=poll, chat=CHAT)
        assert _alert(refused).startswith(expected)
        assert await snapshot(harness.db) == before

    closed = await harness.command("/closepoll", COORDINATOR, CHAT)
    [result] = [c.text for c in closed if c.method == "sendMessage" and c.chat_id == CHAT.id]
    assert result.startswith("🏁 Poll #1 has closed.\n\n📊 Poll #1")
    assert (
        "3 of 3 cities voted.\nClosed. Carried: Flood defence, chosen by 2 of 3 cities that voted."
    ) in result
    assert "Closed. Carried: Flood defence" in (await _shown(harness, poll))
    assert (await _message(harness, poll))["reply_markup"] == {"inline_keyboard": []}
    late = await harness.press(data["1. Heat action plans"], ELENI, on=poll, chat=CHAT)
    assert "η ψηφοφορία" in _alert(late).lower() or "closed" in _alert(late).lower()

    async with harness.db.transaction() as session:
        votes = await audit.entries(session, action="poll.vote")
        [closing] = await audit.entries(session, action="poll.close")
    # Every vote and change of vote; the repeated press changed nothing and is not there.
    assert [
        (e.actor_id, e.details["city"], e.details["before"], e.details["chosen"]) for e in votes
    ] == [
        (ELENI.id, "Athens", [], [1]),
        (DENIZ.id, "İstanbul", [], [2]),
        (COORDINATOR.id, "Belgrade", [], [1]),
        (KOSTAS.id, "Athens", [1], [2]),
    ]
    assert closing.details["counts"] == {"1": 1, "2": 2} and closing.details["carried"] == [2]


async def test_the_guided_form_sets_every_rule_in_private(harness: BotHarness) -> None:
    await _climate_group(harness)
    calls = await harness.command("/poll", COORDINATOR, CHAT)
    assert replies(calls, CHAT.id) == [
        "I have written to you privately: set up the poll there, and I will post it here. "
        "Nothing came? Open a private chat with me, press Start, then send /poll here again."
    ]
    [prompt] = replies(calls, COORDINATOR.id)
    assert prompt.startswith("A new poll for <b>Local Climate Action</b> (climate) (draft #1).")

    # The question, then the options, one a line; blank lines do not count.
    typed = message(
        "Which themes this year?\nHeat\n\nFloods\nDrought", COORDINATOR, COORDINATOR.private
    )
    [card] = [c for c in await harness.send(typed) if c.method == "sendMessage"]
    assert "<b>Which themes this year?</b>" in card.text and "<b>3.</b> Drought" in card.text
    assert "Runs for 7 days." in card.text
    for label in ("☐ Several choices", "☐ Results at the end", "☐ Anonymous", "⏳ 7 days"):
        assert label in dict(card.buttons()), card.buttons()

    for wanted in (
        "☐ Several choices",
        "☐ Results at the end",
        "☐ Anonymous",
        "⏳ 7 days",
        "⏳ 14 days",
        "👥 no quorum",
        "👥 a third of the cities must vote",
        "⚖ more than half of the votes",
    ):
        pressed = await harness.press(dict(card.buttons())[wanted], COORDINATOR, on=card)
        [card] = [c for c in pressed if c.method == "editMessageText"]
    assert (
        "<i>several choices per city · results when it closes · anonymous: counts only · "
        "half of the cities must vote · carried by two thirds of the votes</i>"
    ) in card.text
    assert "Runs for 1 day." in card.text  # 7 → 14 → back to 1

    # Someone else cannot press the draft's buttons (they are not in their chat).
    opened = await harness.press(dict(card.buttons())["▶ Open"], COORDINATOR, on=card)
    assert replies(opened, COORDINATOR.id) == ["Poll #1 is open in the group's chat."]
    [poll] = [c for c in opened if c.method == "sendMessage" and c.chat_id == CHAT.id]
    # Results hidden while it runs: no counts, no names; only how many cities voted.
    assert (
        "<b>1.</b> Heat\n<b>2.</b> Floods\n<b>3.</b> Drought\n\n0 of 3 cities voted." in poll.text
    )
    data = dict(poll.buttons())
    assert _alert(await harness.press(data["1. Heat"], ELENI, on=poll, chat=CHAT)) == (
        "Σημειώθηκε για Athens: 1."
    )
    assert _alert(await harness.press(data["3. Drought"], KOSTAS, on=poll, chat=CHAT)) == (
        "Noted for Athens: 1, 3."
    )
    assert _alert(await harness.press(data["1. Heat"], KOSTAS, on=poll, chat=CHAT)) == (
        "Noted for Athens: 3."
    )
    await harness.press(data["3. Drought"], DENIZ, on=poll, chat=CHAT)
    shown = await _shown(harness, poll)
    assert (
        "<b>3.</b> Drought\n\n2 of 3 cities voted." in shown and "—" not in shown.split("\n\n")[1]
    )

    await harness.command("/closepoll 1", COORDINATOR, CHAT)
    shown = await _shown(harness, poll)
    # Anonymous: counts only, never which city; two of three voted, and half had to.
    assert "<b>3.</b> Drought — <b>2</b>\n" in shown and "Athens" not in shown
    assert "Carried: Drought, chosen by 2 of 2 cities that voted." in shown


async def test_the_guided_form_for_someone_who_never_started_the_bot(
    harness: BotHarness,
) -> None:
    """Telegram refuses the private prompt (403): the group is not taken for unreachable."""
    await _climate_group(harness)
    harness.telegram.block(COORDINATOR.id)
    calls = await harness.command("/poll", COORDINATOR, CHAT)
    assert "Nothing came? Open a private chat with me" in replies(calls, CHAT.id)[0]
    async with harness.db.transaction() as session:
        from storage.models import Chat as ChatRow

        stored = await session.get(ChatRow, CHAT.id)
    assert stored is not None and stored.bot_is_member
    # The chat still works: the one-line form opens a poll there.
    assert (await _open(harness, "/poll A? | x | y")).text.startswith("📊 Poll #")


async def test_quorum_not_reached_and_nothing_carried_are_said_in_words(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    await harness.command("/poll", COORDINATOR, CHAT)
    typed = message("Host city?\nAthens\nBelgrade", COORDINATOR, COORDINATOR.private)
    [card] = [c for c in await harness.send(typed) if c.method == "sendMessage"]
    for wanted in ("👥 no quorum", "👥 a third of the cities must vote"):  # → two thirds
        [card] = [
            c
            for c in await harness.press(dict(card.buttons())[wanted], COORDINATOR, on=card)
            if c.method == "editMessageText"
        ]
    opened = await harness.press(dict(card.buttons())["▶ Open"], COORDINATOR, on=card)
    [poll] = [c for c in opened if c.method == "sendMessage" and c.chat_id == CHAT.id]
    await harness.press(dict(poll.buttons())["1. Athens"], ELENI, on=poll, chat=CHAT)
    await harness.command("/closepoll", COORDINATOR, CHAT)
    assert "Closed. Quorum not reached: 2 cities had to vote. No result." in (
        await _shown(harness, poll)
    )

    tie = await _open(harness, "/poll Date? | May | June")
    await harness.press(dict(tie.buttons())["1. May"], ELENI, on=tie, chat=CHAT)
    await harness.press(dict(tie.buttons())["2. June"], DENIZ, on=tie, chat=CHAT)
    await harness.command("/closepoll 2", COORDINATOR, CHAT)
    assert (
        "Closed. Nothing carried: no option was chosen by more than half of the votes. "
        "Tied: May, June."
    ) in (await _shown(harness, tie))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/poll Which? | Only one", "A poll needs 2 to 10 options; you gave 1."),
        ("/poll Which? | " + " | ".join(f"o{i}" for i in range(11)), "you gave 11."),
        ("/poll Which? | " + "x" * 101 + " | y", "Option 1 is longer than 100 characters"),
        ("/poll Which? | Heat | heat", "Option 2 repeats an earlier option."),
        ("/poll | Heat | Floods", "Give the question and at least two options"),
        ("/poll Just a question", "Give the question and at least two options"),
        ("/closepoll seven", "Give the poll's number: /closepoll &lt;number&gt;"),
        ("/closepoll", "This working group has no open poll."),
        ("/closepoll 99", "There is no poll #99."),
    ],
)
async def test_bad_polls_are_explained_and_change_nothing(
    harness: BotHarness, text: str, expected: str
) -> None:
    await _climate_group(harness)
    before = await snapshot(harness.db)
    [said] = replies(await harness.command(text, COORDINATOR, CHAT), CHAT.id)
    assert expected in said, said
    assert await snapshot(harness.db) == before


async def test_only_organisers_open_and_close_polls(harness: BotHarness) -> None:
    await _climate_group(harness)
    [said] = replies(await harness.command("/poll A? | x | y", DENIZ, CHAT), CHAT.id)
    assert said == (
        "Only this working group's coordinators, the secretariat or the term presidency can "
        "open a poll here."
    )
    poll = await _open(harness, "/poll A? | x | y")
    [said] = replies(await harness.command("/closepoll", DENIZ, CHAT), CHAT.id)
    assert said.startswith("Only whoever opened this poll, this working group's coordinators")
    # The secretariat may close any group's poll; the result is posted once.
    await harness.command("/closepoll", SECRETARY, CHAT)
    assert sum(t.startswith("🏁") for t in harness.telegram.texts(CHAT.id)) == 1
    assert poll.text


async def test_forged_replayed_and_duplicate_presses_leave_the_tally_exact(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    poll = await _open(harness, "/poll A? | x | y")
    data = dict(poll.buttons())
    before = await snapshot(harness.db)
    # Data no keyboard of ours drew (another poll, an option the poll lacks): silently refused.
    for forged in ("po:1:9", "po:2:1", "po:1:1:extra"):
        calls = await harness.press(forged, ELENI, on=poll, chat=CHAT)
        assert [c.params.get("text") for c in calls if c.method == "answerCallbackQuery"] == [None]
    assert await snapshot(harness.db) == before
    # The same update delivered twice counts once.
    message_ = harness.telegram._message(poll.params, message_id=4242)
    pressed = callback(data["1. x"], ELENI, message_, CHAT)
    await harness.send(pressed)
    await harness.send(pressed)
    async with harness.db.transaction() as session:
        assert len((await session.exec(select(PollVote))).all()) == 1
        assert len(await audit.entries(session, action="poll.vote")) == 1


async def test_a_removed_delegate_no_longer_votes_and_a_city_that_left_no_longer_counts(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    poll = await _open(harness, "/poll A? | x | y")
    data = dict(poll.buttons())
    await harness.press(data["1. x"], DENIZ, on=poll, chat=CHAT)
    await harness.press(data["2. y"], ELENI, on=poll, chat=CHAT)
    async with harness.db.transaction() as session:  # the secretariat removes Kostas
        await session.exec(
            update(Delegate)
            .where(col(Delegate.user_id) == KOSTAS.id)
            .values(status=DelegateStatus.REMOVED.value)
        )
    refused = await harness.press(data["1. x"], KOSTAS, on=poll, chat=CHAT)
    assert _alert(refused).startswith("You are not a delegate of a member city yet.")
    await harness.command("/leave", DENIZ, CHAT)
    await harness.press(data["2. y"], COORDINATOR, on=poll, chat=CHAT)  # redraws the tally
    shown = await _shown(harness, poll)
    assert "<b>1.</b> x — <b>0</b>\n<b>2.</b> y — <b>2</b> (Athens, Belgrade)" in shown
    assert "2 of 2 cities voted." in shown


async def _press_together(harness: BotHarness, poll: Call, presses: list[tuple[User, str]]) -> None:
    message_ = harness.telegram._message(poll.params, message_id=4242)
    updates = [
        Update.de_json(callback(data, who, message_, CHAT), harness.app.bot)
        for who, data in presses
    ]
    await asyncio.wait_for(
        asyncio.gather(*(harness.app.process_update(u) for u in updates)), timeout=60
    )
    await harness.settle()


async def test_many_delegates_of_several_cities_pressing_at_once(harness: BotHarness) -> None:
    """Eight delegates each of three cities press at the same moment, twice over: each city
    has one vote, the last of its delegates' presses, and the message ends exact."""
    await _climate_group(harness)
    crowd: list[tuple[User, str]] = []
    for n in range(8):
        for city, base in (("Belgrade", 1), ("Athens", 2), ("İstanbul", 3)):
            user = User(
                id=78_200_000 + base * 100 + n, first_name=f"D{base}{n}", language_code="en"
            )
            await make_delegate(harness, user, city)
            crowd.append((user, city))
    poll = await _open(harness, "/poll A? | x | y | z")
    data = [d for _label, d in poll.buttons()]
    before = len(harness.telegram.calls)
    await _press_together(harness, poll, [(u, data[i % 3]) for i, (u, _c) in enumerate(crowd)])
    await _press_together(
        harness, poll, [(u, data[(i + 1) % 3]) for i, (u, _c) in enumerate(crowd)]
    )
    answers = [c for c in harness.telegram.calls[before:] if c.method == "answerCallbackQuery"]
    assert len(answers) == 48 and all(c.params.get("text") for c in answers)
    async with harness.db.transaction() as session:
        votes = (await session.exec(select(PollVote))).all()
    assert len(votes) == 3 and len({v.city_id for v in votes}) == 3
    shown = await _shown(harness, poll)
    counted = sum(int(line.split("<b>")[2].split("<")[0]) for line in shown.splitlines()[3:6])
    assert counted == 3 and "3 of 3 cities voted." in shown


async def test_the_tally_is_redrawn_at_most_once_a_second_and_ends_exact(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    harness.app.tallies.interval = 1.0
    poll = await _open(harness, "/poll A? | x | y")
    data = [d for _label, d in poll.buttons()]
    before = len(harness.telegram.calls)
    presses = [(ELENI, data[0]), (DENIZ, data[1]), (COORDINATOR, data[0]), (KOSTAS, data[1])] * 5
    await _press_together(harness, poll, presses)
    edits = [c for c in harness.telegram.calls[before:] if c.method == "editMessageText"]
    assert 1 <= len(edits) <= 2, len(edits)
    # Which press of a city came last is the database's to say: the message agrees with it.
    async with harness.db.transaction() as session:
        stored = [int(v.value) for v in (await session.exec(select(PollVote))).all()]
    shown = await _shown(harness, poll)
    assert f"<b>1.</b> x — <b>{stored.count(1)}</b>" in shown
    assert f"<b>2.</b> y — <b>{stored.count(2)}</b>" in shown and len(stored) == 3


async def test_a_tally_left_stale_by_a_failed_edit_is_redrawn_by_the_sweep(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    poll = await _open(harness, "/poll A? | x | y")
    harness.telegram.fail("editMessageText", status=500, description="Internal Server Error")
    await harness.press(dict(poll.buttons())["1. x"], ELENI, on=poll, chat=CHAT)
    assert "0 of 3 cities voted." in (await _shown(harness, poll))
    await sweep_polls(harness.app)
    await harness.settle()
    assert "<b>1.</b> x — <b>1</b> (Athens)" in (await _shown(harness, poll))
    edits = len(harness.telegram.sent(CHAT.id, "editMessageText"))
    await sweep_polls(harness.app)  # nothing stale: no edit
    await harness.settle()
    assert len(harness.telegram.sent(CHAT.id, "editMessageText")) == edits


async def test_a_poll_closes_at_its_deadline_across_a_restart(db: Database, clock: Clock) -> None:
    async with running_bot(db, clock) as first:
        await _climate_group(first)
        poll = await _open(first, "/poll A? | x | y")
        await first.press(dict(poll.buttons())["2. y"], DENIZ, on=poll, chat=CHAT)
    # A new process, just before the deadline, then at it: the poll closes once, on time.
    clock.now += timedelta(days=7) - timedelta(minutes=1)
    async with running_bot(db, clock, seed=False) as second:
        second.telegram.history = first.telegram.history  # the chat as members see it
        assert await sweep_polls(second.app) == 0
        clock.now += timedelta(minutes=1)
        assert await sweep_polls(second.app) == 1
        await second.settle()
        assert await sweep_polls(second.app) == 0
        await second.settle()
        results = [t for t in second.telegram.texts(CHAT.id) if t.startswith("🏁")]
        assert len(results) == 1 and "Carried: y, chosen by 1 of 1 city that voted." in results[0]
        assert "Closed. Carried: y" in (await _shown(second, poll))
    stored = await _stored_poll(first)
    assert stored.status == "closed" and stored.outcome == 2
