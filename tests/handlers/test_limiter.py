"""The bot's rate limiter: smooth overall, bursts per group and per chat, and a 429's place
given back. Timings are checked only as lower bounds (the limiter never lets a call go
early), which a slow machine cannot break."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram.error import RetryAfter

from handlers.limiter import KEEP_IDLE, PER_CHAT, TelegramLimiter


def _sender(log: list[tuple[float, Any]], refuse: set[int] | None = None) -> Any:
    refuse = refuse if refuse is not None else set()

    async def call(chat_id: Any) -> bool:
        log.append((asyncio.get_running_loop().time(), chat_id))
        if len(log) in refuse:
            raise RetryAfter(1)
        return True

    return call


async def _send(limiter: TelegramLimiter, call: Any, chat_id: Any, args: int | None = None) -> Any:
    data = {} if chat_id is None else {"chat_id": chat_id}
    return await limiter.process_request(call, (chat_id,), {}, "sendMessage", data, args)


async def test_overall_pace_allows_a_burst_of_three_and_no_more() -> None:
    limiter = TelegramLimiter(per_second=50)  # one call every 20 ms, after a burst of 3
    log: list[tuple[float, Any]] = []
    call = _sender(log)
    await asyncio.gather(*(_send(limiter, call, 1000 + n) for n in range(12)))
    times = [t for t, _chat in log]
    assert len(times) == 12
    # Any four calls in a row span at least one step: never more than three at once.
    assert all(b - a >= 0.02 - 1e-3 for a, b in zip(times, times[3:], strict=False))
    assert times[-1] - times[0] >= 9 * 0.02 - 1e-3


async def test_a_call_answered_429_gives_its_place_back() -> None:
    limiter = TelegramLimiter(per_second=2)  # 500 ms between calls
    log: list[tuple[float, Any]] = []
    call = _sender(log, refuse={1, 4})
    with pytest.raises(RetryAfter):
        await _send(limiter, call, 1)
    assert limiter.overall.has_capacity(3)  # the refused call sent nothing: the bucket is empty
    await _send(limiter, call, 2)
    assert not limiter.overall.has_capacity(3)  # the accepted one holds its place
    await _send(limiter, call, 3)
    with pytest.raises(RetryAfter):
        await _send(limiter, call, 4)  # refused: of three places, the two taken stay taken
    assert limiter.overall.has_capacity(1) and not limiter.overall.has_capacity(2)


async def test_one_chat_gets_a_short_burst_then_one_a_second_scaled() -> None:
    limiter = TelegramLimiter(per_second=1000, chat_per_second=4, chat_burst=4)
    log: list[tuple[float, Any]] = []
    call = _sender(log)
    await asyncio.gather(*(_send(limiter, call, 7, PER_CHAT) for _ in range(6)))
    # The first four go at the overall pace (a paced chat would take 0.75 s); then the
    # chat's bucket lets one more through per 1/4 s, counted from the first.
    assert log[3][0] - log[0][0] < 0.5
    assert log[4][0] - log[0][0] >= 0.25 - 1e-3
    assert log[5][0] - log[0][0] >= 0.50 - 1e-3
    # Replies (no PER_CHAT) are paced by the person who asked, not by the chat's bucket.
    await asyncio.gather(*(_send(limiter, call, 8) for _ in range(6)))
    assert 7 in limiter._chats and 8 not in limiter._chats


async def test_groups_have_their_own_minute_bucket_and_private_chats_do_not() -> None:
    limiter = TelegramLimiter(per_second=1000, group_per_minute=20 * 6, chat_burst=100)
    log: list[tuple[float, Any]] = []
    call = _sender(log)
    # 20 a minute made 2 a second, a burst of 20 (paced, the twenty would take 9.5 s).
    await asyncio.gather(*(_send(limiter, call, -100) for _ in range(21)))
    assert log[19][0] - log[0][0] < 2.0
    assert log[20][0] - log[0][0] >= 0.5 - 1e-3
    assert limiter.group_bucket(-100) is limiter.group_bucket(-100)
    assert -100 in limiter._groups and 5 not in limiter._groups
    await _send(limiter, call, 5)
    assert 5 not in limiter._groups


async def test_calls_without_a_chat_are_not_paced() -> None:
    limiter = TelegramLimiter(per_second=1)
    log: list[tuple[float, Any]] = []
    call = _sender(log)
    await _send(limiter, call, 1)  # takes the only place for a second
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(_send(limiter, call, None) for _ in range(5)))
    assert asyncio.get_running_loop().time() - started < 2.5  # paced, 5 s


async def test_idle_chat_buckets_are_forgotten_once_there_are_many() -> None:
    limiter = TelegramLimiter(per_second=10**6, chat_per_second=10**6)
    log: list[tuple[float, Any]] = []
    call = _sender(log)
    for chat in range(KEEP_IDLE + 100):
        await _send(limiter, call, chat + 1, PER_CHAT)
        if chat % 50 == 0:
            await asyncio.sleep(0.002)  # the buckets so far drain
    assert len(limiter._chats) <= KEEP_IDLE + 1


def test_the_buckets_are_telegrams_limits_and_scale_together() -> None:
    limiter = TelegramLimiter()
    group, chat = limiter.group_bucket(-100), limiter.chat_bucket(5)
    assert (group.max_rate, group.time_period) == (20, 60)  # 20 a minute, a burst of 20
    assert (chat.max_rate, chat.time_period) == (4, 4)  # 1 a second, a burst of 4
    assert (limiter.overall.max_rate, limiter.overall.time_period) == (3, 3 / 30)
    fast = TelegramLimiter(scale=4)
    assert fast.group_bucket(-100).time_period == 15
    assert fast.chat_bucket(5).time_period == 1
    assert fast.overall.time_period == 3 / 120
