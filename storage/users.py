"""People who talk to the bot: their names, languages, and whether they blocked it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import User
from storage.types import utcnow


async def touch_user(
    session: AsyncSession,
    *,
    existing: User | None,
    telegram_id: int,
    full_name: str,
    username: str | None,
    telegram_language: str | None,
) -> User:
    """The user's row (``existing``, already read), created on first contact; names
    follow what Telegram says now. Written only when something changed."""
    user = existing
    now = (full_name[:200], username, (telegram_language or "")[:16] or None, None)
    if user is None:
        user = User(telegram_id=telegram_id)
    elif (user.full_name, user.username, user.telegram_language, user.blocked_at) == now:
        return user
    # Hearing from a user again means they no longer block the bot.
    user.full_name, user.username, user.telegram_language, user.blocked_at = now
    session.add(user)
    return user


async def set_user_language(session: AsyncSession, *, telegram_id: int, language: str) -> User:
    user = await session.get(User, telegram_id)
    if user is None:
        user = User(telegram_id=telegram_id)
    user.language = language
    session.add(user)
    return user


async def set_blocked(session: AsyncSession, *, telegram_id: int, blocked: bool) -> None:
    user = await session.get(User, telegram_id)
    if user is None:
        user = User(telegram_id=telegram_id)
    user.blocked_at = utcnow() if blocked else None
    session.add(user)
