"""Fixtures: a fresh database per test (SQLite, or PostgreSQL when B40_TEST_DATABASE_URL
names one), and the real Application driven through the fake Bot API."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from telegram import Update

from bot.application import B40Application, build_application
from bot.settings import Settings
from handlers.limiter import TelegramLimiter
from playground.emulator import BOT_TOKEN, Call, EmulatorRequest, TelegramEmulator
from playground.updates import Chat, User, callback, command, register
from storage import roster
from storage.db import Database

DATA = Path(__file__).parent.parent / "playground" / "data"
POSTGRES_URL = os.environ.get("B40_TEST_DATABASE_URL", "")
# One template per run, so that two runs on one server (CI, a developer) never share it.
TEMPLATE = f"b40_test_template_{uuid.uuid4().hex[:8]}"

SECRETARY = User(
    id=11_000_001, first_name="Ayşe", last_name="Yılmaz", username="ayse_sec", language_code="tr"
)


def pytest_report_header() -> str:
    where = make_url(POSTGRES_URL).render_as_string() if POSTGRES_URL else None
    return f"database: PostgreSQL {where}" if where else "database: SQLite"


def pytest_sessionfinish() -> None:
    """Drop this run's template database (the per-test databases drop themselves)."""
    if POSTGRES_URL and _template_ready:
        import asyncio

        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))


async def _admin(sql: str) -> None:
    url = make_url(POSTGRES_URL)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


_template_ready = False


async def _postgres_database() -> str:
    """A new PostgreSQL database, cloned from a migrated template built once per run."""
    global _template_ready
    url = make_url(POSTGRES_URL)
    if not _template_ready:
        await _admin(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        await _admin(f"CREATE DATABASE {TEMPLATE}")
        template = Database(url.set(database=TEMPLATE).render_as_string(hide_password=False))
        await template.upgrade()
        await template.dispose()
        _template_ready = True
    name = f"b40_test_{uuid.uuid4().hex[:12]}"
    await _admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return name


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'b40.db'}"
        return
    name = await _postgres_database()
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    await _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    yield database
    await database.dispose()


async def seed_cities(database: Database) -> None:
    rows = roster.parse_cities_csv((DATA / "b40-cities.csv").read_text(encoding="utf-8"))
    async with database.transaction() as session:
        await roster.import_cities(session, rows, today=datetime(2026, 1, 1, tzinfo=UTC).date())


@pytest.fixture
async def seeded(db: Database) -> Database:
    """The test's database with the network's sample cities."""
    await seed_cities(db)
    return db


class Clock:
    """The bot's idea of now; tests set it to instants where zones disagree."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class BotHarness:
    """The real Application, fed updates as Telegram would send them."""

    def __init__(
        self, app: B40Application, telegram: TelegramEmulator, db: Database, clock: Clock
    ) -> None:
        self.app = app
        self.telegram = telegram
        self.db = db
        self.clock = clock

    async def send(self, update: dict[str, Any]) -> list[Call]:
        """Process one update (then deliver the outbox); returns the Bot API calls it caused."""
        before = len(self.telegram.calls)
        await self.app.process_update(Update.de_json(update, self.app.bot))
        await self.settle()
        return self.telegram.calls[before:]

    async def settle(self) -> None:
        """Let the tally redraws and the outbox finish what the updates set off."""
        await self.app.tallies.settle()
        await self.app.outbox.deliver_due()
        if await self.app.broadcasts.settle():
            await self.app.outbox.deliver_due()  # the report a finished broadcast owes

    async def command(
        self, text: str, user: User, chat: Chat | None = None, **kwargs: Any
    ) -> list[Call]:
        return await self.send(command(text, user, chat, **kwargs))

    async def press(
        self, data: str, user: User, on: Call | None = None, chat: Chat | None = None
    ) -> list[Call]:
        """Press a button; ``on`` is the call that sent the message carrying it."""
        message = None
        if on is not None:
            message = self.telegram._message(on.params, message_id=4242)
        return await self.send(callback(data, user, message, chat))

    def register(self, *chats: Chat) -> None:
        register(self.telegram, *chats)


def replies(calls: list[Call], chat_id: int | None = None) -> list[str]:
    """Texts the bot sent or edited in these calls."""
    return [
        c.text
        for c in calls
        if c.method in ("sendMessage", "editMessageText")
        and (chat_id is None or c.chat_id == chat_id)
    ]


WINTER = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # Istanbul +3, Athens +2, Belgrade +1


@pytest.fixture
def clock() -> Clock:
    return Clock(WINTER)


def settings_for(db: Database) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=BOT_TOKEN,
        database_url=db.url,
        secretariat=frozenset({SECRETARY.id}),
    )


@contextlib.asynccontextmanager
async def running_bot(
    db: Database,
    clock: Clock,
    *,
    rate_limiter: bool | TelegramLimiter = False,
    seed: bool = True,
) -> AsyncIterator[BotHarness]:
    """The real Application on ``db``, talking to a fresh fake Telegram."""
    if seed:
        await seed_cities(db)
    telegram = TelegramEmulator()
    app = build_application(
        settings_for(db),
        db,
        request=EmulatorRequest(telegram),
        clock=clock,
        rate_limiter=rate_limiter,
        jobs=False,
    )
    # Tests deliver the outbox themselves, after every update, so nothing runs behind their back.
    app.deps.outbox_written = lambda: None
    # Tally messages are redrawn at once after each vote (the benchmark keeps the 1 s pace).
    app.tallies.interval = 0.0
    app.broadcasts.automatic = False
    async with app:
        yield BotHarness(app, telegram, db, clock)


@pytest.fixture
async def harness(db: Database, clock: Clock) -> AsyncIterator[BotHarness]:
    async with running_bot(db, clock) as bot:
        yield bot


DOMAIN_TABLES = (
    "country",
    "city",
    "delegate",
    "secretariat_member",
    "working_group",
    "group_membership",
    "chat",
    "coordinator",
    "presidency",
    "membership_application",
    "audit_log",
    "outbox_message",
    "broadcast",
    "working_session",
    "session_rsvp",
    "poll",
    "poll_option",
    "poll_vote",
    "agenda_item",
    "agenda_support",
    "agenda_opinion",
)


async def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every domain table, to prove a refused command changed nothing."""
    from sqlalchemy import text

    result: dict[str, list[tuple[Any, ...]]] = {}
    async with database.engine.connect() as connection:
        for table in DOMAIN_TABLES:
            rows = await connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 (fixed names)
            result[table] = sorted((tuple(map(repr, row)) for row in rows), key=repr)
    return result


def approve_button(harness: BotHarness, user_id: int) -> tuple[Call, str]:
    """The secretariat's latest notice about ``user_id``'s claim, and its Approve data."""
    for call in reversed(harness.telegram.sent(SECRETARY.id)):
        if f"user id {user_id}" in call.text or f"{user_id}," in call.text:
            approve = [data for _label, data in call.buttons() if data.startswith("dlg:ok:")]
            if approve:
                return call, approve[0]
    raise AssertionError(f"no claim notice about {user_id}")


async def make_delegate(harness: BotHarness, user: User, city: str, role: str = "") -> None:
    """A delegate approved the way people do it: /iam, then Approve on the secretariat's notice."""
    await harness.command(f"/iam {city} {role}".strip(), user)
    notice, data = approve_button(harness, user.id)
    calls = await harness.press(data, SECRETARY, on=notice)
    assert any(city in t for t in replies(calls, SECRETARY.id)), replies(calls)


async def working_group(
    harness: BotHarness,
    chat: Chat,
    slug: str,
    members: Sequence[tuple[User, str]],
    *,
    coordinator: User,
) -> None:
    """A working group's chat, linked; each (user, city) an approved delegate whose city
    joined it there; ``coordinator`` (one of them) appointed by the secretariat."""
    await link_chat(harness, chat, slug)
    for user, city in members:
        await make_delegate(harness, user, city)
        await harness.command("/join", user, chat)
    await harness.command(f"/coordinator {coordinator.id}", SECRETARY, chat)


async def link_chat(harness: BotHarness, chat: Chat, slug: str) -> None:
    harness.register(chat)
    calls = await harness.command(f"/link {slug}", SECRETARY, chat)
    # The success text (in the secretary's language), not a refusal.
    assert [f"({slug})" in t and "/join" in t for t in replies(calls, chat.id)] == [True], calls
