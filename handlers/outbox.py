"""Delivering the outbox: one worker, within Telegram's limits, surviving restarts.

Each message is claimed from the database, sent, and its fate recorded in a
transaction of its own; a restart resumes from what is recorded. Delivery is
at-least-once: a crash between sending and recording may repeat one message.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from datetime import timedelta

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from storage import outbox, users
from storage.db import Database
from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)


class OutboxWorker:
    def __init__(self, bot: Bot, db: Database) -> None:
        self.bot = bot
        self.db = db
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[int]] = set()  # held, so the loop cannot drop them

    async def deliver_due(self) -> int:
        """Send everything that is due; returns how many messages were sent."""
        sent = 0
        async with self._lock:
            while True:
                async with self.db.transaction() as session:
                    batch = await outbox.due(session, now=utcnow())
                if not batch:
                    return sent
                for message in batch:
                    sent += await self._deliver(message)

    async def _deliver(self, message: OutboxMessage) -> int:
        markup = (
            InlineKeyboardMarkup.de_json(message.reply_markup, self.bot)
            if message.reply_markup
            else None
        )
        delivered = 0
        try:
            await self.bot.send_message(
                message.chat_id,
                message.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
            outbox.mark_sent(message)
            delivered = 1
        except RetryAfter as exc:
            with warnings.catch_warnings():
                # PTB 22 warns that retry_after becomes a timedelta; both are handled here.
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                retry = exc.retry_after
            seconds = retry.total_seconds() if isinstance(retry, timedelta) else float(retry)
            outbox.retry_later(message, after=timedelta(seconds=seconds), error=str(exc))
        except ChatMigrated as exc:
            # The group became a supergroup: follow it, and send there next time round.
            async with self.db.transaction() as session:
                await users.migrate_chat(session, old_id=message.chat_id, new_id=exc.new_chat_id)
            message.chat_id = exc.new_chat_id
        except Forbidden as exc:
            outbox.mark_failed(message, str(exc))
            if message.chat_id > 0:  # a private chat: the user blocked the bot
                async with self.db.transaction() as session:
                    await users.set_blocked(session, telegram_id=message.chat_id, blocked=True)
        except BadRequest as exc:
            outbox.mark_failed(message, str(exc))
            log.error("outbox message %s refused by Telegram: %s", message.id, exc)
        except TelegramError as exc:
            outbox.retry_later(message, after=timedelta(seconds=30), error=str(exc))
            log.warning("outbox message %s will be retried: %s", message.id, exc)
        async with self.db.transaction() as session:
            await session.merge(message)
        return delivered

    def kick(self) -> None:
        """Deliver soon, without making the caller wait."""
        task = asyncio.get_running_loop().create_task(self.deliver_due())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[int]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox delivery failed", exc_info=task.exception())
