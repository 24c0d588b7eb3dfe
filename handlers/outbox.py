"""Delivering the outbox: within Telegram's limits, through floods and restarts.

Each round leases due rows, renders each in its recipient's language, sends it and
records the outcome in a transaction of its own, one message at a time: so a crash
repeats at most the one message in flight. Pacing is the bot's rate limiter's. Flood
control (429) puts off that chat's messages for ``retry_after`` without using up an
attempt, and the others go on at once; 429s from several calls in a row mean the limit
is the bot's own, and every chat waits. Timeouts and 5xx are
retried with backoff; a chat that blocked the bot or removed it is marked and the
rest goes on; a group that became a supergroup is followed. A crash leaves leases
that run out: at most the message in flight at that moment is sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import ExtBot

from handlers import notices
from handlers.context import retry_after_seconds
from handlers.html import split_html
from handlers.limiter import PER_CHAT
from locales import normalize_language, use_language
from storage import broadcasts, chats, outbox
from storage.db import Database
from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)

# This many 429s in a row, from any chats, mean the limit hit is the bot's own: every chat
# waits. A 429 now and then, among messages that go through, is that chat's alone.
GLOBAL_FLOOD_STREAK = 5


class _Paused(Exception):
    """A chat was told to wait: its rows are put off (the round's end wakes for them)."""

    def __init__(self, chat_id: int) -> None:
        super().__init__(chat_id)
        self.chat_id = chat_id


@dataclass
class OutboxWorker:
    bot: ExtBot[Any]
    db: Database
    default_language: str = "en"
    clock: Callable[[], datetime] = utcnow
    batch_size: int = 50
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _again: bool = False
    _tasks: set[asyncio.Task[int]] = field(default_factory=set)  # held, so the loop keeps them
    _flood_streak: int = 0  # 429s in a row
    _paused_until: float = 0.0  # monotonic; a flood of the bot's own
    _wake: asyncio.TimerHandle | None = None
    # Told the batch (a broadcast) of every message whose outcome was recorded.
    on_progress: Callable[[int], None] | None = None
    _stopped: set[int] = field(default_factory=set)  # batches stopped: leased rows not sent

    # --- rounds ------------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Send everything that is due now; returns how many messages went out."""
        sent = 0
        async with self._lock:
            while True:
                self._again = False
                round_sent, more = await self._round()
                sent += round_sent
                if not (more or self._again):
                    break
            # Whatever was put off (a chat told to wait, a retry's backoff) wakes the worker
            # when it falls due: the database says when, whoever put it off.
            now = self.clock()
            async with self.db.transaction() as session:
                upcoming = await outbox.next_due(session, after=now)
            if upcoming is not None:
                self._wake_in((upcoming - now).total_seconds())
        return sent

    async def _round(self) -> tuple[int, bool]:
        """One leased batch. Returns (sent, whether more may be due now)."""
        if time.monotonic() < self._paused_until:
            self._wake_in(self._paused_until - time.monotonic())
            return 0, False
        async with self.db.transaction() as session:
            batch = await outbox.lease(session, now=self.clock(), limit=self.batch_size)
            languages = await self._languages(session, {m.chat_id for m in batch})
            texts = await broadcasts.bodies(
                session, sorted({m.batch_id or 0 for m in batch if m.kind == broadcasts.KIND})
            )
        if not batch:
            return 0, False
        sent = 0
        paused: set[int] = set()
        untried: list[int] = []
        # Past half the lease, what is left is given back rather than sent late under it.
        give_back_at = time.monotonic() + outbox.LEASE.total_seconds() / 2
        for message in batch:
            late = time.monotonic() >= give_back_at
            if late or message.chat_id in paused or time.monotonic() < self._paused_until:
                untried.append(message.id or 0)
                continue
            if message.batch_id in self._stopped:
                continue  # stopped while leased here: its row is failed already
            if message.kind == broadcasts.KIND:
                # A broadcast's text is stored once, not in each of its thousand rows.
                body = texts.get(message.batch_id or 0)
                message.params = {**message.params, "text": body}
            try:
                sent += await self._deliver(message, languages.get(message.chat_id))
            except _Paused as pause:
                paused.add(pause.chat_id)
            if message.batch_id is not None and self.on_progress is not None:
                self.on_progress(message.batch_id)
        if untried:
            async with self.db.transaction() as session:
                await outbox.release(session, untried)
        # A chat told to wait has its rows put off; the others go on at once. Only a flood
        # of the bot's own (every chat waits) ends the rounds until it is over.
        more = len(batch) == self.batch_size or time.monotonic() >= give_back_at
        return sent, more and time.monotonic() >= self._paused_until

    async def _languages(self, session: AsyncSession, chat_ids: set[int]) -> dict[int, str]:
        found = await chats.languages(session, chat_ids)
        return {
            chat_id: normalize_language(tag) or self.default_language
            for chat_id, tag in found.items()
        }

    # --- one message --------------------------------------------------------------------------

    @property
    def _pace(self) -> dict[str, Any]:
        """What asks the bot's limiter for the per-chat pace (PTB refuses it without one)."""
        return {"rate_limit_args": PER_CHAT} if self.bot.rate_limiter is not None else {}

    async def _deliver(self, message: OutboxMessage, language: str | None) -> int:
        message_id = message.id or 0
        try:
            with use_language(language or self.default_language):
                text, markup = notices.render(message.kind, message.params)
        except Exception as exc:
            # A renderer that cannot say this entry will not say it on a retry either.
            log.exception("outbox message %s (%s) cannot be rendered", message_id, message.kind)
            await self._record(outbox.mark_failed, message_id, now=self.clock(), error=repr(exc))
            return 0
        parts = split_html(text)
        chat_id = message.chat_id
        index = message.parts_sent
        while index < len(parts):
            last = index == len(parts) - 1
            try:
                await self.bot.send_message(
                    chat_id,
                    parts[index],
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup if last else None,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    **self._pace,
                )
            except RetryAfter as exc:
                await self._flood(chat_id, retry_after_seconds(exc), str(exc))
            except ChatMigrated as exc:
                # The group became a supergroup: follow it and send there straight away.
                async with self.db.transaction() as session:
                    await chats.migrate_chat(session, old_id=chat_id, new_id=exc.new_chat_id)
                chat_id = exc.new_chat_id
                continue
            except Forbidden as exc:
                async with self.db.transaction() as session:
                    await outbox.mark_failed(session, message_id, now=self.clock(), error=str(exc))
                    await chats.bot_unreachable(session, chat_id=chat_id)
                log.info("outbox message %s: chat %s is unreachable: %s", message_id, chat_id, exc)
                return 0
            except BadRequest as exc:
                await self._record(outbox.mark_failed, message_id, now=self.clock(), error=str(exc))
                log.error("outbox message %s refused by Telegram: %s", message_id, exc)
                return 0
            except (NetworkError, TelegramError) as exc:
                # Timeouts and 5xx: back off and try again later.
                async with self.db.transaction() as session:
                    again = await outbox.retry_later(
                        session, message, now=self.clock(), error=str(exc)
                    )
                log.warning(
                    "outbox message %s %s: %s",
                    message_id,
                    "will be retried" if again else "failed for good",
                    exc,
                )
                return 0
            self._flood_streak = 0
            index += 1
            if index < len(parts):
                await self._record(outbox.mark_part_sent, message_id, index)
        await self._record(outbox.mark_sent, message_id, now=self.clock())
        return 1

    async def _record(self, action: Callable[..., object], *args: object, **kwargs: object) -> None:
        async with self.db.transaction() as session:
            await action(session, *args, **kwargs)  # type: ignore[misc]

    async def _flood(self, chat_id: int, seconds: float, error: str) -> None:
        self._flood_streak += 1
        if self._flood_streak >= GLOBAL_FLOOD_STREAK:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)
            log.warning("flood control for the whole bot: every chat waits %.0f s", seconds)
        async with self.db.transaction() as session:
            await outbox.pause_chat(
                session, chat_id, until=self.clock() + timedelta(seconds=seconds), error=error
            )
        raise _Paused(chat_id)

    def stop_batch(self, batch_id: int) -> None:
        """A broadcast was stopped: what this worker holds of it is not sent."""
        self._stopped.add(batch_id)

    # --- waking -------------------------------------------------------------------------------

    def kick(self) -> None:
        """Deliver soon, without making the caller wait; a running round goes once more."""
        if self._lock.locked():
            self._again = True
            return
        task = asyncio.get_running_loop().create_task(self.deliver_due())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _wake_in(self, seconds: float) -> None:
        """Deliver again in ``seconds``, unless a wake-up still to come is sooner; each
        round ends by asking for the next, so a later one is never lost."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(seconds, 0.0) + 0.05
        pending = self._wake
        if (
            pending is not None
            and not pending.cancelled()
            and loop.time() <= pending.when() <= when
        ):
            return
        if pending is not None:
            pending.cancel()
        self._wake = loop.call_at(when, self._woken)

    def _woken(self) -> None:
        self._wake = None
        self.kick()

    def stop(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None

    def _done(self, task: asyncio.Task[int]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox delivery failed", exc_info=task.exception())
