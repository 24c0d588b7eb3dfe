"""Pacing every Bot API call within Telegram's limits, with aiolimiter's leaky buckets.

Telegram asks bots to stay under about 30 messages a second overall, 20 a minute into
one group and 1 a second into one chat (short bursts tolerated). python-telegram-bot's
``AIORateLimiter`` keeps the first two; this limiter, built the same way on the same
library, keeps all three:

- **overall**, nearly smooth: 30 a second with a burst of 3 at most, so a broadcast runs
  at the limit (the burst makes up for a timer that fires a little late, which a bucket
  of one could never catch up) and a reply waiting behind it waits a step or two;
- **per group**, as PTB does: 20 a minute, a burst of 20 allowed;
- **per chat**: 1 a second, a burst of ``chat_burst`` (the parts of one long message),
  for the outbox's sends (``rate_limit_args=PER_CHAT``): notices, reminders and
  broadcasts, where many messages can pile up for one chat. A reply to what a person just
  did is paced by that person.

Only calls that name a chat are paced, as in PTB (answering a button press is not).
A call Telegram answers with 429 sent nothing, so its place in the overall bucket is
given back; the limiter never sleeps out a 429 itself, the outbox waits for that chat.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

JSONDict = dict[str, Any]
Result = bool | JSONDict | list[JSONDict]

OVERALL_PER_SECOND = 30.0
GROUP_PER_MINUTE = 20.0
CHAT_PER_SECOND = 1.0
CHAT_BURST = 4
OVERALL_BURST = 3
KEEP_IDLE = 512  # idle per-chat buckets are dropped beyond this many
PER_CHAT = 1  # rate_limit_args of a call that keeps to the per-chat pace too


class Bucket(AsyncLimiter):
    """aiolimiter's leaky bucket, which can take back one acquisition that sent nothing."""

    __slots__ = ()

    def give_back(self, amount: float = 1.0) -> None:
        self._leak()
        self._level = max(self._level - amount, 0.0)
        self._wake_next()


class TelegramLimiter(BaseRateLimiter[int]):
    """A ``BaseRateLimiter`` for the Application; ``scale`` multiplies every rate (the
    benchmark runs Telegram's limits faster so that a run is short)."""

    def __init__(
        self,
        *,
        per_second: float = OVERALL_PER_SECOND,
        group_per_minute: float = GROUP_PER_MINUTE,
        chat_per_second: float = CHAT_PER_SECOND,
        chat_burst: int = CHAT_BURST,
        scale: float = 1.0,
    ) -> None:
        self.per_second = per_second * scale
        self.group_per_minute = group_per_minute * scale
        self.chat_per_second = chat_per_second * scale
        self.chat_burst = chat_burst
        self.overall = Bucket(OVERALL_BURST, OVERALL_BURST / self.per_second)
        self._groups: dict[int, Bucket] = {}
        self._chats: dict[int, Bucket] = {}

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def _bucket(
        self, buckets: dict[int, Bucket], chat_id: int, rate: float, burst: float
    ) -> Bucket:
        if len(buckets) > KEEP_IDLE:
            for key, bucket in list(buckets.items()):
                if key != chat_id and bucket.has_capacity(bucket.max_rate):
                    del buckets[key]  # fully drained: forgetting it changes nothing
        if chat_id not in buckets:
            buckets[chat_id] = Bucket(burst, burst / rate)
        return buckets[chat_id]

    def chat_bucket(self, chat_id: int) -> Bucket:
        return self._bucket(self._chats, chat_id, self.chat_per_second, self.chat_burst)

    def group_bucket(self, chat_id: int) -> Bucket:
        return self._bucket(self._groups, chat_id, self.group_per_minute / 60, 20)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        chat_id: Any = data.get("chat_id")
        if chat_id is None:
            return await callback(*args, **kwargs)
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)
        if not isinstance(chat_id, int):
            chat_id = hash(chat_id)  # an @channel name: paced as a chat of its own
        async with contextlib.AsyncExitStack() as stack:
            if rate_limit_args == PER_CHAT:
                await stack.enter_async_context(self.chat_bucket(chat_id))
            if chat_id < 0:
                await stack.enter_async_context(self.group_bucket(chat_id))
            # The overall bucket last: its scarce place is taken only when this call is ready.
            await self.overall.acquire()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter:
                self.overall.give_back()
                raise
