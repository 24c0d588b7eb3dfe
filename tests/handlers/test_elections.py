"""The presidency election through the real bot: candidacies, the outgoing city refused,
one vote per member city of the whole network, a tie, the runoff, the new term."""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from playground.emulator import Call
from playground.updates import User, group
from storage import audit
from storage.models import Poll, Presidency
from tests.conftest import SECRETARY, BotHarness, link_chat, make_delegate, replies, snapshot

CLIMATE = group(-1007790001, "B40 Climate")
ECONOMY = group(-1007790002, "B40 Economy")
SOFIA = User(id=79_100_001, first_name="Ivan", language_code="bg")
ATHENS = User(id=79_100_002, first_name="Eleni", language_code="en")
BELGRADE = User(id=79_100_003, first_name="Marko", language_code="en")
ISTANBUL = User(id=79_100_004, first_name="Deniz", language_code="en")
ATHENS_TOO = User(id=79_100_005, first_name="Kostas", language_code="en")
STRANGER = User(id=79_100_006, first_name="Alex", language_code="en")


async def _network(harness: BotHarness) -> None:
    # The secretary reads Turkish by default; this test reads the English.
    await harness.command("/language en", SECRETARY)
    await link_chat(harness, CLIMATE, "climate")
    await link_chat(harness, ECONOMY, "economy")
    for user, city in (
        (SOFIA, "Sofia"),
        (ATHENS, "Athens"),
        (BELGRADE, "Belgrade"),
        (ISTANBUL, "İstanbul"),
        (ATHENS_TOO, "Athens"),
    ):
        await make_delegate(harness, user, city)
    # Sofia holds the term of 2026, the year of the test's clock.
    [said] = replies(await harness.command("/presidency 2026 Sofia", SECRETARY), SECRETARY.id)
    assert "2026" in said


def _said(calls: list[Call], user: User) -> str:
    [text] = replies(calls, user.id)
    return text


def _ballot(calls: list[Call], chat_id: int) -> Call:
    [ballot] = [c for c in calls if c.method == "sendMessage" and c.chat_id == chat_id]
    return ballot


async def _vote(harness: BotHarness, ballot: Call, who: User, city: str) -> str:
    buttons = {label.split(". ", 1)[1]: data for label, data in ballot.buttons()}
    calls = await harness.press(buttons[city], who, on=ballot, chat=who.private)
    [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
    return str(answer.params.get("text"))


async def test_an_election_with_a_tie_a_runoff_and_the_new_term(harness: BotHarness) -> None:
    await _network(harness)
    said = _said(await harness.command("/election", ATHENS), ATHENS)
    assert said.startswith("No presidency election is under way.")
    refused = _said(await harness.command("/election open", ATHENS), ATHENS)
    assert refused == "Only the secretariat can do that."

    opened = _said(await harness.command("/election open", SECRETARY), SECRETARY)
    assert opened.startswith("🗳 Election of the term presidency 2027: candidacies are open.")
    # The outgoing presidency city cannot stand; nor someone who speaks for no city.
    assert _said(await harness.command("/candidacy", SOFIA), SOFIA).startswith("Sofia")
    assert "2026" in _said(await harness.command("/candidacy", SOFIA), SOFIA)
    assert _said(await harness.command("/candidacy", STRANGER), STRANGER).startswith(
        "You are not a delegate of a member city yet."
    )
    stood = _said(await harness.command("/candidacy", ATHENS), ATHENS)
    assert stood == "Athens stands for the term presidency of 2027.\nCandidates: Athens."
    before = await snapshot(harness.db)
    again = _said(await harness.command("/candidacy", ATHENS_TOO), ATHENS_TOO)
    assert again == "Athens already stands for the term presidency of 2027."
    assert await snapshot(harness.db) == before
    assert _said(await harness.command("/candidacy", BELGRADE), BELGRADE).endswith(
        "Candidates: Athens, Belgrade."
    )
    # Closing before the vote opened, voting before it opened: explained.
    assert "still takes candidacies" in _said(
        await harness.command("/election close", SECRETARY), SECRETARY
    )

    calls = await harness.command("/election vote", SECRETARY)
    ballot = _ballot(calls, SECRETARY.id)
    assert ballot.text.startswith(
        "🗳 Election of the term presidency 2027\n\n<b>1.</b> Athens\n<b>2.</b> Belgrade\n\n"
        "0 of 34 cities voted.\n"
    )
    # Every working group's chat is told, with the ballot to press.
    for chat in (CLIMATE, ECONOMY):
        [told] = [c for c in harness.telegram.sent(chat.id) if c.text.startswith("🗳")]
        assert [label for label, _data in told.buttons()] == ["1. Athens", "2. Belgrade"]
    assert "candidacies are closed" in _said(
        await harness.command("/candidacy", ISTANBUL), ISTANBUL
    )

    # One vote per city, the last of its delegates counting; secret: the toast tells only
    # the voter, the ballot only how many cities voted.
    assert await _vote(harness, ballot, ATHENS, "Belgrade") == "Noted for Athens: 2."
    assert await _vote(harness, ballot, ATHENS_TOO, "Athens") == "Noted for Athens: 1."
    assert await _vote(harness, ballot, BELGRADE, "Belgrade") == "Noted for Belgrade: 2."
    assert await _vote(harness, ballot, STRANGER, "Athens") == (
        "You are not a delegate of a member city yet. Send /start in a private chat with me "
        "to register, or /iam <city>."
    )
    shown = harness.telegram.texts(SECRETARY.id)[-1]
    assert "2 of 34 cities voted." in shown and "—" not in shown

    tied = await harness.command("/election close", SECRETARY)
    result = replies(tied, SECRETARY.id)
    assert (
        "<b>1.</b> Athens — <b>1</b>\n<b>2.</b> Belgrade — <b>1</b>\n\n2 of 34 cities voted.\n"
        "Tied: Athens, Belgrade. A runoff between them is open."
    ) in result[0]
    runoff = (
        _ballot(tied, SECRETARY.id)
        if len(result) == 1
        else [c for c in tied if c.method == "sendMessage" and c.chat_id == SECRETARY.id][-1]
    )
    assert runoff.text.startswith("🗳 Election of the term presidency 2027 — runoff\n")
    # The first round's ballot no longer takes votes.
    assert "closed" in await _vote(harness, ballot, ISTANBUL, "Athens")

    assert await _vote(harness, runoff, ISTANBUL, "Athens") == "Noted for İstanbul: 1."
    await _vote(harness, runoff, ATHENS, "Athens")
    await _vote(harness, runoff, BELGRADE, "Belgrade")
    decided = replies(await harness.command("/election close", SECRETARY), SECRETARY.id)
    assert decided[0].endswith(
        "3 of 34 cities voted.\nElected: Athens holds the term presidency of 2027."
    )
    shown = _said(await harness.command("/presidency", ATHENS), ATHENS)
    assert "2027 — Athens" in shown and "2026 — Sofia" in shown
    async with harness.db.transaction() as session:
        [term] = (await session.exec(select(Presidency).where(Presidency.year == 2027))).all()
        actions = [
            e.action for e in await audit.entries(session) if e.action.startswith("election")
        ]
        polls = (await session.exec(select(Poll).where(Poll.kind == "election"))).all()
    assert (term.starts_on, term.ends_on) == (date(2027, 1, 1), date(2027, 12, 31))
    assert actions == [
        "election.open",
        "election.candidacy",
        "election.candidacy",
        "election.vote",
        "election.close",
        "election.runoff",
        "election.close",
    ]
    assert [p.status for p in polls] == ["closed", "closed"]
    # Everyone is told the result, in every group's chat.
    for chat in (CLIMATE, ECONOMY):
        assert any("Elected: Athens" in t for t in harness.telegram.texts(chat.id))
    # The next election is for 2028; Athens, holding 2027, cannot stand in it.
    assert "2028" in _said(await harness.command("/election open", SECRETARY), SECRETARY)
    assert "2027" in _said(await harness.command("/candidacy", ATHENS), ATHENS)


async def test_an_election_nobody_voted_in_stays_open(harness: BotHarness) -> None:
    await _network(harness)
    await harness.command("/election open", SECRETARY)
    assert "nothing to vote on" in _said(
        await harness.command("/election vote", SECRETARY), SECRETARY
    )
    await harness.command("/candidacy", ATHENS)
    await harness.command("/election vote", SECRETARY)
    before = await snapshot(harness.db)
    said = _said(await harness.command("/election close", SECRETARY), SECRETARY)
    assert said == (
        "No city has voted in the election of 2027 yet, so it cannot be decided. It stays open."
    )
    assert await snapshot(harness.db) == before
    assert "already under way" in _said(
        await harness.command("/election open", SECRETARY), SECRETARY
    )
    assert "/election open" in _said(await harness.command("/election nonsense", ATHENS), ATHENS)
