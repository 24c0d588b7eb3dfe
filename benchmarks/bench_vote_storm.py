"""A vote storm: 700 delegates of 70 cities press a poll's buttons within one second.

Run from the project root::

    .venv/bin/python -m benchmarks.bench_vote_storm [--delegates 10] [--cities 70] [--spread 1.0]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]

The presses reach the real Application through the in-process fake Bot API, at the
moments they were pressed (spread evenly over ``--spread`` seconds), and are processed
one at a time, as the bot does in polling and webhook mode. Reported:

* how long each press waited for its answer (answerCallbackQuery): median, 95th, worst;
* when the tally message was final after the first press, and whether it is exact (the
  counts it shows against each city's last press, computed here independently);
* how many editMessageText calls the tally cost, and the most in any one second;
* SQL statements per vote;
* presses per second beside a bare python-telegram-bot echo bot on the same machine in
  the same run (the echo bot answers 700 messages, processed the same way).

Exit status 1 if any press went unanswered or the final tally is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from typing import Any

from sqlalchemy import event
from telegram import Update

from benchmarks.bench_updates import (
    BenchmarkFailure,
    build_bot,
    build_echo_bot,
    scratch_database,
)
from playground.emulator import TelegramEmulator
from playground.updates import User, callback, command, group, message
from storage import roster
from storage.db import Database
from storage.models import (
    Chat,
    Coordinator,
    Delegate,
    DelegateStatus,
    GroupMembership,
    WorkingGroup,
)
from storage.models import User as UserRow
from storage.types import utcnow

CHAT = group(-1001000000777, "B40 Smart Cities")
ZONES = [("TR", "Europe/Istanbul"), ("GR", "Europe/Athens"), ("RS", "Europe/Belgrade")]
OPTIONS = ("Open data", "Smart mobility", "Digital services", "Cyber security")


async def set_up(db: Database, cities: int, delegates: int) -> list[list[User]]:
    """``cities`` member cities of one working group, each with ``delegates`` approved
    delegates, written straight to the database (the setup is not what is measured)."""

    def name(n: int) -> str:  # city names are letters: Storm Ba, Storm Bb, …
        return "Storm " + chr(ord("B") + n // 26) + chr(ord("a") + n % 26)

    rows = "\n".join(f"{name(n)},{ZONES[n % 3][0]},{ZONES[n % 3][1]},false" for n in range(cities))
    parsed = roster.parse_cities_csv("name,country,timezone,founding\n" + rows)
    async with db.transaction() as session:
        await roster.import_cities(session, parsed, today=utcnow().date())
    people: list[list[User]] = []
    async with db.transaction() as session:
        from sqlmodel import select

        from storage.models import City

        found = (await session.exec(select(City).order_by(City.id))).all()  # type: ignore[arg-type]
        group_row = (
            await session.exec(select(WorkingGroup).where(WorkingGroup.slug == "smart-cities"))
        ).one()
        session.add(
            Chat(chat_id=CHAT.id, type="supergroup", title=CHAT.title or "", group_id=group_row.id)
        )
        for index, city in enumerate(found):
            session.add(GroupMembership(group_id=group_row.id or 0, city_id=city.id or 0))
            team = []
            for n in range(delegates):
                user = User(id=40_000_000 + index * 100 + n, first_name=f"D{index}-{n}")
                session.add(UserRow(telegram_id=user.id, full_name=user.first_name))
                session.add(
                    Delegate(
                        user_id=user.id, city_id=city.id or 0, status=DelegateStatus.APPROVED.value
                    )
                )
                team.append(user)
            people.append(team)
        session.add(Coordinator(group_id=group_row.id or 0, user_id=people[0][0].id))
    return people


async def storm(database_url: str | None, cities: int, delegates: int, spread: float) -> int:
    async with scratch_database(database_url) as url:
        db = Database(url)
        await db.upgrade()
        try:
            return await _storm(db, cities, delegates, spread, database_url)
        finally:
            await db.dispose()


async def _storm(
    db: Database, cities: int, delegates: int, spread: float, database_url: str | None
) -> int:
    people = await set_up(db, cities, delegates)
    telegram = TelegramEmulator()
    telegram.chats[CHAT.id] = CHAT.to_dict()
    app = build_bot(db, telegram)
    echo_telegram = TelegramEmulator()
    echo_app = build_echo_bot(echo_telegram)
    async with app, echo_app:
        opener = people[0][0]
        await app.process_update(
            Update.de_json(
                command("/poll Which theme first? | " + " | ".join(OPTIONS), opener, CHAT),
                app.bot,
            )
        )
        [posted] = [c for c in telegram.calls if c.method == "sendMessage"]
        await app.tallies.settle()
        poll_message = telegram._message(posted.params, message_id=int(posted_id(telegram)))
        data = [d for _label, d in posted.buttons()]

        # Who presses what, when: every delegate once, in an order that mixes the cities;
        # a city's vote is its last delegate's press.
        presses: list[tuple[float, User, str]] = []
        total = cities * delegates
        for n in range(total):
            city, member = n % cities, n // cities
            presses.append((spread * n / total, people[city][member], data[(city + member) % 4]))
        expected = [0] * len(OPTIONS)
        last: dict[int, str] = {}
        for _at, user, choice in presses:
            last[(user.id - 40_000_000) // 100] = choice
        for choice in last.values():
            expected[data.index(choice)] += 1

        statements = [0]

        def count(*_args: Any) -> None:
            statements[0] += 1

        queue: asyncio.Queue[tuple[float, dict[str, Any]] | None] = asyncio.Queue()
        waits: list[float] = []
        telegram.calls.clear()
        edits_at: list[float] = []
        original = telegram.api_editMessageText

        def edit(params: dict[str, Any]) -> dict[str, Any]:
            edits_at.append(time.perf_counter())
            return original(params)

        telegram.api_editMessageText = edit  # type: ignore[method-assign]

        async def consume() -> None:
            while (item := await queue.get()) is not None:
                pressed_at, update = item
                await app.process_update(Update.de_json(update, app.bot))
                waits.append(time.perf_counter() - pressed_at)

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        consumer = asyncio.create_task(consume())
        start = time.perf_counter()
        for at, user, choice in presses:
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((time.perf_counter(), callback(choice, user, poll_message, CHAT)))
        await queue.put(None)
        await consumer
        answered = time.perf_counter() - start
        await app.tallies.settle()
        final = (edits_at[-1] if edits_at else time.perf_counter()) - start
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)

        answers = [c for c in telegram.calls if c.method == "answerCallbackQuery"]
        refused = [c for c in answers if not str(c.params.get("text", "")).startswith("Noted")]
        if len(answers) != total:
            raise BenchmarkFailure(f"{total} presses but {len(answers)} answers")
        shown = telegram.shown(CHAT.id, int(posted_id(telegram)))
        counts = [
            int(m) for m in re.findall(r"— <b>(\d+)</b>", str(shown["text"] if shown else ""))
        ]
        if counts != expected:
            raise BenchmarkFailure(f"the tally shows {counts}, the presses make {expected}")

        # The echo bot: the same number of updates, processed the same way, one at a time.
        echo_updates = [
            Update.de_json(message(f"echo {i}", opener, CHAT), echo_app.bot) for i in range(total)
        ]
        echo_start = time.perf_counter()
        for update in echo_updates:
            await echo_app.process_update(update)
        echo_rate = total / (time.perf_counter() - echo_start)

    where = "PostgreSQL" if database_url else "SQLite (temporary directory)"
    per_second: dict[int, int] = {}
    for at in edits_at:
        per_second[int(at - start)] = per_second.get(int(at - start), 0) + 1
    waits.sort()
    rate = total / answered
    print(f"vote storm: {delegates} delegates × {cities} cities pressing within {spread:.1f} s")
    print(f"  database: {where}")
    print(f"  answered: {len(answers)} of {total}; refused {len(refused)}")
    print(
        f"  wait for the answer: median {statistics.median(waits) * 1000:.0f} ms, "
        f"95th {waits[int(0.95 * (len(waits) - 1))] * 1000:.0f} ms, worst {waits[-1] * 1000:.0f} ms"
    )
    print(f"  last press answered {answered:.2f} s after the first press")
    print(f"  tally final and exact ({counts}) {final:.2f} s after the first press")
    print(
        f"  editMessageText calls: {len(edits_at)}, "
        f"most in one second: {max(per_second.values(), default=0)}"
    )
    print(f"  SQL statements per vote: {statements[0] / total:.1f}")
    print(
        f"  presses per second: {rate:.0f} (sustained while answering); "
        f"echo bot {echo_rate:.0f} upd/s; ratio {rate / echo_rate:.2f}"
    )
    within = waits[-1] <= 2.0
    print(f"aim (every press answered within 2 s): {'met' if within else 'NOT met'}")
    most = max(per_second.values(), default=0)
    print(f"aim (at most one tally edit per second): {'met' if most <= 1 else 'NOT met'}")
    return 0


def posted_id(telegram: TelegramEmulator) -> int:
    """The message id of the poll as the fake delivered it (the first message in the chat)."""
    return int(telegram.history[CHAT.id][0]["message_id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_vote_storm", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cities", type=int, default=70)
    parser.add_argument("--delegates", type=int, default=10, help="per city (default 10)")
    parser.add_argument("--spread", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    try:
        return asyncio.run(storm(args.database_url, args.cities, args.delegates, args.spread))
    except BenchmarkFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
