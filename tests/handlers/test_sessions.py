"""Sessions through the real bot: fixing, RSVPs, /next, /sessions, moving, cancelling,
reminders across a restart. The group spans three offsets in winter (Belgrade +1,
Athens +2, İstanbul +3) and two in summer, when Athens and İstanbul read the same clock."""

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
from storage.models import OutboxMessage, WorkingGroup, WorkingSession
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

CHAT = group(-1007770001, "B40 Climate")
COORDINATOR = User(id=77_100_001, first_name="Marko", language_code="en")  # Belgrade
ELENI = User(id=77_100_002, first_name="Eleni", language_code="el")  # Athens
DENIZ = User(id=77_100_003, first_name="Deniz", language_code="en")  # İstanbul
OUTSIDER = User(id=77_100_004, first_name="Ana", language_code="en")  # Zagreb, not in the group
WINTER_TABLE = "10:00–11:30 Belgrade · 11:00–12:30 Athens · 12:00–13:30 İstanbul"


async def _climate_group(harness: BotHarness) -> None:
    await link_chat(harness, CHAT, "climate")
    for user, city in ((COORDINATOR, "Belgrade"), (ELENI, "Athens"), (DENIZ, "İstanbul")):
        await make_delegate(harness, user, city)
        assert "joined" in replies(await harness.command("/join", user, CHAT))[0] or user == ELENI
    await harness.command(f"/coordinator {COORDINATOR.id}", SECRETARY, CHAT)
    await make_delegate(harness, OUTSIDER, "Zagreb")


async def _schedule(harness: BotHarness, text: str) -> Call:
    calls = await harness.command(text, COORDINATOR, CHAT)
    [reply] = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
    return reply


async def _sessions(harness: BotHarness) -> list[WorkingSession]:
    async with harness.db.transaction() as session:
        return list((await session.exec(select(WorkingSession))).all())


async def test_a_fixed_session_shows_every_citys_local_time(harness: BotHarness) -> None:
    await _climate_group(harness)
    winter = await _schedule(
        harness, "/schedule 2026-02-10 10:00 Europe/Belgrade 90 | Heat action plans"
    )
    [meeting] = await _sessions(harness)
    assert meeting.starts_at == datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    assert meeting.ends_at == datetime(2026, 2, 10, 10, 30, tzinfo=UTC)
    assert winter.text == (
        f"📅 Session #{meeting.id} of <b>Local Climate Action</b> (climate) is fixed.\n"
        "<b>Heat action plans</b>\n"
        "Tuesday, 10 February 2026\n"
        f"{WINTER_TABLE}\n"
        f"Join: {meeting.join_url}"
    )
    assert [data for _label, data in winter.buttons()] == [
        f"rsvp:{meeting.id}:yes",
        f"rsvp:{meeting.id}:maybe",
        f"rsvp:{meeting.id}:no",
    ]
    # After the March switch Athens and İstanbul read the same clock; the zone defaults to
    # the network's (İstanbul), so 12:00 there is 10:00 in Belgrade.
    summer = await _schedule(harness, "/schedule 2026-03-30 12:00-13:00")
    assert "Monday, 30 March 2026\n11:00–12:00 Belgrade · 12:00–13:00 Athens, İstanbul\n" in (
        summer.text
    )


async def test_rsvps_are_counted_per_city_and_redraw_the_card(harness: BotHarness) -> None:
    await _climate_group(harness)
    card = await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade")
    [meeting] = await _sessions(harness)
    yes, maybe, no = (data for _label, data in card.buttons())

    pressed = await harness.press(yes, ELENI, on=card, chat=CHAT)
    [answer] = [c for c in pressed if c.method == "answerCallbackQuery"]
    assert answer.params["text"] == "Σημειώθηκε για Athens: έρχεται."
    await harness.press(maybe, DENIZ, on=card, chat=CHAT)
    redrawn = await harness.press(no, COORDINATOR, on=card, chat=CHAT)
    [edit] = [c for c in redrawn if c.method == "editMessageText"]
    assert edit.text.endswith("1 city coming: Athens\nMaybe: İstanbul\nNot coming: Belgrade"), (
        edit.text
    )

    # A delegate of a city outside the group is told so; nothing is recorded.
    refused = await harness.press(yes, OUTSIDER, on=card, chat=CHAT)
    [alert] = [c for c in refused if c.method == "answerCallbackQuery"]
    assert alert.params["text"] == "Zagreb is not a member of Local Climate Action."
    # The last answer counts: the coordinator comes after all.
    await harness.press(yes, COORDINATOR, on=card, chat=CHAT)
    shown = replies(await harness.command("/next", DENIZ, CHAT), CHAT.id)[0]
    assert shown.endswith("2 cities coming: Athens, Belgrade\nMaybe: İstanbul"), shown
    assert f"Next: Session #{meeting.id}" in shown


async def test_forged_rsvp_buttons_are_refused_silently(harness: BotHarness) -> None:
    await _climate_group(harness)
    card = await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade")
    [meeting] = await _sessions(harness)
    before = await snapshot(harness.db)
    # Data for another session, not on the card's keyboard.
    forged = await harness.press(f"rsvp:{(meeting.id or 0) + 1}:yes", ELENI, on=card, chat=CHAT)
    assert [c.params.get("text") for c in forged if c.method == "answerCallbackQuery"] == [None]
    assert replies(forged) == []
    assert await snapshot(harness.db) == before


async def test_next_and_sessions_in_private_speak_the_readers_language(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade | Heat")
    await _schedule(harness, "/schedule 2026-02-03 10:00 Europe/Belgrade | Water")
    [reply] = replies(await harness.command("/next", ELENI, ELENI.private))
    # The soonest first; the weekday and date in Greek, the cities as they are named.
    assert "Water" in reply and "Τρίτη 3 Φεβρουαρίου 2026" in reply, reply
    assert WINTER_TABLE in reply
    listed = replies(await harness.command("/sessions", DENIZ, DENIZ.private))[0]
    assert listed.index("Water") < listed.index("Heat")
    assert listed.count(WINTER_TABLE) == 2
    # Someone with no city and no role has no sessions to see, and is told why.
    stranger = User(id=77_100_099, first_name="Zoe", language_code="en")
    [told] = replies(await harness.command("/sessions", stranger, stranger.private))
    assert "not a delegate of a member city" in told


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/schedule 2026-02-30 10:00", "“2026-02-30” is not a date. Write dates as YYYY-MM-DD"),
        ("/schedule 2026-02-10 25:00", "“25:00” is not a time."),
        (
            "/schedule 2026-03-29 03:30 Europe/Athens",
            "03:30 does not exist on 2026-03-29 in Europe/Athens",
        ),
        (
            "/schedule 2026-02-10 10:00 Europe/Belgarde",
            "“Europe/Belgarde” is not a time zone I know. Did you mean Europe/Belgrade?",
        ),
        ("/schedule 2026-02-10 10:00 Sofia", "Did you mean Europe/Sofia?"),
        ("/schedule 2026-02-10 10:00-09:00", "would end (09:00) before it starts (10:00)"),
        ("/schedule 2026-02-10 10:00 0", "0 minutes is not possible"),
        ("/schedule 2026-02-10 10:00 481", "481 minutes is not possible"),
        ("/schedule 2026-01-10 10:00", "That time has already passed."),
        ("/schedule", "Give the day and the time: /schedule YYYY-MM-DD HH:MM"),
        ("/schedule 10:00 2026-02-10", "Give the day and the time"),
        ("/schedule 2026-02-10 10:00-11:00 90", "Give the day and the time"),
        ("/move", "No upcoming sessions."),
        ("/move 12", "Give the session's number and its new day and time"),
        ("/move 999 2026-02-11 10:00", "There is no session #999."),
        ("/cancel x", "Give the session's number: /cancel &lt;session&gt;"),
        ("/cancel 999", "There is no session #999."),
    ],
)
async def test_bad_input_is_explained_and_changes_nothing(
    harness: BotHarness, text: str, expected: str
) -> None:
    await _climate_group(harness)
    before = await snapshot(harness.db)
    [reply] = replies(await harness.command(text, COORDINATOR, CHAT), CHAT.id)
    assert expected in reply, reply
    assert await snapshot(harness.db) == before
    assert await _sessions(harness) == []


async def test_only_organisers_fix_move_or_cancel(harness: BotHarness) -> None:
    await _climate_group(harness)
    await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade")
    [meeting] = await _sessions(harness)
    before = await snapshot(harness.db)
    for text in (
        "/schedule 2026-02-11 10:00",
        f"/move {meeting.id} 2026-02-12 10:00",
        f"/cancel {meeting.id}",
        "/cancel",
    ):
        [reply] = replies(await harness.command(text, DENIZ, CHAT), CHAT.id)
        assert reply == (
            "Only this working group's coordinators, the secretariat or the term presidency "
            "can fix, move or cancel its sessions."
        ), text
    assert await snapshot(harness.db) == before
    assert await _sessions(harness) == [meeting]


async def test_a_move_tells_the_group_and_its_old_reminders_are_gone(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade")
    [meeting] = await _sessions(harness)
    clock.now = meeting.starts_at - timedelta(days=7)
    assert await sweep_sessions(harness.app) == 1
    await harness.app.outbox.deliver_due()
    [week] = [t for t in harness.telegram.texts(CHAT.id) if t.startswith("⏰")]
    assert week.startswith(f"⏰ Reminder: Session #{meeting.id} of ")
    assert "starts in 7 days." in week and WINTER_TABLE in week

    clock.now += timedelta(hours=1)
    moved = await harness.command(f"/move {meeting.id} 2026-02-12 10:00 Europe/Belgrade", SECRETARY)
    [told] = [c.text for c in moved if c.chat_id == CHAT.id]
    assert told.startswith(
        f"🔁 Session #{meeting.id} of <b>Local Climate Action</b> (climate) is moved."
    )
    assert "Thursday, 12 February 2026" in told
    assert told.endswith(
        "It was: Tuesday, 10 February 2026 10:00 Belgrade · 11:00 Athens · 12:00 İstanbul"
    )
    # The new time's marks bring its reminders; the old time's marks bring nothing.
    new_start = datetime(2026, 2, 12, 9, 0, tzinfo=UTC)
    for now, written in (
        (new_start - timedelta(days=7), 1),
        (meeting.starts_at - timedelta(days=1), 0),
        (new_start - timedelta(days=1), 1),
        (meeting.starts_at - timedelta(hours=1), 0),
    ):
        clock.now = now
        assert await sweep_sessions(harness.app) == written, now
    await harness.app.outbox.deliver_due()
    reminders = [t for t in harness.telegram.texts(CHAT.id) if t.startswith("⏰")]
    assert len(reminders) == 3
    assert "starts in 7 days." in reminders[1] and "starts in 1 day." in reminders[2]
    assert "Thursday, 12 February 2026" in reminders[2]


async def test_cancel_by_button_and_reminders_withdrawn(harness: BotHarness, clock: Clock) -> None:
    await _climate_group(harness)
    await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade")
    await _schedule(harness, "/schedule 2026-02-17 10:00 Europe/Belgrade")
    first, second = await _sessions(harness)
    [choose] = [
        c for c in await harness.command("/cancel", COORDINATOR, CHAT) if c.chat_id == CHAT.id
    ]
    assert choose.text.startswith("Which session do you want to cancel?")
    assert [data for _l, data in choose.buttons()] == [
        f"ses:cancel:{first.id}",
        f"ses:cancel:{second.id}",
    ]
    done = await harness.press(f"ses:cancel:{second.id}", COORDINATOR, on=choose, chat=CHAT)
    [edit] = [c for c in done if c.method == "editMessageText"]
    assert edit.text.startswith(f"🚫 Session #{second.id} of")
    assert "This session is cancelled." in edit.text
    # Pressed again: already cancelled, said so; nothing changes.
    again = await harness.press(f"ses:cancel:{second.id}", COORDINATOR, on=choose, chat=CHAT)
    [alert] = [c for c in again if c.method == "answerCallbackQuery"]
    assert alert.params["text"] == (
        f"Session #{second.id} is cancelled; it cannot be changed any more."
    )
    clock.now = second.starts_at - timedelta(days=1)
    assert await sweep_sessions(harness.app) == 0


async def test_reminders_survive_a_restart_neither_lost_nor_repeated(
    db: object, clock: Clock
) -> None:
    from storage.db import Database

    assert isinstance(db, Database)
    async with running_bot(db, clock) as first:
        await _climate_group(first)
        await _schedule(first, "/schedule 2026-02-10 10:00 Europe/Belgrade")
        [meeting] = await _sessions(first)
        clock.now = meeting.starts_at - timedelta(days=7)
        assert await sweep_sessions(first.app) == 1
        await first.app.outbox.deliver_due()
        assert len([t for t in first.telegram.texts(CHAT.id) if t.startswith("⏰")]) == 1
        # Written but not yet sent when the process dies: the next process sends it.
        clock.now = meeting.starts_at - timedelta(days=1)
        assert await sweep_sessions(first.app) == 1

    # A new process on the same database, the same moment: the seven-day reminder is not
    # repeated and the one-day reminder, owed but unsent, goes out once.
    async with running_bot(db, clock, seed=False) as second:
        assert await sweep_sessions(second.app) == 0
        await second.app.outbox.deliver_due()
        sent = [t for t in second.telegram.texts(CHAT.id) if t.startswith("⏰")]
        assert len(sent) == 1 and "starts in 1 day." in sent[0]
        # Down from just after the one-day mark until 20 minutes before the start.
        clock.now = meeting.starts_at - timedelta(minutes=20)

    async with running_bot(db, clock, seed=False) as third:
        assert await sweep_sessions(third.app) == 1
        await third.app.outbox.deliver_due()
        assert await sweep_sessions(third.app) == 0
        await third.app.outbox.deliver_due()
        sent = [t for t in third.telegram.texts(CHAT.id) if t.startswith("⏰")]
        assert len(sent) == 1 and "starts in 20 minutes." in sent[0]  # late, and says so
    async with db.transaction() as session:
        rows = (
            await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "session.reminder")
                .order_by(col(OutboxMessage.id))
            )
        ).all()
    assert [(r.params["before_minutes"], r.sent_at is not None) for r in rows] == [
        (10080, True),
        (1440, True),
        (60, True),
    ]


async def test_plan_answers_per_city_confirm_next_and_reminder(
    harness: BotHarness, clock: Clock
) -> None:
    """The whole flow: /plan → answers from three cities → confirm → /next → reminder."""
    await _climate_group(harness)
    kostas = User(id=77_100_005, first_name="Kostas", language_code="en")  # Athens too
    await make_delegate(harness, kostas, "Athens")
    # 23–27 March 2026: before the switch; Wednesday 25 March is a holiday in Greece only.
    calls = await harness.command(
        "/plan 2026-03-23 2026-03-27 60 | Quarterly session", COORDINATOR, CHAT
    )
    [poll] = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
    assert poll.text.startswith(
        "🗳 When shall <b>Local Climate Action</b> (climate) meet?\n<b>Quarterly session</b>\n"
        "A session of 60 minutes."
    )
    # Every day has a time all three cities can make but the Greek holiday, which comes last.
    assert "<b>1.</b> Monday, 23 March 2026\n10:00–11:00 Belgrade · 11:00–12:00 Athens · " in (
        poll.text
    )
    assert poll.text.endswith(
        "<b>5.</b> Wednesday, 25 March 2026\n"
        "10:00–11:00 Belgrade · 11:00–12:00 Athens · 12:00–13:00 İstanbul\n"
        "✅ — · ❔ — · ❌ —\n"
        "Left out: Athens (holiday: Independence Day)"
    ), poll.text
    data = dict(poll.buttons())

    greek = await harness.press(data["2 ✅"], ELENI, on=poll, chat=CHAT)
    # Eleni reads Greek: her confirmation speaks it, and so does the redrawn poll, since this
    # group has not chosen a language of its own (/language sets one for everyone).
    assert [c.params["text"] for c in greek if c.method == "answerCallbackQuery"] == [
        "Σημειώθηκε για Athens: ώρα 2, ναι."
    ]
    [redrawn] = [c.text for c in greek if c.method == "editMessageText"]
    assert redrawn.startswith("🗳 Πότε θα συνεδριάσει η ομάδα <b>Local Climate Action</b>")
    assert "<b>2.</b> Τρίτη 24 Μαρτίου 2026\n" in redrawn
    await harness.press(data["2 ❔"], DENIZ, on=poll, chat=CHAT)
    await harness.press(data["2 ✅"], COORDINATOR, on=poll, chat=CHAT)
    # Another delegate of Athens answers last: Athens's answer is now theirs.
    pressed = await harness.press(data["2 ❌"], kostas, on=poll, chat=CHAT)
    [answer] = [c for c in pressed if c.method == "answerCallbackQuery"]
    assert answer.params["text"] == "Noted for Athens: time 2, no."
    [edit] = [c for c in pressed if c.method == "editMessageText"]
    assert "<b>2.</b> Tuesday, 24 March 2026\n" in edit.text
    assert "✅ Belgrade · ❔ İstanbul · ❌ Athens" in edit.text

    # Not a member city; not an organiser: refused, with the reason.
    for who, button, said in (
        (OUTSIDER, "2 ✅", "Zagreb is not a member of Local Climate Action."),
        (DENIZ, "📌 2", "Only this working group's coordinators, the secretariat or the term"),
    ):
        refused = await harness.press(data[button], who, on=poll, chat=CHAT)
        [alert] = [c for c in refused if c.method == "answerCallbackQuery"]
        assert alert.params["text"].startswith(said), alert.params
        assert alert.params["show_alert"] is True

    confirmed = await harness.press(data["📌 2"], COORDINATOR, on=poll, chat=CHAT)
    [meeting] = await _sessions(harness)
    assert meeting.title == "Quarterly session"
    assert meeting.starts_at == datetime(2026, 3, 24, 9, 0, tzinfo=UTC)
    [closed] = [c for c in confirmed if c.method == "editMessageText"]
    assert f"Closed: time 2 is fixed as session #{meeting.id}." in closed.text
    assert closed.buttons() == []
    [fixed] = [c for c in confirmed if c.method == "sendMessage" and c.chat_id == CHAT.id]
    assert fixed.text.startswith(f"📅 Session #{meeting.id} of ")
    # Pressed again, or another time: the poll is closed; nothing else is fixed.
    again = await harness.press(data["📌 3"], COORDINATOR, on=poll, chat=CHAT)
    [alert] = [c for c in again if c.method == "answerCallbackQuery"]
    assert alert.params["text"] == "This poll is closed; answers and choices are no longer taken."
    assert len(await _sessions(harness)) == 1

    shown = replies(await harness.command("/next", DENIZ, CHAT), CHAT.id)[0]
    assert "Tuesday, 24 March 2026\n10:00–11:00 Belgrade · 11:00–12:00 Athens · 12:00–13:00" in (
        shown
    )
    await harness.press(f"rsvp:{meeting.id}:yes", DENIZ, on=fixed, chat=CHAT)
    clock.now = meeting.starts_at - timedelta(days=1)
    assert await sweep_sessions(harness.app) == 1
    await harness.app.outbox.deliver_due()
    [reminder] = [t for t in harness.telegram.texts(CHAT.id) if t.startswith("⏰")]
    assert reminder.startswith(f"⏰ Reminder: Session #{meeting.id} of ")
    assert "starts in 1 day." in reminder and meeting.join_url in reminder
    assert reminder.endswith("1 city coming: İstanbul")


async def test_at_the_deadline_the_best_answered_time_is_fixed(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    calls = await harness.command("/plan 2026-03-23 2026-03-27", COORDINATOR, CHAT)
    [poll] = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
    data = dict(poll.buttons())
    # Time 1: two yes, one no. Time 3: one yes, two maybe. Time 4: two yes, no "no".
    for who, button in (
        (ELENI, "1 ✅"),
        (DENIZ, "1 ✅"),
        (COORDINATOR, "1 ❌"),
        (ELENI, "3 ✅"),
        (DENIZ, "3 ❔"),
        (COORDINATOR, "3 ❔"),
        (ELENI, "4 ✅"),
        (COORDINATOR, "4 ✅"),
    ):
        await harness.press(data[button], who, on=poll, chat=CHAT)
    clock.now += timedelta(hours=47, minutes=59)
    await sweep_sessions(harness.app)
    assert await _sessions(harness) == []
    clock.now += timedelta(minutes=1)
    await sweep_sessions(harness.app)
    await harness.app.outbox.deliver_due()
    [meeting] = await _sessions(harness)
    assert meeting.starts_at.date().isoformat() == "2026-03-27"  # time 4
    assert meeting.created_by is None  # fixed by the bot, at the deadline
    [told] = [t for t in harness.telegram.texts(CHAT.id) if t.startswith("📅")]
    assert told.startswith(f"📅 Session #{meeting.id} of ") and "Friday, 27 March 2026" in told
    # The sweep runs again: nothing more.
    await sweep_sessions(harness.app)
    assert len(await _sessions(harness)) == 1


async def test_a_poll_nobody_answered_closes_without_a_session(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    await harness.command("/plan 2026-03-23 2026-03-27", COORDINATOR, CHAT)
    clock.now += timedelta(days=3)
    await sweep_sessions(harness.app)
    await harness.app.outbox.deliver_due()
    assert await _sessions(harness) == []
    [told] = [t for t in harness.telegram.texts(CHAT.id) if t.startswith("🗳")][-1:]
    assert "Closed: no proposed time suited any city." in told


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/plan 2026-03-27 2026-03-23", "The period ends (2026-03-23) before it starts"),
        ("/plan 2026-01-01 2027-03-01", "The period is 425 days long; I search at most 366"),
        ("/plan 2025-03-01 2025-03-02", "That period is over."),
        ("/plan 2026-03-01", "/plan proposes the best times"),
        ("/plan 2026-03-23 2026-03-27 0", "0 minutes is not possible"),
        ("/plan 2026-03-23 2026-03-27 20", "in steps of 15; 20 minutes is not possible"),
        ("/plan 2026-03-23 2026-03-27 600", "600 minutes is not possible"),
        ("/plan 2026-03-28 2026-03-29", "there is no time at which any of the 3 member cities"),
    ],
)
async def test_bad_plans_are_explained_and_change_nothing(
    harness: BotHarness, text: str, expected: str
) -> None:
    await _climate_group(harness)
    before = await snapshot(harness.db)
    [reply] = replies(await harness.command(text, COORDINATOR, CHAT), CHAT.id)
    assert expected in reply, reply
    assert await snapshot(harness.db) == before


async def test_working_hours_are_set_by_the_city_and_planning_keeps_to_them(
    harness: BotHarness,
) -> None:
    await _climate_group(harness)
    [shown] = replies(await harness.command("/hours", DENIZ, CHAT), CHAT.id)
    assert shown.startswith(
        "Working hours for planning: İstanbul (Türkiye): 09:00–17:00, Mon–Fri "
        "(local time in Europe/Istanbul)"
    ), shown
    # İstanbul works 08:00–12:00 local: in winter that is 06:00–10:00 Belgrade time, so
    # with Belgrade's 09:00 start only 09:00–10:00 Belgrade (11:00–12:00 İstanbul) is common.
    [done] = replies(await harness.command("/hours 08:00-12:00 Mon-Thu", DENIZ, CHAT), CHAT.id)
    assert done == (
        "Working hours for planning are now: İstanbul (Türkiye): 08:00–12:00, Mon–Thu "
        "(local time in Europe/Istanbul)"
    )
    async with harness.db.transaction() as session:
        changes = await audit.entries(session, action="city.hours")
    assert [(e.actor_id, e.subject, e.details) for e in changes] == [
        (
            DENIZ.id,
            "İstanbul",
            {"was": ["09:00", "17:00", "12345"], "now": ["08:00", "12:00", "1234"]},
        )
    ]
    calls = await harness.command("/plan 2026-02-09 2026-02-13 60", COORDINATOR, CHAT)
    [poll] = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
    assert poll.text.count("09:00–10:00 Belgrade · 10:00–11:00 Athens · 11:00–12:00 İstanbul") == 4
    # Friday is not İstanbul's working day any more: it is the one left out.
    assert "Friday, 13 February 2026" in poll.text
    assert "Left out: İstanbul (not a working day" in poll.text

    # Another city's delegate may not; the secretariat may, naming the city.
    before = await snapshot(harness.db)
    [refused] = replies(await harness.command("/hours İstanbul 10:00-11:00", ELENI, CHAT), CHAT.id)
    # In Eleni's language: the group has none of its own.
    assert refused == (
        "Μόνο οι εκπρόσωποι της ίδιας της πόλης ή η γραμματεία μπορούν να το κάνουν αυτό."
    )
    assert await snapshot(harness.db) == before
    await harness.command("/hours Istanbul 09:30-17:30 1-5", SECRETARY, SECRETARY.private)
    [again] = replies(await harness.command("/hours", DENIZ, CHAT), CHAT.id)
    assert "09:30–17:30, Mon–Fri" in again


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/hours 17:00-09:00", "Working hours must end after they start"),
        ("/hours 09:00-17:00 Mon-Fry", "“Mon-Fry” are not weekdays I understand."),
        ("/hours 09:00", "Give the working hours"),
        ("/hours 9-17", "Give the working hours"),
        ("/hours Atlantis 09:00-17:00", "I don't know a member city called “Atlantis”"),
    ],
)
async def test_bad_working_hours_are_explained(
    harness: BotHarness, text: str, expected: str
) -> None:
    await _climate_group(harness)
    before = await snapshot(harness.db)
    [reply] = replies(await harness.command(text, DENIZ, CHAT), CHAT.id)
    assert expected in reply, reply
    assert await snapshot(harness.db) == before


async def test_planning_opens_by_itself_before_each_quarter(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    # 2026Q2 starts on Wednesday 1 April; four weeks before is 4 March.
    # The network's day is İstanbul's: 3 March 23:59 there is still a day early; one minute
    # later it is 4 March in İstanbul, while Belgrade still reads 3 March 22:00.
    clock.now = datetime(2026, 3, 3, 20, 59, tzinfo=UTC)
    await sweep_sessions(harness.app)
    await harness.app.outbox.deliver_due()
    assert not [t for t in harness.telegram.texts(CHAT.id) if t.startswith("🗳")]
    clock.now = datetime(2026, 3, 3, 21, 0, tzinfo=UTC)
    await sweep_sessions(harness.app)
    await harness.app.outbox.deliver_due()
    [poll] = [c for c in harness.telegram.sent(CHAT.id) if c.text.startswith("🗳")]
    assert "<b>1.</b> Wednesday, 1 April 2026\n" in poll.text
    # Once a quarter: the next runs open nothing more.
    clock.now += timedelta(days=1)
    await sweep_sessions(harness.app)
    await harness.app.outbox.deliver_due()
    assert len([t for t in harness.telegram.texts(CHAT.id) if t.startswith("🗳")]) == 1
    # The poll the bot posted is answered like any other.
    data = dict(poll.buttons())
    pressed = await harness.press(data["1 ✅"], DENIZ, on=poll, chat=CHAT)
    assert [c.params["text"] for c in pressed if c.method == "answerCallbackQuery"] == [
        "Noted for İstanbul: time 1, yes."
    ]


async def test_cadence_is_set_by_organisers_and_off_means_off(
    harness: BotHarness, clock: Clock
) -> None:
    await _climate_group(harness)
    [refused] = replies(await harness.command("/cadence off", DENIZ, CHAT), CHAT.id)
    assert refused.startswith("Only this working group's coordinators")
    [said] = replies(await harness.command("/cadence off", COORDINATOR, CHAT), CHAT.id)
    assert said == (
        "Planning for <b>Local Climate Action</b> (climate) does not open by itself; "
        "organisers use /plan."
    )
    clock.now = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
    await sweep_sessions(harness.app)
    await harness.app.outbox.deliver_due()
    assert not [t for t in harness.telegram.texts(CHAT.id) if t.startswith("🗳")]
    [said] = replies(await harness.command("/cadence 2", COORDINATOR, CHAT), CHAT.id)
    assert said.endswith("opens by itself 2 weeks before each quarter.")
    [bad] = replies(await harness.command("/cadence 13", COORDINATOR, CHAT), CHAT.id)
    assert bad == "Give a number of weeks from 1 to 12, or off: /cadence 4, /cadence off."
    # A session already fixed in the quarter: nothing to plan.
    await _schedule(harness, "/schedule 2026-04-14 10:00")
    await sweep_sessions(harness.app)
    await harness.app.outbox.deliver_due()
    assert not [t for t in harness.telegram.texts(CHAT.id) if t.startswith("🗳")]


async def test_enough_cities_asking_opens_planning(harness: BotHarness) -> None:
    await _climate_group(harness)
    await harness.command("/join", OUTSIDER, CHAT)  # four cities: two must ask
    [first] = replies(
        await harness.command("/request_session heat wave <plan>", DENIZ, CHAT), CHAT.id
    )
    assert first == (
        "Noted. Cities asking for an extra session: İstanbul. "
        "Planning opens when 2 cities have asked."
    )
    [again] = replies(await harness.command("/request_session", DENIZ, CHAT), CHAT.id)
    assert again.startswith("İstanbul has already asked for an extra session")
    calls = await harness.command("/request_session", OUTSIDER, CHAT)
    [opened] = [c for c in calls if c.chat_id == CHAT.id]
    assert opened.text.startswith(
        "Enough cities asked for an extra session (İstanbul, Zagreb): planning is open.\n\n🗳 "
    )
    assert opened.buttons()
    async with harness.db.transaction() as session:
        from storage.models import SessionRequest

        requests = (await session.exec(select(SessionRequest))).all()
    assert sorted(r.reason for r in requests) == ["", "heat wave <plan>"]
    assert {r.poll_id for r in requests} != {None}


async def test_two_organisers_confirm_at_the_same_moment(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pass every check before either writes: one time is fixed, the other is refused,
    and the session the loser had fixed in its transaction is rolled back with it."""
    from storage import plans

    await _climate_group(harness)
    calls = await harness.command("/plan 2026-03-23 2026-03-27", COORDINATOR, CHAT)
    [poll] = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
    data = dict(poll.buttons())
    both_inside = asyncio.Barrier(2)
    real_confirm = plans.confirm

    async def confirm_together(*args: Any, **kwargs: Any) -> Any:
        await both_inside.wait()
        return await real_confirm(*args, **kwargs)

    monkeypatch.setattr(plans, "confirm", confirm_together)
    message = harness.telegram._message(poll.params, message_id=4242)
    updates = [
        Update.de_json(callback(data[button], who, message, CHAT), harness.app.bot)
        for who, button in ((COORDINATOR, "📌 2"), (SECRETARY, "📌 3"))
    ]
    before = len(harness.telegram.calls)
    await asyncio.wait_for(
        asyncio.gather(*(harness.app.process_update(u) for u in updates)), timeout=30
    )
    answers = [
        c.params.get("text")
        for c in harness.telegram.calls[before:]
        if c.method == "answerCallbackQuery"
    ]
    assert len(answers) == 2 and answers.count(None) == 1, answers
    [meeting] = await _sessions(harness)
    assert meeting.starts_at.date().isoformat() in ("2026-03-24", "2026-03-26")
    async with harness.db.transaction() as session:
        from storage.models import Poll

        [stored] = (await session.exec(select(Poll))).all()
    assert stored.session_id == meeting.id and stored.outcome in (2, 3)


@pytest.mark.parametrize(
    ("text", "starts_at", "table"),
    [
        # The Friday before the October switch: three offsets still in summer (+2 +3 +3).
        (
            "/schedule 2026-10-23 10:00 Europe/Belgrade 60",
            datetime(2026, 10, 23, 8, 0, tzinfo=UTC),
            "10:00–11:00 Belgrade · 11:00–12:00 Athens, İstanbul",
        ),
        # The Monday after it: Belgrade and Athens fell back, İstanbul did not (+1 +2 +3).
        (
            "/schedule 2026-10-26 10:00 Europe/Belgrade 60",
            datetime(2026, 10, 26, 9, 0, tzinfo=UTC),
            "10:00–11:00 Belgrade · 11:00–12:00 Athens · 12:00–13:00 İstanbul",
        ),
        # The night of the switch: 03:30 happens twice in Athens; the first is meant (00:30 UTC).
        (
            "/schedule 2026-10-25 03:30 Europe/Athens 30",
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            "02:30–02:00 Belgrade · 03:30–03:00 Athens · 03:30–04:00 İstanbul",
        ),
        # The night of the March switch: 04:30 in Athens exists (after the jump), 01:30 UTC.
        (
            "/schedule 2026-03-29 04:30 Europe/Athens 60",
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            "03:30–04:30 Belgrade · 04:30–05:30 Athens, İstanbul",
        ),
    ],
)
async def test_sessions_on_both_sides_of_the_switches(
    harness: BotHarness, text: str, starts_at: datetime, table: str
) -> None:
    await _climate_group(harness)
    reply = await _schedule(harness, text)
    [meeting] = await _sessions(harness)
    assert meeting.starts_at == starts_at
    assert table in reply.text, reply.text


async def test_sessions_in_a_groups_chat_lists_that_groups_only(harness: BotHarness) -> None:
    await _climate_group(harness)
    economy = group(-1007770002, "B40 Economy")
    await link_chat(harness, economy, "economy")
    assert replies(await harness.command("/sessions", DENIZ, CHAT), CHAT.id) == [
        "No upcoming sessions."
    ]
    await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade | Heat")
    await harness.command("/schedule 2026-02-11 10:00 Europe/Belgrade | Trade", SECRETARY, economy)
    [climate] = replies(await harness.command("/sessions", DENIZ, CHAT), CHAT.id)
    assert "Heat" in climate and "Trade" not in climate
    [trade] = replies(await harness.command("/sessions", DENIZ, economy), economy.id)
    assert "Trade" in trade and "Heat" not in trade


CADENCE_USAGE = (
    "/cadence &lt;weeks&gt; sets how many weeks before each quarter planning opens by itself; "
    "/cadence off stops it. E.g. /cadence 4."
)
GROUP_HTML = "<b>Local Climate Action</b> (climate)"


@pytest.mark.parametrize(
    ("text", "reply", "weeks"),
    [
        ("/cadence", f"Planning for {GROUP_HTML} opens by itself 4 weeks before each quarter.", 4),
        ("/cadence 1", f"Planning for {GROUP_HTML} opens by itself 1 week before each quarter.", 1),
        (
            "/cadence 12",
            f"Planning for {GROUP_HTML} opens by itself 12 weeks before each quarter.",
            12,
        ),
        (
            "/cadence 0",
            f"Planning for {GROUP_HTML} does not open by itself; organisers use /plan.",
            0,
        ),
        ("/cadence 1000", CADENCE_USAGE, 4),
        ("/cadence soon", CADENCE_USAGE, 4),
    ],
)
async def test_cadence_says_exactly_what_it_did(
    harness: BotHarness, text: str, reply: str, weeks: int
) -> None:
    await _climate_group(harness)
    assert replies(await harness.command(text, COORDINATOR, CHAT), CHAT.id) == [reply]
    async with harness.db.transaction() as session:
        group_row = (
            await session.exec(select(WorkingGroup).where(WorkingGroup.slug == "climate"))
        ).one()
        changes = await audit.entries(session, action="group.cadence")
    assert group_row.cadence_weeks == weeks
    if text in ("/cadence 1", "/cadence 12", "/cadence 0"):
        assert [(e.actor_id, e.subject, e.details) for e in changes] == [
            (COORDINATOR.id, "climate", {"was": 4, "now": weeks})
        ]
    else:
        assert changes == []


async def test_the_secretariat_sees_every_active_groups_sessions(harness: BotHarness) -> None:
    await _climate_group(harness)
    economy = group(-1007770002, "B40 Economy")
    await link_chat(harness, economy, "economy")
    await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade | Heat")
    await harness.command("/schedule 2026-02-11 10:00 Europe/Belgrade | Trade", SECRETARY, economy)
    [everything] = replies(await harness.command("/sessions", SECRETARY, SECRETARY.private))
    assert everything.index("Heat") < everything.index("Trade")
    # A delegate sees their city's groups only: İstanbul is in climate, not in economy.
    [own] = replies(await harness.command("/sessions", DENIZ, DENIZ.private))
    assert "Heat" in own and "Trade" not in own


async def test_sessions_lists_titles_and_says_which_are_cancelled(harness: BotHarness) -> None:
    await _climate_group(harness)
    await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade | Heat <plans>")
    await _schedule(harness, "/schedule 2026-02-17 10:00 Europe/Belgrade")
    [first, second] = sorted(await _sessions(harness), key=lambda s: s.starts_at)
    await harness.command(f"/cancel {second.id}", COORDINATOR, CHAT)
    [listed] = replies(await harness.command("/sessions", DENIZ, CHAT), CHAT.id)
    group_html = "<b>Local Climate Action</b> (climate)"
    assert listed == (
        "<b>Upcoming sessions</b>\n\n"
        f"<b>#{first.id}</b> {group_html} — Heat &lt;plans&gt;\n"
        f"Tuesday, 10 February 2026\n{WINTER_TABLE}\n\n"
        f"<b>#{second.id}</b> {group_html}\n"
        "Tuesday, 17 February 2026\n"
        "10:00–11:30 Belgrade · 11:00–12:30 Athens · 12:00–13:30 İstanbul\n"
        "This session is cancelled.\n\n"
        "/next shows the next one with its link and who is coming."
    )


async def test_a_move_typed_in_the_groups_chat_is_told_there_once(harness: BotHarness) -> None:
    await _climate_group(harness)
    await _schedule(harness, "/schedule 2026-02-10 10:00 Europe/Belgrade")
    [meeting] = await _sessions(harness)
    moved = await harness.command(f"/move {meeting.id} 2026-02-12 10:00", COORDINATOR, CHAT)
    told = [c.text for c in moved if c.chat_id == CHAT.id]
    assert len(told) == 1 and "is moved" in told[0]
    cancelled = await harness.command(f"/cancel {meeting.id}", COORDINATOR, CHAT)
    assert len([c for c in cancelled if c.chat_id == CHAT.id]) == 1
