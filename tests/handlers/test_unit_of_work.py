"""The path of an update under faults: the bot answers, changes nothing by halves, and never
goes deaf (finding 1 and 2 of the hardening issue)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from telegram import Update

from playground.emulator import Call
from playground.updates import User, bot_message, callback, command, group
from storage import groups
from storage.db import Database
from tests.conftest import (
    POSTGRES_URL,
    BotHarness,
    Clock,
    link_chat,
    make_delegate,
    replies,
    running_bot,
    snapshot,
)

CHAT = group(-1005550001, "B40 Climate Action")
IVANA = User(id=77_000_001, first_name="Ivana", language_code="en")
PETAR = User(id=77_000_002, first_name="Petar", language_code="en")

sqlite_only = pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's write lock")
postgres_only = pytest.mark.skipif(not POSTGRES_URL, reason="needs B40_TEST_DATABASE_URL")


async def _members(harness: BotHarness) -> int:
    async with harness.db.engine.connect() as connection:
        return int(
            (await connection.execute(text("SELECT count(*) FROM group_membership"))).scalar_one()
        )


async def _ready(harness: BotHarness) -> None:
    await link_chat(harness, CHAT, "climate")
    await make_delegate(harness, IVANA, "Sofia")
    await make_delegate(harness, PETAR, "Sofia")


@pytest.fixture
async def quick_lock_db(database_url: str) -> AsyncIterator[Database]:
    """A database whose busy timeout is short, so that waiting out a lock is quick."""
    database = Database(database_url, busy_timeout_ms=200)
    await database.upgrade()
    yield database
    await database.dispose()


@sqlite_only
async def test_a_write_lock_held_too_long_gets_an_apology_and_the_bot_goes_on(
    quick_lock_db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(quick_lock_db, clock) as harness:
        await _ready(harness)
        path = make_url(quick_lock_db.url).database
        assert path is not None
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            calls = await harness.command("/join", IVANA, CHAT)
            texts = replies(calls)
            assert len(texts) == 1 and "something went wrong" in texts[0].lower()
            assert "Traceback" not in texts[0]
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await _members(harness) == 0
        assert "trying once more" in caplog.text
        # The lock is gone: the next update is answered and does what it says.
        joined = replies(await harness.command("/join", IVANA, CHAT))
        assert len(joined) == 1 and "Sofia" in joined[0] and "joined" in joined[0]
        assert await _members(harness) == 1


@contextlib.contextmanager
def commits_fail(harness: BotHarness) -> Iterator[None]:
    """Every commit fails, as on a full disk, until the block ends."""

    def always_fail(connection: Any) -> None:
        raise RuntimeError("disk full")

    event.listen(harness.db.engine.sync_engine, "commit", always_fail)
    try:
        yield
    finally:
        event.remove(harness.db.engine.sync_engine, "commit", always_fail)


async def process(harness: BotHarness, update: dict[str, Any]) -> list[Call]:
    """Process one update without delivering the outbox (that would commit too); returns
    the Bot API calls it caused."""
    start = len(harness.telegram.calls)
    await harness.app.process_update(Update.de_json(update, harness.app.bot))
    return harness.telegram.calls[start:]


async def test_a_commit_that_fails_once_is_retried_and_done_once(harness: BotHarness) -> None:
    await _ready(harness)
    failures = [
        OperationalError(
            "COMMIT", {}, Exception("server closed the connection"), connection_invalidated=True
        )
    ]

    def fail_once(connection: Any) -> None:
        if failures:
            raise failures.pop()

    event.listen(harness.db.engine.sync_engine, "commit", fail_once)
    try:
        texts = replies(await harness.command("/join", IVANA, CHAT))
    finally:
        event.remove(harness.db.engine.sync_engine, "commit", fail_once)
    assert len(texts) == 1 and "joined" in texts[0]
    assert await _members(harness) == 1


async def test_a_commit_that_keeps_failing_changes_nothing(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    await _ready(harness)
    before = await snapshot(harness.db)
    with commits_fail(harness):
        texts = replies(await process(harness, command("/join", IVANA, CHAT)))
    assert len(texts) == 1 and "something went wrong" in texts[0].lower()
    assert "disk full" not in texts[0] and "disk full" in caplog.text
    assert await snapshot(harness.db) == before
    assert "joined" in replies(await harness.command("/join", IVANA, CHAT))[0]


@postgres_only
async def test_postgresql_dropping_its_connections_goes_unnoticed(harness: BotHarness) -> None:
    await _ready(harness)
    assert "joined" in replies(await harness.command("/join", IVANA, CHAT))[0]
    url = make_url(harness.db.url)
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert killed >= 1  # the bot's pooled connections are gone
    roster = replies(await harness.command("/roster", PETAR, CHAT))
    assert len(roster) == 1 and "Sofia" in roster[0]


async def test_two_delegates_of_one_city_join_at_the_same_moment(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pass every check before either writes: one joins, one is told it already has."""
    await _ready(harness)
    both_inside = asyncio.Barrier(2)
    real_join = groups.join

    async def join_together(*args: Any, **kwargs: Any) -> Any:
        await both_inside.wait()
        return await real_join(*args, **kwargs)

    monkeypatch.setattr(groups, "join", join_together)
    before = len(harness.telegram.calls)
    updates = [
        Update.de_json(command("/join", who, CHAT), harness.app.bot) for who in (IVANA, PETAR)
    ]
    await asyncio.wait_for(
        asyncio.gather(*(harness.app.process_update(u) for u in updates)), timeout=30
    )
    texts = replies(harness.telegram.calls[before:], CHAT.id)
    assert len(texts) == 2, texts
    assert sorted("already a member" in t for t in texts) == [False, True], texts
    assert sum("joined" in t for t in texts) == 1, texts
    assert await _members(harness) == 1


async def test_the_bot_survives_an_exception_outside_any_handler(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 1: an exception in the update's own machinery ended PTB's update loop."""
    from storage import updates

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("catalog table vanished")

    monkeypatch.setattr(updates, "load_context", broken)
    calls = await harness.command("/cities", IVANA)
    texts = replies(calls)
    assert len(texts) == 1 and "something went wrong" in texts[0].lower()
    assert "catalog table vanished" in caplog.text
    monkeypatch.undo()
    assert "member cities" in replies(await harness.command("/cities", IVANA))[0]


async def test_chatter_in_a_group_touches_no_database(harness: BotHarness) -> None:
    await link_chat(harness, CHAT, "climate")
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(harness.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        calls = await harness.send(
            {
                "update_id": 9_900_001,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": CHAT.id, "type": "supergroup", "title": "B40"},
                    "from": IVANA.to_dict(),
                    "text": "good morning everyone",
                },
            }
        )
    finally:
        event.remove(harness.db.engine.sync_engine, "before_cursor_execute", count)
    # harness.send also runs the outbox worker: its lease and its look at when the next
    # message put off falls due are two reads of the outbox; nothing else.
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT"]
    assert all("FROM outbox_message" in s for s in statements), statements
    assert calls == []


async def _statements(harness: BotHarness, update: dict[str, Any]) -> list[str]:
    """The SQL one update costs, the outbox worker's own reads aside."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(harness.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await harness.app.process_update(Update.de_json(update, harness.app.bot))
    finally:
        event.remove(harness.db.engine.sync_engine, "before_cursor_execute", count)
    await harness.app.outbox.deliver_due()
    return seen


async def test_what_an_update_costs_in_statements(harness: BotHarness) -> None:
    """The budget: /roster at most 4 statements, /join at most 6."""
    await _ready(harness)
    join = await _statements(harness, command("/join", IVANA, CHAT))
    roster = await _statements(harness, command("/roster", PETAR, CHAT))
    assert "joined" in harness.telegram.texts(CHAT.id)[-2]
    assert "Sofia" in harness.telegram.texts(CHAT.id)[-1]
    print(f"statements: /roster {len(roster)}, /join {len(join)}")
    assert len(roster) <= 4, roster
    assert len(join) <= 6, join


async def test_starting_as_b40_bot_run_does_publishes_the_menu_in_every_language(
    db: Database, clock: Clock
) -> None:
    """Finding 3: the menu was only set by run_polling, which `b40-bot run` does not use."""
    async with running_bot(db, clock, seed=False) as harness:
        menus = harness.telegram.sent(method="setMyCommands")
    languages = [call.params.get("language_code") for call in menus]
    assert languages == [None, "tr", "el", "bg", "ro", "sr", "hr", "bs", "sq", "mk", "sl"]
    english, turkish = (_commands(c.params["commands"]) for c in menus[:2])
    assert [c["command"] for c in english] == [c["command"] for c in turkish]
    assert "start" in [c["command"] for c in english]
    # Translated, not the English descriptions again.
    assert english[0]["description"] != turkish[0]["description"]


def _commands(value: Any) -> list[dict[str, str]]:
    return json.loads(value) if isinstance(value, str) else list(value)


@sqlite_only
async def test_telegram_is_asked_before_the_write_lock_is_taken(harness: BotHarness) -> None:
    """Finding 10: /language in a group called getChatMember while holding SQLite's lock."""
    await link_chat(harness, CHAT, "climate")
    newcomer = User(id=77_000_009, first_name="Nova", language_code="en")  # a first write
    path = make_url(harness.db.url).database
    assert path is not None
    free: list[bool] = []
    answer = harness.telegram.api_getChatMember

    def while_telegram_answers(params: dict[str, Any]) -> dict[str, Any]:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if the bot holds the lock
            other.execute("ROLLBACK")
            free.append(True)
        except sqlite3.OperationalError:
            free.append(False)
        finally:
            other.close()
        return answer(params)

    harness.telegram.api_getChatMember = while_telegram_answers  # type: ignore[method-assign]
    harness.telegram.admins.add((CHAT.id, newcomer.id))
    texts = replies(await harness.command("/language sl", newcomer, CHAT))
    assert free == [True]
    assert texts == ["Odslej v tem klepetu pišem v jeziku: Slovenščina."]


@pytest.mark.parametrize(
    ("language_code", "says"),
    [("el", "Λυπάμαι, κάτι πήγε στραβά"), ("de", "Sorry, something went wrong"), (None, "Sorry")],
)
async def test_the_apology_speaks_the_persons_language_on_a_message_and_a_button(
    harness: BotHarness, language_code: str | None, says: str
) -> None:
    """Without the database, the apology goes by the Telegram app's language (else the
    default): as a message for a command, as an alert on the button for a press."""
    person = User(id=77_000_009, first_name="Eleni", language_code=language_code)
    with commits_fail(harness):
        on_command = await process(harness, command("/help", person))
        on_button = await process(
            harness, callback("lang:el", person, bot_message(person.private, "lang:el"))
        )
    [apology] = [c for c in on_command if c.method == "sendMessage"]
    assert apology.chat_id == person.id and says in apology.text
    assert apology.params.get("parse_mode") == "HTML"
    [alert] = [c for c in on_button if c.method == "answerCallbackQuery"]
    assert says in alert.params["text"] and alert.params["show_alert"] is True
    assert not [c for c in on_button if c.method == "sendMessage"]


async def test_an_apology_telegram_refuses_is_logged_and_the_bot_goes_on(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    person = User(id=77_000_010, first_name="Ana", language_code="en")
    update = command("/help", person)
    harness.telegram.fail("sendMessage", chat_id=person.id, status=403, description="Forbidden")
    with commits_fail(harness):
        await process(harness, update)
    [warning] = [r for r in caplog.records if r.getMessage().startswith("could not apologise")]
    assert warning.getMessage() == (
        f"could not apologise for update {update['update_id']}: Forbidden"
    )
    # The next update is answered as usual.
    assert len(replies(await harness.command("/help", person))) == 1
    # An alert on a button names the press it answers.
    pressed = callback("lang:el", person, bot_message(person.private, "lang:el"))
    with commits_fail(harness):
        calls = await process(harness, pressed)
    [alert] = [c for c in calls if c.method == "answerCallbackQuery"]
    assert alert.params["callback_query_id"] == pressed["callback_query"]["id"]
