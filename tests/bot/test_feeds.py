"""Calendar feeds: what /calendar gives, what the feeds hold, read by four independent
parsers (icalendar, vobject, recurring-ical-events and Mozilla's ical.js through Node),
against the database; conditional requests, revocation, bad tokens and hostile text.

Sessions sit on both sides of the March and October switches of Athens and Belgrade
(İstanbul has none), so an offset taken from the wrong side cannot pass."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest
import recurring_ical_events
import vobject
from sqlmodel import col, select

from bot.http import create_http_app
from playground.updates import User, callback, group
from storage import audit
from storage.models import CalendarFeed, WorkingSession
from tests.conftest import (
    SECRETARY,
    BotHarness,
    Clock,
    replies,
    working_group,
)

CHAT = group(-1007810001, "B40 Climate")
COORDINATOR = User(id=81_100_001, first_name="Marko", language_code="en")  # Belgrade
ELENI = User(id=81_100_002, first_name="Eleni", language_code="en")  # Athens
DENIZ = User(id=81_100_003, first_name="Deniz", language_code="en")  # İstanbul
STRANGER = User(id=81_100_004, first_name="Alex", language_code="en")
MEMBERS = ((COORDINATOR, "Belgrade"), (ELENI, "Athens"), (DENIZ, "İstanbul"))
JS = Path(__file__).parent.parent / "js"

# (what is typed, the instant it is): each side of each switch, in three zones.
SESSIONS = [
    ("2026-03-27 10:00 Europe/Athens", datetime(2026, 3, 27, 8, 0, tzinfo=UTC)),  # +2
    ("2026-03-30 10:00 Europe/Athens", datetime(2026, 3, 30, 7, 0, tzinfo=UTC)),  # +3
    ("2026-03-27 10:00 Europe/Belgrade", datetime(2026, 3, 27, 9, 0, tzinfo=UTC)),  # +1
    ("2026-03-30 10:00 Europe/Belgrade", datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),  # +2
    ("2026-10-23 10:00 Europe/Belgrade", datetime(2026, 10, 23, 8, 0, tzinfo=UTC)),  # +2
    ("2026-10-26 10:00 Europe/Belgrade", datetime(2026, 10, 26, 9, 0, tzinfo=UTC)),  # +1
    ("2026-10-23 10:00 Europe/Istanbul", datetime(2026, 10, 23, 7, 0, tzinfo=UTC)),  # +3
    ("2026-10-26 10:00 Europe/Istanbul", datetime(2026, 10, 26, 7, 0, tzinfo=UTC)),  # +3
]


async def _climate_group(harness: BotHarness) -> None:
    await working_group(harness, CHAT, "climate", MEMBERS, coordinator=COORDINATOR)


async def _schedule(harness: BotHarness, when: str, title: str = "") -> WorkingSession:
    text = f"/schedule {when} 90" + (f" | {title}" if title else "")
    calls = await harness.command(text, COORDINATOR, CHAT)
    assert any("is fixed" in t for t in replies(calls, CHAT.id)), replies(calls)
    async with harness.db.transaction() as session:
        rows = await session.exec(select(WorkingSession).order_by(col(WorkingSession.id).desc()))
        found = rows.first()
    assert found is not None
    return found


def _links(text: str) -> list[str]:
    return re.findall(r"(?:https?|webcal)://\S+\.ics", text)


@pytest.fixture
async def client(harness: BotHarness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_http_app(harness.app, webhook_token=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b40.test") as http:
        yield http


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def _group_feed(harness: BotHarness) -> str:
    [said] = replies(await harness.command("/calendar", DENIZ, CHAT), CHAT.id)
    https, webcal = _links(said)
    assert webcal == "webcal://" + https.split("://", 1)[1]
    return _path(https)


def _instants_icalendar(body: bytes) -> dict[str, tuple[datetime, datetime, int, str]]:
    calendar = icalendar.Calendar.from_ical(body)
    return {
        str(e["UID"]): (
            e.decoded("DTSTART"),
            e.decoded("DTEND"),
            int(e.decoded("SEQUENCE")),
            str(e["STATUS"]),
        )
        for e in calendar.walk("VEVENT")
    }


def _instants_vobject(body: bytes) -> dict[str, tuple[datetime, datetime]]:
    calendar = vobject.readOne(body.decode())
    return {
        e.uid.value: (e.dtstart.value.astimezone(UTC), e.dtend.value.astimezone(UTC))
        for e in calendar.vevent_list
    }


def _instants_recurring(body: bytes) -> dict[str, datetime]:
    calendar = icalendar.Calendar.from_ical(body)
    events = recurring_ical_events.of(calendar).between(
        datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
    )
    return {str(e["UID"]): e.decoded("DTSTART").astimezone(UTC) for e in events}


def _ical_js(body: bytes) -> dict[str, object]:
    """The feed as Mozilla's ical.js reads it; skipped (with the reason) where Node is not
    available, and a failure in CI, where it is."""
    node = shutil.which("node")
    installed = (JS / "node_modules" / "ical.js").is_dir()
    if node is None or not installed:
        reason = "Node.js is not installed" if node is None else "run npm ci --prefix tests/js"
        if os.environ.get("CI") == "true":
            pytest.fail(f"ical.js is needed in CI: {reason}")
        pytest.skip(f"ical.js cannot run here: {reason}")
    done = subprocess.run(  # noqa: S603 (a fixed script, our own feed on stdin)
        [node, str(JS / "read_ics.mjs")],
        input=body,
        capture_output=True,
        timeout=60,
        check=True,
        cwd=JS,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def test_a_group_feed_read_alike_by_four_parsers_across_the_switches(
    harness: BotHarness, client: httpx.AsyncClient
) -> None:
    await _climate_group(harness)
    made = [await _schedule(harness, when) for when, _instant in SESSIONS]
    path = await _group_feed(harness)
    answer = await client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    body = answer.content
    assert b"VTIMEZONE" not in body  # UTC instants: see handlers/ics.py
    expected = {f"b40-session-{m.id}@b40-bot": (m.starts_at, m.ends_at) for m in made}
    assert [m.starts_at for m in made] == [instant for _when, instant in SESSIONS]

    by_icalendar = _instants_icalendar(body)
    assert {uid: found[:2] for uid, found in by_icalendar.items()} == expected
    assert _instants_vobject(body) == expected
    assert _instants_recurring(body) == {uid: start for uid, (start, _end) in expected.items()}
    by_js = _ical_js(body)
    assert by_js["name"] == "B40 · Local Climate Action"
    assert {
        str(e["uid"]): (
            datetime.fromisoformat(str(e["start"])),
            datetime.fromisoformat(str(e["end"])),
        )
        for e in by_js["events"]  # type: ignore[attr-defined]
    } == expected

    calendar = icalendar.Calendar.from_ical(body)
    assert str(calendar["REFRESH-INTERVAL"].to_ical().decode()) == "PT1H"
    assert calendar["X-PUBLISHED-TTL"].to_ical().decode() == "PT1H"
    first = next(iter(calendar.walk("VEVENT")))
    description = str(first["DESCRIPTION"])
    # The member cities' local times, on the March switch's eve (Athens +2).
    assert "09:00–10:30 Belgrade · 10:00–11:30 Athens · 11:00–12:30 İstanbul" in description
    assert f"Join: {made[0].join_url}" in description
    assert str(first["URL"]) == made[0].join_url == str(first["LOCATION"])


async def test_moved_and_cancelled_sessions_keep_their_uid_and_raise_sequence(
    harness: BotHarness, client: httpx.AsyncClient
) -> None:
    await _climate_group(harness)
    moved = await _schedule(harness, "2026-02-10 10:00 Europe/Belgrade", "Heat plans")
    dropped = await _schedule(harness, "2026-02-17 10:00 Europe/Belgrade")
    path = await _group_feed(harness)
    first = await client.get(path)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    # The same feed asked again with its tag or its date: 304, no body; HEAD: headers only.
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    since = await client.get(path, headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    head = await client.head(path)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(first.content)
    assert head.headers["etag"] == etag

    await harness.command(f"/move {moved.id} 2026-02-11 11:00 Europe/Belgrade", COORDINATOR, CHAT)
    await harness.command(f"/cancel {dropped.id}", COORDINATOR, CHAT)
    changed = await client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    events = _instants_icalendar(changed.content)
    assert events[f"b40-session-{moved.id}@b40-bot"] == (
        datetime(2026, 2, 11, 10, 0, tzinfo=UTC),
        datetime(2026, 2, 11, 11, 30, tzinfo=UTC),
        1,
        "CONFIRMED",
    )
    assert events[f"b40-session-{dropped.id}@b40-bot"][2:] == (1, "CANCELLED")
    calendar = icalendar.Calendar.from_ical(changed.content)
    moved_event = next(
        e for e in calendar.walk("VEVENT") if str(e["UID"]) == f"b40-session-{moved.id}@b40-bot"
    )
    assert moved_event.decoded("LAST-MODIFIED") >= moved_event.decoded("CREATED")
    # An agenda accepted for the session changes the feed too.
    etag = changed.headers["etag"]
    await harness.command("/propose Heat action plans", DENIZ, CHAT)
    latest = harness.telegram.history[CHAT.id][-1]
    await harness.send(callback("ag:1:acc", COORDINATOR, latest, CHAT))
    with_agenda = await client.get(path, headers={"If-None-Match": etag})
    assert with_agenda.status_code == 200
    # The agenda changed what the event says: LAST-MODIFIED moves, SEQUENCE (the session's
    # version: its time and status) does not.
    harness.clock.now += timedelta(hours=2)
    await harness.command("/agenda minutes 1 25", COORDINATOR, CHAT)
    timed = await client.get(path)
    [before_event] = [
        e
        for e in icalendar.Calendar.from_ical(with_agenda.content).walk("VEVENT")
        if str(e["UID"]) == f"b40-session-{moved.id}@b40-bot"
    ]
    [after_event] = [
        e
        for e in icalendar.Calendar.from_ical(timed.content).walk("VEVENT")
        if str(e["UID"]) == f"b40-session-{moved.id}@b40-bot"
    ]
    assert after_event.decoded("LAST-MODIFIED") > before_event.decoded("LAST-MODIFIED")
    assert after_event.decoded("SEQUENCE") == before_event.decoded("SEQUENCE") == 1
    assert "1. Heat action plans (İstanbul)" in icalendar.Calendar.from_ical(
        with_agenda.content
    ).walk("VEVENT")[0]["DESCRIPTION"].replace("\r", "")


async def test_personal_feeds_show_the_persons_groups_and_answers_and_reset_revokes(
    harness: BotHarness, client: httpx.AsyncClient
) -> None:
    await _climate_group(harness)
    meeting = await _schedule(harness, "2026-02-10 10:00 Europe/Belgrade")
    [said] = replies(await harness.command("/calendar", ELENI), ELENI.id)
    mine, _mine_webcal, network, _network_webcal = _links(said)
    assert said.startswith("📅 Your calendar: every session of your working groups")
    # Eleni's answer is in her own feed.
    card = harness.telegram.history[CHAT.id][-1]
    await harness.send(callback(f"rsvp:{meeting.id}:yes", ELENI, card, CHAT))
    body = (await client.get(_path(mine))).content
    calendar = icalendar.Calendar.from_ical(body)
    assert calendar["X-WR-CALNAME"] == "B40 · my sessions"
    [event] = calendar.walk("VEVENT")
    assert "You are coming." in str(event["DESCRIPTION"])
    assert (await client.get(_path(network))).status_code == 200

    # Reset: the old addresses stop at once; the new ones work.
    [renewed] = replies(await harness.command("/calendar reset", ELENI), ELENI.id)
    new_mine, _w, new_network, _w2 = _links(renewed)
    assert new_mine != mine and new_network != network
    for old in (mine, network):
        gone = await client.get(_path(old))
        assert gone.status_code == 404 and gone.headers["cache-control"] == "no-store"
    renewed_body = (await client.get(_path(new_mine))).content
    assert f"b40-session-{meeting.id}@b40-bot".encode() in renewed_body  # still hers
    # The token is long and random, and not stored: only its hash is.
    token = new_mine.rsplit("/", 1)[1].removesuffix(".ics")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    async with harness.db.transaction() as session:
        feeds = (await session.exec(select(CalendarFeed))).all()
    assert all(token not in repr(f) for f in feeds)
    # Someone who is not a delegate has no personal calendar.
    [refused] = replies(await harness.command("/calendar", STRANGER), STRANGER.id)
    assert refused.startswith("You are not a delegate of a member city yet.")
    # Only organisers reset a group's address; the coordinator can.
    group_path = await _group_feed(harness)
    [no] = replies(await harness.command("/calendar reset", DENIZ, CHAT), CHAT.id)
    assert no.startswith("Only this working group's coordinators")
    assert (await client.get(group_path)).status_code == 200
    [yes] = replies(await harness.command("/calendar reset", COORDINATOR, CHAT), CHAT.id)
    assert yes.startswith("New links: the old ones no longer work.")
    [new_group, _webcal] = _links(yes)
    assert (await client.get(group_path)).status_code == 404
    assert (
        f"b40-session-{meeting.id}@b40-bot".encode() in (await client.get(_path(new_group))).content
    )
    # Eleni's own addresses are untouched by the group's reset.
    assert (await client.get(_path(new_mine))).status_code == 200
    async with harness.db.transaction() as session:
        resets = [
            (e.actor_id, e.subject, e.details["user"], e.details["group"])
            for e in await audit.entries(session, action="calendar.reset")
        ]
    assert resets == [
        (ELENI.id, "calendar:person", ELENI.id, None),
        (ELENI.id, "calendar:network", ELENI.id, None),
        (COORDINATOR.id, "calendar:group", None, 1),
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/calendar/short.ics",
        "/calendar/" + "A" * 42 + "!.ics",
        "/calendar/" + "A" * 43 + ".ics",
        "/calendar/" + "A" * 44 + ".ics",
        "/calendar/..%2F..%2Fhealthz.ics",
        "/calendar/%00" + "A" * 40 + ".ics",
        "/calendar/" + "A" * 43 + ".ics?" + "x=" + "y" * 30_000,
    ],
)
async def test_bad_tokens_get_404_and_the_server_keeps_serving(
    harness: BotHarness, client: httpx.AsyncClient, path: str
) -> None:
    await _climate_group(harness)
    good = await _group_feed(harness)
    assert (await client.get(path)).status_code == 404
    assert (await client.get(good)).status_code == 200


async def test_hostile_text_stays_valid_escaped_and_folded(
    harness: BotHarness, client: httpx.AsyncClient, clock: Clock
) -> None:
    await _climate_group(harness)
    title = 'Heat; plans, "cool" \\ rooms 🌡️ Ελλάδα ' + "ş" * 150
    meeting = await _schedule(harness, "2026-02-10 10:00 Europe/Belgrade", title)

    for n in range(10):
        await harness.command(f"/propose Item {n}; a,b \\ c 🌍 " + "ğ" * 180, DENIZ, CHAT)
        card = harness.telegram.history[CHAT.id][-1]
        await harness.send(callback(f"ag:{n + 1}:acc", COORDINATOR, card, CHAT))
    clock.now = meeting.starts_at + timedelta(minutes=10)
    await harness.command("/outcome 1 First line;\nsecond, line \\ end", COORDINATOR, CHAT)
    body = (await client.get(await _group_feed(harness))).content
    lines = body.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines), max(len(line) for line in lines)
    for line in lines:
        line.decode("utf-8")  # no line ends inside a character
    [event] = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert str(event["SUMMARY"]) == f"Local Climate Action: {' '.join(title.split())}"
    description = str(event["DESCRIPTION"])
    assert len(description) > 2000
    assert "   → First line;\nsecond, line \\ end" in description
    vevent = vobject.readOne(body.decode()).vevent
    assert vevent.summary.value == str(event["SUMMARY"])
    assert vevent.description.value == description
    assert _ical_js(body)["events"][0]["summary"] == str(event["SUMMARY"])  # type: ignore[index]


async def test_the_one_off_file_of_the_next_session(harness: BotHarness) -> None:
    await _climate_group(harness)
    meeting = await _schedule(harness, "2026-03-30 10:00 Europe/Athens", "Spring")
    calls = await harness.command("/next", ELENI, CHAT)
    [shown] = [c for c in calls if c.method == "sendMessage"]
    assert ("📅 Add to my calendar (.ics)", f"ics:{meeting.id}") in shown.buttons()
    pressed = await harness.press(f"ics:{meeting.id}", ELENI, on=shown, chat=CHAT)
    [document] = [c for c in pressed if c.method == "sendDocument"]
    assert document.chat_id == ELENI.id
    [answer] = [c for c in pressed if c.method == "answerCallbackQuery"]
    assert answer.params.get("text") == "The session's calendar file is in our private chat."
    upload = document.params["document"]
    assert upload.name == f"b40-session-{meeting.id}.ics"
    body = upload.data
    assert _instants_icalendar(body)[f"b40-session-{meeting.id}@b40-bot"][:2] == (
        datetime(2026, 3, 30, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 8, 30, tzinfo=UTC),
    )
    # Someone the bot cannot write to privately is told how to fix it.
    harness.telegram.block(DENIZ.id, "sendDocument")
    refused = await harness.press(f"ics:{meeting.id}", DENIZ, on=shown, chat=CHAT)
    [answer] = [c for c in refused if c.method == "answerCallbackQuery"]
    assert str(answer.params.get("text")).startswith("I cannot write to you privately yet")


async def test_a_group_feed_asked_again_costs_one_statement(
    harness: BotHarness, client: httpx.AsyncClient
) -> None:
    """The state the lookup reads in its one statement is the state the feed was built
    under (on both databases): an unchanged feed is answered without a second statement."""
    await _climate_group(harness)
    await _schedule(harness, "2026-02-10 10:00 Europe/Belgrade")
    path = await _group_feed(harness)
    first = await client.get(path)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    from sqlalchemy import event

    engine = harness.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
        full = await client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert again.status_code == 304 and full.content == first.content
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements  # one per request


async def test_the_summit_in_the_networks_calendar_as_whole_days(
    harness: BotHarness, client: httpx.AsyncClient
) -> None:
    await _climate_group(harness)
    await harness.command("/language en", SECRETARY)
    await _schedule(harness, "2026-02-10 10:00 Europe/Belgrade")
    [refused] = replies(await harness.command("/summit 2026-05-12 Sofia", ELENI), ELENI.id)
    assert refused == "Only the secretariat can do that."
    [wrong] = replies(
        await harness.command("/summit 2026-05-14 2026-05-12 Sofia", SECRETARY), SECRETARY.id
    )
    assert wrong.startswith("A summit lasts from one to 7 days")
    await harness.command("/summit 2026-05-12 2026-05-13 Sofia", SECRETARY)
    [said] = replies(
        await harness.command("/summit 2026-05-12 2026-05-14 Thessaloniki", SECRETARY),
        SECRETARY.id,
    )
    assert said.startswith("Recorded: the B40 Summit 2026 in Thessaloniki (Greece), ")
    [listed] = replies(await harness.command("/summit", ELENI), ELENI.id)
    assert listed.startswith("B40 Summit 2026: Thessaloniki (Greece), ")

    [links] = replies(await harness.command("/calendar", ELENI), ELENI.id)
    _mine, _w, network, _w2 = _links(links)
    body = (await client.get(_path(network))).content
    calendar = icalendar.Calendar.from_ical(body)
    [summit] = [e for e in calendar.walk("VEVENT") if str(e["UID"]) == "b40-summit-2026@b40-bot"]
    assert summit.decoded("DTSTART") == date(2026, 5, 12)
    assert summit.decoded("DTEND") == date(2026, 5, 15)  # the day after the last
    assert int(summit.decoded("SEQUENCE")) == 1  # recorded twice
    assert str(summit["SUMMARY"]) == "B40 Summit 2026 · Thessaloniki"
    [by_vobject] = [
        e for e in vobject.readOne(body.decode()).vevent_list if "summit" in e.uid.value
    ]
    assert (by_vobject.dtstart.value, by_vobject.dtend.value) == (
        date(2026, 5, 12),
        date(2026, 5, 15),
    )
    by_js = _ical_js(body)
    [js_summit] = [e for e in by_js["events"] if "summit" in str(e["uid"])]  # type: ignore[attr-defined]
    assert js_summit["summary"] == "B40 Summit 2026 · Thessaloniki"
    # The group's feed is its sessions only.
    group_body = (await client.get(await _group_feed(harness))).content
    assert b"b40-summit-" not in group_body


async def test_a_real_server_survives_a_huge_query_and_answers_the_next_request(
    harness: BotHarness,
) -> None:
    """Under uvicorn itself: a 100 KB query string is refused by the HTTP layer or answered
    404, never a crash, and the feed is served right after."""
    import asyncio
    import socket

    import uvicorn

    await _climate_group(harness)
    path = await _group_feed(harness)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_http_app(harness.app, webhook_token=None), log_level="error")
    )
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
            await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        huge = "/calendar/" + "A" * 43 + ".ics?x=" + "y" * 100_000
        writer.write(f"GET {huge} HTTP/1.1\r\nHost: b40.test\r\n\r\n".encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout=10)
        assert status.split()[1] in (b"400", b"404", b"414", b"431"), status
        writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get(path)).status_code == 200
            assert (await http.get("/calendar/" + "A" * 43 + ".ics")).status_code == 404
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=10)
