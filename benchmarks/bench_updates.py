"""Updates per second through the real Application, against the in-process fake Bot API.

Run from the project root::

    .venv/bin/python -m benchmarks.bench_updates [--updates N] [--rounds R]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]

Four scenarios, interleaved round by round (the machine is shared and noisy):

* ``echo``: a bare python-telegram-bot echo bot (one MessageHandler, reply_text), the baseline;
* ``roster``: ``/roster`` in a working group's chat with six member cities and their delegates;
* ``join/leave``: an approved delegate's ``/join`` and ``/leave`` alternating in that chat;
* ``chatter``: plain messages in that chat, which no handler takes (no reply, no SQL).

Each scenario of the bot also counts the SQL statements one update costs.

Every update goes through ``Application.process_update`` inside ``async with app:``; the
rate limiter is off for both bots so Telegram's 30 messages/s does not cap either. Every
update must be answered with the expected sendMessage, or the benchmark fails (exit 1).
With ``--database-url`` a scratch PostgreSQL database is created next to the one named,
and dropped afterwards; the default is SQLite in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.application import B40Application, build_application
from bot.settings import Settings
from playground.emulator import BOT_TOKEN, Call, EmulatorRequest, TelegramEmulator
from playground.updates import User, command, group, message
from storage.db import Database
from storage.types import utcnow
from tests.conftest import SECRETARY, BotHarness, Clock, link_chat, make_delegate, seed_cities

CHAT = group(-1001000000042, "B40 Climate Action")
GROUP_SLUG = "climate"
# Six member cities in five countries, each with an approved delegate on the roster.
MEMBERS = [
    (User(23_000_001, "Eleni", "Georgiou", "eleni_ath"), "Athens"),
    (User(23_000_002, "Mehmet", "Demir", "mehmet_ist"), "İstanbul"),
    (User(23_000_003, "Ivana", "Petrova", "ivana_sof"), "Sofia"),
    (User(23_000_004, "Marko", "Jovanović", "marko_bg"), "Belgrade"),
    (User(23_000_005, "Ana", "Horvat", None), "Zagreb"),
    (User(23_000_006, "Andrei", "Popescu", "andrei_cta"), "Constanța"),
]
# The delegate who joins and leaves; not on the roster between rounds.
JOINER = (User(23_000_007, "Nikos", "Papadopoulos", "nikos_thess"), "Thessaloniki")

SCENARIOS = ("echo", "roster", "join/leave")


class BenchmarkFailure(Exception):
    """The bot did not answer an update as it should have: the figures would be meaningless."""


# --- the database ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def scratch_database(url: str | None) -> AsyncIterator[str]:
    """SQLite in a temporary directory, or a new PostgreSQL database dropped afterwards."""
    if not url:
        with tempfile.TemporaryDirectory(prefix="b40-bench-") as directory:
            yield f"sqlite:///{Path(directory) / 'b40.db'}"
        return
    import asyncpg

    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise SystemExit(f"--database-url: only postgresql:// is supported, not {url!r}")
    name = f"b40_bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database or "postgres",
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    await admin(f"CREATE DATABASE {name}")
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- the scenarios -----------------------------------------------------------------------------


@dataclass
class Scenario:
    """One kind of traffic for one app: makes updates, and checks the replies to them."""

    name: str
    app: Application[Any, Any, Any, Any, Any, Any]
    telegram: TelegramEmulator
    make_update: Callable[[int], dict[str, Any]]
    # (update, reply) -> a problem, or None if the reply is right
    check_reply: Callable[[dict[str, Any], Call], str | None]
    counter: int = 0
    rates: list[float] = field(default_factory=list)
    replies_expected: bool = True
    statements: list[float] = field(default_factory=list)  # SQL statements per update
    db: Database | None = None

    def updates(self, n: int) -> list[dict[str, Any]]:
        batch = [self.make_update(self.counter + i) for i in range(n)]
        self.counter += n
        return batch

    async def run(self, n: int) -> float:
        """Process ``n`` updates; returns updates per second, after checking every reply."""
        batch = self.updates(n)
        self.telegram.calls.clear()
        refused_before = len(self.telegram.refused)
        bot = self.app.bot
        process = self.app.process_update
        executed = [0]

        def count(*_args: Any) -> None:
            executed[0] += 1

        if self.db is not None:
            event.listen(self.db.engine.sync_engine, "before_cursor_execute", count)
        start = time.perf_counter()
        for data in batch:
            await process(Update.de_json(data, bot))
        elapsed = time.perf_counter() - start
        if self.db is not None:
            event.remove(self.db.engine.sync_engine, "before_cursor_execute", count)
            self.statements.append(executed[0] / n)
        self._check(batch, refused_before)
        self.telegram.calls.clear()
        return n / elapsed

    def _check(self, batch: list[dict[str, Any]], refused_before: int) -> None:
        refused = self.telegram.refused[refused_before:]
        if refused:
            raise BenchmarkFailure(
                f"{self.name}: the fake refused {len(refused)} replies: {refused[0]}"
            )
        sent = [c for c in self.telegram.calls if c.method == "sendMessage"]
        if not self.replies_expected:
            if sent:
                raise BenchmarkFailure(f"{self.name}: the bot answered chatter: {sent[0].text!r}")
            return
        if len(sent) != len(batch):
            raise BenchmarkFailure(
                f"{self.name}: {len(batch)} updates but {len(sent)} sendMessage calls"
                + (f"; last reply: {sent[-1].text[:200]!r}" if sent else "")
            )
        for data, reply in zip(batch, sent, strict=True):
            problem = self.check_reply(data, reply)
            if problem is not None:
                raise BenchmarkFailure(f"{self.name}: {problem}; reply was {reply.text[:300]!r}")


def _in_chat(reply: Call) -> str | None:
    return (
        None if reply.chat_id == CHAT.id else f"reply went to chat {reply.chat_id}, not {CHAT.id}"
    )


def echo_scenario(
    app: Application[Any, Any, Any, Any, Any, Any], telegram: TelegramEmulator
) -> Scenario:
    def make(i: int) -> dict[str, Any]:
        # The same updates the bot gets: a command in the group chat, from a member.
        return command("/roster", MEMBERS[i % len(MEMBERS)][0], CHAT)

    def check(update: dict[str, Any], reply: Call) -> str | None:
        if reply.text != update["message"]["text"]:
            return "the echo is not the text sent"
        return _in_chat(reply)

    return Scenario("echo", app, telegram, make, check)


def roster_scenario(harness: BotHarness) -> Scenario:
    cities = [city for _user, city in MEMBERS]

    def make(i: int) -> dict[str, Any]:
        return command("/roster", MEMBERS[i % len(MEMBERS)][0], CHAT)

    def check(_update: dict[str, Any], reply: Call) -> str | None:
        missing = [c for c in cities if c not in reply.text]
        if missing or "Local Climate Action" not in reply.text:
            return f"the roster lacks {missing or 'the group name'}"
        return _in_chat(reply)

    return Scenario("roster", harness.app, harness.telegram, make, check, db=harness.db)


def join_leave_scenario(harness: BotHarness) -> Scenario:
    user, city = JOINER

    def make(i: int) -> dict[str, Any]:
        # The counter runs on across rounds, so /join always follows /leave.
        return command("/join" if i % 2 == 0 else "/leave", user, CHAT)

    def check(update: dict[str, Any], reply: Call) -> str | None:
        word = "joined" if update["message"]["text"] == "/join" else "left"
        if city not in reply.text or f" {word} " not in reply.text:
            return f"expected “{city} … {word} …”"
        return _in_chat(reply)

    return Scenario("join/leave", harness.app, harness.telegram, make, check, db=harness.db)


def chatter_scenario(harness: BotHarness) -> Scenario:
    """People talking in the group: no handler takes it, so no database is touched."""

    def make(i: int) -> dict[str, Any]:
        user = MEMBERS[i % len(MEMBERS)][0]
        return message(f"good morning, colleagues ({i})", user, CHAT)

    def check(_update: dict[str, Any], _reply: Call) -> str | None:
        return "chatter got a reply"

    return Scenario(
        "chatter",
        harness.app,
        harness.telegram,
        make,
        check,
        replies_expected=False,
        db=harness.db,
    )


# --- the bots ----------------------------------------------------------------------------------


async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    await message.reply_text(message.text)


def build_echo_bot(telegram: TelegramEmulator) -> Application[Any, Any, Any, Any, Any, Any]:
    app = (
        ApplicationBuilder()
        .token(BOT_TOKEN)
        .request(EmulatorRequest(telegram))
        .get_updates_request(EmulatorRequest(telegram))
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


def build_bot(db: Database, telegram: TelegramEmulator) -> B40Application:
    """The real bot on ``db`` against the emulator: no rate limiter (Telegram's 30 messages
    a second would cap the figures), no timed jobs, and an outbox nobody wakes."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=BOT_TOKEN,
        database_url=db.url,
        secretariat=frozenset({SECRETARY.id}),
    )
    app = build_application(
        settings, db, request=EmulatorRequest(telegram), rate_limiter=False, jobs=False
    )
    app.deps.outbox_written = lambda: None
    return app


async def set_up_group(harness: BotHarness) -> None:
    """Delegates approved, the chat linked and the cities joined, all through real commands."""
    await seed_cities(harness.db)
    for user, city in [*MEMBERS, JOINER]:
        await make_delegate(harness, user, city)
    await link_chat(harness, CHAT, GROUP_SLUG)
    for user, city in MEMBERS:
        calls = await harness.command("/join", user, CHAT)
        texts = [c.text for c in calls if c.method == "sendMessage"]
        if not any(city in t and "joined" in t for t in texts):
            raise BenchmarkFailure(f"setup: {city} did not join {GROUP_SLUG}: {texts}")
    harness.telegram.calls.clear()


# --- the report --------------------------------------------------------------------------------


def report(scenarios: dict[str, Scenario], n: int, rounds: int, database: str) -> None:
    echo_rates = scenarios["echo"].rates
    echo_median = statistics.median(echo_rates)
    print()
    print(f"updates per second, {n} updates per scenario per round, {rounds} rounds, {database}")
    header = f"{'scenario':<12} {'median':>8} {'min':>8} {'max':>8} {'ms/upd':>7}  {'of echo':>7}"
    header += f"  {'per-round ratio':>15}  {'SQL/upd':>7}"
    print(header)
    print("-" * len(header))
    for name, scenario in scenarios.items():
        rates = scenario.rates
        median = statistics.median(rates)
        ratio = median / echo_median
        paired = [r / e for r, e in zip(rates, echo_rates, strict=True)]
        spread = "" if name == "echo" else f"{min(paired):.2f}–{max(paired):.2f}"
        statements = f"{max(scenario.statements):.1f}" if scenario.statements else "-"
        print(
            f"{name:<12} {median:>8.0f} {min(rates):>8.0f} {max(rates):>8.0f} {1000 / median:>7.2f}"
            f"  {ratio:>7.2f}  {spread:>15}  {statements:>7}"
        )
    print()
    roster_ratio = statistics.median(scenarios["roster"].rates) / echo_median
    budgets = {"roster": 4, "join/leave": 6, "chatter": 0}
    for name, budget in budgets.items():
        worst = max(scenarios[name].statements)
        verdict = "met" if worst <= budget else "NOT met"
        print(f"budget ({name} at most {budget} SQL statements per update): {worst:.1f}, {verdict}")
    verdict = "met" if roster_ratio >= 0.15 else "NOT met"
    print(f"aim (roster at least 0.15 of echo): {roster_ratio:.2f}, {verdict}")


# --- main --------------------------------------------------------------------------------------


async def bench(n: int, rounds: int, warmup: int, database_url: str | None) -> int:
    async with scratch_database(database_url) as url:
        db = Database(url)
        await db.upgrade()
        try:
            telegram = TelegramEmulator()
            app = build_bot(db, telegram)
            echo_telegram = TelegramEmulator()
            echo_app = build_echo_bot(echo_telegram)
            async with app, echo_app:
                # The app runs on the real clock (clock=None), as in production.
                harness = BotHarness(app, telegram, db, Clock(utcnow()))
                await set_up_group(harness)
                scenarios = {
                    "echo": echo_scenario(echo_app, echo_telegram),
                    "roster": roster_scenario(harness),
                    "join/leave": join_leave_scenario(harness),
                    "chatter": chatter_scenario(harness),
                }
                for scenario in scenarios.values():
                    await scenario.run(warmup)
                for round_number in range(1, rounds + 1):
                    figures = []
                    for name, scenario in scenarios.items():
                        rate = await scenario.run(n)
                        scenario.rates.append(rate)
                        figures.append(f"{name} {rate:.0f}")
                    print(
                        f"round {round_number}/{rounds}: " + ", ".join(figures) + " upd/s",
                        flush=True,
                    )
            what = "SQLite (temporary directory)" if not database_url else "PostgreSQL"
            report(scenarios, n, rounds, what)
        finally:
            await db.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_updates", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--updates", type=int, default=2000, help="updates per scenario per round (default 2000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds, interleaving the scenarios (default 3)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed updates per scenario first (default: updates/10, 20..200)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgresql://user@host:port/db to run on a scratch PostgreSQL database",
    )
    args = parser.parse_args(argv)
    if args.updates < 1 or args.rounds < 1:
        parser.error("--updates and --rounds must be at least 1")
    warmup = args.warmup if args.warmup is not None else max(20, min(200, args.updates // 10))
    try:
        return asyncio.run(bench(args.updates, args.rounds, warmup, args.database_url))
    except BenchmarkFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
