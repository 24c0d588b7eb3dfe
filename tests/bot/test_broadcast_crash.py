"""A broadcast survives the bot being killed (SIGKILL) mid-delivery and started again.

``b40-bot run`` is started as in production, polling the Bot API emulator over HTTP
(see ``test_polling_over_http``), on a database holding a few hundred approved
delegates. The secretary sends a broadcast to all of them through the real flow
(``/broadcast``, then the audience and Send buttons); while the outbox is part-way
through, the bot's process is killed with SIGKILL: no clean stop, no transaction
finished, leases left on the rows it was working on. A new process on the same
database must then finish the job once those leases run out. This proves the
outbox's promise end to end: every delegate gets the message, nobody else does, at
most one delegate (the message in flight at the kill) gets it twice, and the author
is told that everyone was reached.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from playground.emulator import TelegramEmulator, buttons
from playground.updates import User, callback, command
from storage.db import Database
from storage.models import City, Delegate, DelegateStatus
from storage.models import User as UserRow
from tests.bot.test_polling_over_http import (
    SECRETARY_ID,
    STARTUP_SECONDS,
    STOP_SECONDS,
    bot_env,
    fake_bot_api,
    free_port,
    tail,
    wait_until,
)
from tests.conftest import seed_cities

SECRETARY = User(id=SECRETARY_ID, first_name="Ayşe", last_name="Yılmaz", language_code="en")
DELEGATES = 300
FIRST_DELEGATE = 61_000_001  # no other test uses this range
DELEGATE_IDS = frozenset(range(FIRST_DELEGATE, FIRST_DELEGATE + DELEGATES))
# The kill comes once this many delegates have the message; at 30 messages a second the
# whole broadcast takes about ten seconds, so the kill lands well before the end.
KILL_FROM = 60
KILL_BEFORE = 150
# The restarted bot waits out the dead one's leases (30 s) and its outbox job runs every
# 10 s: about 45 s in the worst case on a quiet machine. The machine may not be quiet.
FLOW_SECONDS = 30.0
RESUME_SECONDS = 150.0


async def add_delegates(database_url: str) -> None:
    """The network's cities and DELEGATES approved delegates spread over them (setup only:
    written directly, not through /iam)."""
    db = Database(database_url)
    try:
        await db.upgrade()
        await seed_cities(db)
        async with db.transaction() as session:
            cities = list((await session.exec(select(City).order_by(col(City.id)))).all())
            assert cities, "no city was seeded"
            for n, user_id in enumerate(sorted(DELEGATE_IDS)):
                city = cities[n % len(cities)]
                session.add(
                    UserRow(telegram_id=user_id, full_name=f"Delegate {n + 1}", language="en")
                )
                session.add(
                    Delegate(
                        user_id=user_id,
                        city_id=city.id or 0,
                        status=DelegateStatus.APPROVED.value,
                    )
                )
    finally:
        await db.dispose()


async def start_bot(env: dict[str, str], cwd: Path, log: Path) -> asyncio.subprocess.Process:
    """``python -m bot run``: the process is the bot itself, not a shell around it."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=cwd, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


def accepted(telegram: TelegramEmulator, text: str) -> Counter[int]:
    """How many times each chat was sent ``text`` and the fake Telegram accepted it."""
    got: Counter[int] = Counter()
    for call, status in zip(telegram.calls, telegram.statuses, strict=False):
        if status == 200 and call.method == "sendMessage" and call.text == text:
            got[call.chat_id or 0] += 1
    return got


def to_delegates(got: Counter[int]) -> Counter[int]:
    return Counter({chat: n for chat, n in got.items() if chat in DELEGATE_IDS})


def describe(got: Counter[int]) -> str:
    delegates = to_delegates(got)
    twice = sorted(chat for chat, n in delegates.items() if n > 1)
    return (
        f"{len(delegates)} of {DELEGATES} delegates reached, "
        f"{len(twice)} more than once {twice[:10]}"
    )


def report_of(telegram: TelegramEmulator, number: int) -> list[str]:
    """The final reports of broadcast ``number`` the secretary received."""
    head = f"Broadcast #{number}</b> is finished"
    return [
        call.text
        for call, status in zip(telegram.calls, telegram.statuses, strict=False)
        if status == 200
        and call.method == "sendMessage"
        and call.chat_id == SECRETARY_ID
        and head in call.text
    ]


def message_with(telegram: TelegramEmulator, pattern: str) -> tuple[dict[str, Any], str] | None:
    """The secretary's latest message with a button whose data matches, and that data."""
    for message in reversed(telegram.history.get(SECRETARY_ID, [])):
        for _label, data in buttons(message):
            if re.fullmatch(pattern, data):
                return message, data
    return None


async def wait_for(
    what: str,
    condition: Callable[[], bool],
    process: asyncio.subprocess.Process,
    log: Path,
    within: float,
    progress: Callable[[], str],
) -> None:
    """Poll until ``condition``; on timeout or a dead bot, fail saying how far it got."""
    deadline = time.monotonic() + within
    while not condition():
        if process.returncode is not None:
            pytest.fail(
                f"the bot exited ({process.returncode}) while waiting for {what}: "
                f"{progress()}\n{tail(log)}"
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {within:.0f} s waiting for {what}: {progress()}\n{tail(log)}"
            )
        await asyncio.sleep(0.02)


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


@pytest.mark.timeout(360)
async def test_a_broadcast_survives_a_killed_process(tmp_path: Path, database_url: str) -> None:
    await add_delegates(database_url)
    text = f"Crash test {uuid.uuid4().hex[:12]}"
    telegram = TelegramEmulator()
    async with fake_bot_api(telegram) as api_port:
        env = bot_env(api_port, free_port(), tmp_path)
        env["B40_DATABASE_URL"] = database_url
        log = tmp_path / "bot.log"

        first = await start_bot(env, tmp_path, log)
        try:
            await wait_until(
                "getUpdates",
                lambda: any(c.method == "getUpdates" for c in telegram.calls),
                first,
                log,
                within=STARTUP_SECONDS,
            )

            def flow(what: str, condition: Callable[[], Any]) -> Any:
                return wait_until(what, condition, first, log, within=FLOW_SECONDS)

            telegram.push_update(command("/language en", SECRETARY))
            await flow(
                "the reply to /language en",
                lambda: any(
                    "English" in m.get("text", "") for m in telegram.history.get(SECRETARY_ID, [])
                ),
            )

            telegram.push_update(command(f"/broadcast {text}", SECRETARY))
            found = await flow(
                "the broadcast's control message",
                lambda: message_with(telegram, r"bc:\d+:a:delegates"),
            )
            control, choose = found
            number = int(choose.split(":")[1])
            assert number == 1, choose
            telegram.push_update(callback(choose, SECRETARY, control))
            control, send = await flow(
                "the Send button",
                lambda: message_with(telegram, rf"bc:{number}:ok:\d+"),
            )
            assert send == f"bc:{number}:ok:{DELEGATES}", (send, control.get("text"))
            telegram.push_update(callback(send, SECRETARY, control))

            # Kill the bot while the outbox is part-way through the delegates.
            await wait_for(
                f"{KILL_FROM} delegates to have the broadcast",
                lambda: len(to_delegates(accepted(telegram, text))) >= KILL_FROM,
                first,
                log,
                RESUME_SECONDS,
                lambda: describe(accepted(telegram, text)),
            )
            os.kill(first.pid, signal.SIGKILL)
            code = await asyncio.wait_for(first.wait(), STOP_SECONDS)
            assert code == -signal.SIGKILL, f"the bot was not killed ({code})\n{tail(log)}"
        finally:
            await stop(first)

        at_kill = to_delegates(accepted(telegram, text))
        delivered_at_kill = len(at_kill)
        assert KILL_FROM <= delivered_at_kill < KILL_BEFORE, (
            f"the kill was meant to land mid-way: {describe(at_kill)}"
        )
        assert report_of(telegram, number) == [], "the broadcast finished before the kill"

        with log.open("ab") as out:
            out.write(b"\n--- killed; the second process starts ---\n")
        started = time.monotonic()
        second = await start_bot(env, tmp_path, log)
        try:
            await wait_for(
                "every delegate and the report after the restart",
                lambda: (
                    to_delegates(accepted(telegram, text)).keys() == DELEGATE_IDS
                    and bool(report_of(telegram, number))
                ),
                second,
                log,
                RESUME_SECONDS,
                lambda: (
                    f"{describe(accepted(telegram, text))} "
                    f"({delivered_at_kill} at the kill); report: {report_of(telegram, number)}"
                ),
            )
            resumed_in = time.monotonic() - started

            got = accepted(telegram, text)
            delegates = to_delegates(got)
            twice = sorted(chat for chat, n in delegates.items() if n > 1)
            progress = f"{describe(got)}, {delivered_at_kill} at the kill, {resumed_in:.0f} s after"
            assert delegates.keys() == DELEGATE_IDS, progress
            assert len(twice) <= 1, f"more than the message in flight was repeated: {progress}"
            assert sum(delegates.values()) <= DELEGATES + 1, progress
            # Nobody else got it, save the secretary's preview of it.
            others = {chat: n for chat, n in got.items() if chat not in DELEGATE_IDS}
            assert others == {SECRETARY_ID: 1}, others
            reports = report_of(telegram, number)
            assert len(reports) == 1, reports
            assert f"{DELEGATES} of {DELEGATES} recipients reached" in reports[0], reports
            assert "Everyone was reached" in reports[0], reports
            assert telegram.refused == [], telegram.refused

            second.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.wait_for(second.wait(), STOP_SECONDS)
            except TimeoutError:
                pytest.fail(
                    f"the bot did not stop within {STOP_SECONDS:.0f} s of SIGTERM\n{tail(log)}"
                )
            assert code == 0, tail(log)
        finally:
            await stop(second)
