"""The playground's world in-process: the seeded network, people acting, the clock moving,
and a restart that keeps what the page showed (on SQLite and PostgreSQL alike)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import func, select

from playground.world import (
    ATHENS,
    GROUP_CHATS,
    ISTANBUL,
    SARAJEVO,
    SECRETARY,
    STRANGER,
    Playground,
    playground_settings,
)
from storage.db import Database
from storage.models import AgendaItem, AgendaSupport, Delegate, OutboxMessage, WorkingSession

CLIMATE = GROUP_CHATS[0][1].id


def texts(world: Playground, chat_id: int) -> list[str]:
    return [str(m.get("text", "")) for m in world.telegram.history.get(chat_id, [])]


def make_world(db: Database, tmp_path: Path) -> Playground:
    settings = playground_settings(tmp_path / "unused.db")
    # The world runs on whichever database the suite runs on.
    settings = settings.model_copy(update={"database_url": db.url})
    return Playground(settings, db, tmp_path / "playground.db.state.json")


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[Playground]:
    async with make_world(db, tmp_path).running() as running:
        yield running


async def test_the_sample_network_is_there_and_the_chats_start_clean(world: Playground) -> None:
    async with world.db.transaction() as session:
        approved = (
            await session.exec(select(func.count()).where(Delegate.status == "approved"))
        ).one()
        sessions = (await session.exec(select(WorkingSession))).all()
    assert approved == 3
    assert len(sessions) == 1 and sessions[0].title == "Quarterly session"
    assert world.telegram.history == {}
    # Nothing the seeding owed is left undelivered.
    async with world.db.transaction() as session:
        waiting = (
            await session.exec(
                select(func.count()).where(
                    OutboxMessage.sent_at.is_(None),  # type: ignore[union-attr]
                    OutboxMessage.failed_at.is_(None),  # type: ignore[union-attr]
                )
            )
        ).one()
    assert waiting == 0

    before = world.clock()
    await world.say(SARAJEVO, CLIMATE, "/roster")
    after = world.clock()
    roster = texts(world, CLIMATE)[-1]
    # Amra speaks Bosnian; the three cities and their delegates, the coordinator marked.
    for name in ("Amra Hadžić", "Eleni Papadopoulou", "Mehmet Demir", "Sarajevo", "Athens"):
        assert name in roster
    assert "koordinator" in roster
    # Each city's local time now, from the zone rules at the playground's real instant (the
    # minute may turn while the bot answers).
    for city, zone in (("Sarajevo", "Europe/Sarajevo"), ("Athens", "Europe/Athens")):
        shown = {f"{city} — {t.astimezone(ZoneInfo(zone)):%H:%M}" for t in (before, after)}
        assert any(line in roster for line in shown), (shown, roster)


async def test_a_stranger_is_told_how_to_register_and_cannot_organise(world: Playground) -> None:
    await world.say(STRANGER, STRANGER.id, "/next")
    await world.say(STRANGER, CLIMATE, "/schedule 2027-01-12 10:00")
    private, group = texts(world, STRANGER.id), texts(world, CLIMATE)
    assert private[0] == "/next" and len(private) == 2
    assert "/start" in private[1] or "/iam" in private[1]
    assert "coordinator" in group[-1] or "secretariat" in group[-1], group[-1]


async def seeded_session_start(world: Playground) -> datetime:
    async with world.db.transaction() as session:
        return (await session.exec(select(WorkingSession))).one().starts_at


async def test_moving_the_clock_brings_the_reminders(world: Playground) -> None:
    """The seeded session is two to four days ahead of the real time the test runs at;
    the clock is moved to 25 hours before it, then by the page's step of a day."""
    starts_at = await seeded_session_start(world)
    await world.advance(starts_at - timedelta(hours=25) - world.clock())
    before = len(texts(world, CLIMATE))
    assert before == 0  # no reminder is owed yet: the 7-day one fell before it was fixed
    await world.advance(timedelta(days=1))
    after = texts(world, CLIMATE)
    assert len(after) == 1, after
    assert "Quarterly session" in after[0] and "10:00" in after[0]
    # Moving on past the session brings nothing more: the 1-hour reminder is owed for a
    # session that has started by then, and is dropped, not sent late.
    await world.advance(timedelta(days=2))
    assert texts(world, CLIMATE) == after


async def test_buttons_work_only_where_the_message_shows_them(world: Playground) -> None:
    await world.say(ATHENS, CLIMATE, "/next")
    card = world.telegram.history[CLIMATE][-1]
    yes = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    toast = await world.press(ATHENS, CLIMATE, card["message_id"], yes)
    assert toast  # the bot says what it noted, in Greek
    assert "Athens" in world.telegram.history[CLIMATE][-1]["text"]
    with pytest.raises(LookupError):
        await world.press(ATHENS, CLIMATE, card["message_id"], "rsvp:1:maybe-not")
    with pytest.raises(LookupError):
        await world.press(ATHENS, CLIMATE, 999_999, yes)


async def test_a_second_press_of_the_same_answer_is_quiet(
    world: Playground, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram refuses an edit that changes nothing; the bot takes that as done."""
    await world.say(ISTANBUL, CLIMATE, "/next")
    card = world.telegram.history[CLIMATE][-1]
    yes = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await world.press(ISTANBUL, CLIMATE, card["message_id"], yes)
    edited = dict(world.telegram.history[CLIMATE][-1])
    await world.press(ISTANBUL, CLIMATE, card["message_id"], yes)
    assert any("not modified" in why for _m, why, _t in world.telegram.refused)
    assert world.telegram.history[CLIMATE][-1]["text"] == edited["text"]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_a_new_person_starts_the_bot_and_is_spoken_to_in_their_language(
    world: Playground,
) -> None:
    person = world.add_person("  Zeynep   Kaya ", "tr")
    assert (person.first_name, person.last_name) == ("Zeynep", "Kaya")
    await world.say(person, person.id, "/start")
    assert "hoş geldiniz" in texts(world, person.id)[-1]


async def test_the_bot_cannot_write_first_to_someone_who_never_started_it(
    world: Playground,
) -> None:
    """A claim notice to a secretariat member who never opened the bot is refused by
    Telegram (403), and the outbox records it, as in production."""
    world.telegram.started.discard(SECRETARY.id)
    newcomer = world.add_person("Ivo Petrov", "bg")
    await world.say(newcomer, newcomer.id, "/iam Sofia")
    assert SECRETARY.id not in world.telegram.history
    async with world.db.transaction() as session:
        failed = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == SECRETARY.id))
        ).all()
    assert [m.error for m in failed if m.failed_at is not None], failed


async def test_a_restart_keeps_the_chats_the_people_and_the_clock(
    db: Database, tmp_path: Path
) -> None:
    first = make_world(db, tmp_path)
    async with first.running():
        person = first.add_person("Ana Novak", "sl")
        await first.say(person, person.id, "/start")
        await first.advance(timedelta(hours=5))
        shown = texts(first, person.id)
        offset = first.clock.offset
    state = json.loads((tmp_path / "playground.db.state.json").read_text(encoding="utf-8"))
    assert state["clock_offset_seconds"] == 5 * 3600

    second = make_world(db, tmp_path)
    async with second.running():
        assert second.people[person.id].name == "Ana Novak"
        assert texts(second, person.id) == shown
        assert second.clock.offset == offset
        # Update ids go on: the bot answers rather than taking this for one it saw.
        await second.say(person, person.id, "/help")
        assert len(texts(second, person.id)) == len(shown) + 2
        async with second.db.transaction() as session:
            sessions = (await session.exec(select(func.count(WorkingSession.id)))).one()
        assert sessions == 1  # not seeded twice


async def test_the_seeded_session_has_an_agenda_and_a_request_waiting(world: Playground) -> None:
    async with world.db.transaction() as session:
        items = (await session.exec(select(AgendaItem).order_by(AgendaItem.id))).all()  # type: ignore[arg-type]
        supports = (await session.exec(select(AgendaSupport))).all()
        meeting = (await session.exec(select(WorkingSession))).one()
    assert [(i.title, i.status, i.minutes, i.session_id) for i in items] == [
        ("Heat action plans for schools", "accepted", 30, meeting.id),
        ("Flood early warning across borders", "pending", None, meeting.id),
    ]
    assert len(supports) == 1
    await world.say(ISTANBUL, CLIMATE, "/agenda")
    shown = texts(world, CLIMATE)[-1]
    # Mehmet reads Turkish: the item's line, its 30 minutes in his words.
    assert "1. #1 Heat action plans for schools — İstanbul · 30 " in shown
    assert "#2 Flood early warning across borders — Athens" in shown
