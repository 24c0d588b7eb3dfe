"""The outbox under flood control, with two workers, and after a crash mid-delivery."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from handlers.html import units
from handlers.limiter import TelegramLimiter
from handlers.outbox import OutboxWorker
from playground.emulator import TelegramEmulator
from storage import outbox
from storage.db import Database
from storage.models import OutboxMessage
from tests.conftest import Clock, running_bot

CHATS = [90_000_000 + n for n in range(10)]


async def _enqueue(db: Database, count: int) -> list[str]:
    texts = [f"notice {n}" for n in range(count)]
    async with db.transaction() as session:
        await outbox.enqueue_many(
            session,
            [
                outbox.Entry(CHATS[n % len(CHATS)], outbox.TEXT, {"text": text})
                for n, text in enumerate(texts)
            ],
        )
    return texts


async def _rows(db: Database) -> list[OutboxMessage]:
    async with db.transaction() as session:
        return list((await session.exec(select(OutboxMessage))).all())


def _delivered(telegram: TelegramEmulator) -> Counter[str]:
    """Texts that Telegram accepted (a call answered 429 delivered nothing)."""
    return Counter(
        call.text
        for call, status in zip(telegram.calls, telegram.statuses, strict=True)
        if call.method == "sendMessage" and status == 200
    )


async def test_a_429_storm_delays_but_loses_nothing(db: Database, clock: Clock) -> None:
    """With python-telegram-bot's rate limiter on, as in production."""
    async with running_bot(db, clock, rate_limiter=True, seed=False) as harness:
        texts = await _enqueue(db, 30)
        harness.telegram.rate_limit(retry_after=1, times=12)
        for _ in range(60):
            await harness.app.outbox.deliver_due()
            if all(row.sent_at for row in await _rows(db)):
                break
            await asyncio.sleep(0.2)
        delivered = _delivered(harness.telegram)
        rows = await _rows(db)
    assert delivered == Counter(texts)  # every one, exactly once
    assert all(row.attempts == 0 and row.failed_at is None for row in rows)
    assert sum(status == 429 for status in harness.telegram.statuses) == 12


async def test_two_workers_never_send_one_message_twice(db: Database, clock: Clock) -> None:
    async with running_bot(db, clock, seed=False) as harness:
        texts = await _enqueue(db, 120)
        other_db = Database(db.url)
        try:
            first = OutboxWorker(harness.app.bot, db, batch_size=7)
            second = OutboxWorker(harness.app.bot, other_db, batch_size=7)
            sent = await asyncio.gather(first.deliver_due(), second.deliver_due())
        finally:
            await other_db.dispose()
    assert sum(sent) == 120  # between them, each message once
    assert _delivered(harness.telegram) == Counter(texts)


async def test_a_message_leased_by_a_worker_that_died_is_sent_once_its_lease_runs_out(
    db: Database, clock: Clock
) -> None:
    async with running_bot(db, clock, seed=False) as harness:
        await _enqueue(db, 1)
        now = datetime.now(UTC)
        async with db.transaction() as session:
            leased = await outbox.lease(session, now=now)  # ... and then the process died
        assert len(leased) == 1
        too_soon = OutboxWorker(harness.app.bot, db, clock=lambda: now + timedelta(seconds=30))
        assert await too_soon.deliver_due() == 0
        later = OutboxWorker(harness.app.bot, db, clock=lambda: now + outbox.LEASE * 2)
        assert await later.deliver_due() == 1
    assert _delivered(harness.telegram) == Counter(["notice 0"])


async def test_a_long_notice_goes_out_in_parts_and_a_retry_resumes_after_the_last_sent(
    db: Database, clock: Clock
) -> None:
    lines = [f"<b>{n:03d}</b> İstanbul &amp; Ljubljana — 11:00" for n in range(200)]
    text = "\n".join(lines)
    async with running_bot(db, clock, seed=False) as harness:
        async with db.transaction() as session:
            await outbox.enqueue(session, chat_id=CHATS[0], kind=outbox.TEXT, params={"text": text})
        # The second part meets a server error; the first went out.
        harness.telegram.fail(
            "sendMessage", chat_id=CHATS[0], status=502, description="Bad Gateway", after=1
        )
        assert await harness.app.outbox.deliver_due() == 0
        [row] = await _rows(db)
        assert row.parts_sent == 1 and row.attempts == 1 and row.sent_at is None
        # Later, the retry sends the rest, not the first part again.
        later = datetime.now(UTC) + timedelta(minutes=1)
        again = OutboxWorker(harness.app.bot, db, clock=lambda: later)
        assert await again.deliver_due() == 1
        delivered = [
            call.text
            for call, status in zip(harness.telegram.calls, harness.telegram.statuses, strict=True)
            if call.method == "sendMessage" and status == 200
        ]
    assert len(delivered) == 3 and all(units(part) <= 4096 for part in delivered)
    assert harness.telegram.refused == []
    assert "\n".join(delivered) == text  # cut at line ends; nothing lost, nothing twice


async def test_server_errors_back_off_and_after_eight_attempts_the_message_is_failed(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """5 s, doubling, up to 10 minutes; the eighth failure gives up and says why."""
    async with running_bot(db, clock, seed=False) as harness:
        async with db.transaction() as session:
            await outbox.enqueue(session, chat_id=CHATS[0], kind=outbox.TEXT, params={"text": "x"})
        harness.telegram.fail(
            "sendMessage", chat_id=CHATS[0], status=500, description="Internal Server Error",
            times=100,
        )  # fmt: skip
        now = datetime.now(UTC)
        waits = []
        for attempt in range(1, 9):
            worker = OutboxWorker(harness.app.bot, db, clock=lambda now=now: now)
            assert await worker.deliver_due() == 0
            [row] = await _rows(db)
            assert row.attempts == attempt and "Internal Server Error" in (row.error or "")
            if attempt < 8:
                assert row.failed_at is None
                waits.append((row.not_before - now).total_seconds())
                # Not due a moment before the wait is over.
                early = OutboxWorker(
                    harness.app.bot, db, clock=lambda t=row.not_before: t - timedelta(seconds=1)
                )
                assert await early.deliver_due() == 0
                now = row.not_before
        assert waits == [5, 10, 20, 40, 80, 160, 320]
        assert row.failed_at == now and row.sent_at is None and row.leased_until is None
        # Failed for good: never tried again.
        tries = len(harness.telegram.sent(CHATS[0]))
        late = OutboxWorker(harness.app.bot, db, clock=lambda: now + timedelta(days=1))
        assert await late.deliver_due() == 0
        assert len(harness.telegram.sent(CHATS[0])) == tries == 8
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("outbox message")]
    assert ["will be retried" in line for line in said] == [True] * 7 + [False]
    assert "failed for good" in said[-1] and "Internal Server Error" in said[-1]


async def test_a_delivery_round_that_fails_in_the_background_is_logged_and_let_go(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """kick() runs a round without the caller waiting; if the database is gone then, the
    error is logged (not lost in an unawaited task) and the task is not kept."""
    async with running_bot(db, clock, seed=False) as harness:
        worker = harness.app.outbox
        await db.engine.dispose()
        original = db.transaction

        def gone() -> Any:
            raise RuntimeError("database is gone")

        db.transaction = gone  # type: ignore[method-assign]
        try:
            worker.kick()
            [task] = list(worker._tasks)
            with contextlib.suppress(RuntimeError):
                await task
            await asyncio.sleep(0)
        finally:
            db.transaction = original  # type: ignore[method-assign]
        assert worker._tasks == set()
        [record] = [r for r in caplog.records if r.message == "outbox delivery failed"]
        assert record.levelname == "ERROR" and record.exc_info is not None
        assert "database is gone" in str(record.exc_info[1])


async def test_the_outbox_keeps_to_each_chats_pace(db: Database, clock: Clock) -> None:
    """Notices piling up for one chat go at most a burst and then one a second (scaled up
    here): the worker asks the bot's limiter for the per-chat pace."""
    limiter = TelegramLimiter(chat_per_second=20, chat_burst=2)
    async with running_bot(db, clock, rate_limiter=limiter, seed=False) as harness:
        times: list[float] = []
        handle = harness.telegram.handle

        def timed(method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            times.append(asyncio.get_running_loop().time())
            return handle(method, params)

        harness.telegram.handle = timed  # type: ignore[method-assign]
        async with db.transaction() as session:
            await outbox.enqueue_many(
                session, [outbox.Entry(CHATS[0], outbox.TEXT, {"text": f"n{n}"}) for n in range(5)]
            )
        await harness.app.outbox.deliver_due()
        assert len(times) == 5
        # Two at once, then one per 1/20 s counted from the first: the fifth at 0.15 s at least.
        assert times[4] - times[0] >= 0.15 - 1e-3
        assert list(limiter._chats) == [CHATS[0]]


async def test_chats_told_to_wait_are_woken_for_when_each_wait_ends(
    db: Database, clock: Clock
) -> None:
    """Two chats told to wait different times: the worker wakes itself for each (a timer
    that fired is not mistaken for one still to come, and the later wait is not lost
    behind the earlier), with no periodic job to rescue them."""
    async with running_bot(db, clock, seed=False) as harness:
        texts = await _enqueue(db, 3)
        harness.telegram.rate_limit(chat_id=CHATS[0], retry_after=1)
        harness.telegram.rate_limit(chat_id=CHATS[1], retry_after=2)
        await harness.app.outbox.deliver_due()
        assert len([r for r in await _rows(db) if r.sent_at]) == 1
        for _wait in range(80):  # up to 8 s; the waits end after 1 s and 2 s
            if all(row.sent_at for row in await _rows(db)):
                break
            await asyncio.sleep(0.1)
        assert _delivered(harness.telegram) == Counter(texts)
