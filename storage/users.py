"""People who talk to the bot, the chats it is in, and their languages."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors
from storage.models import Chat, User
from storage.roles import Actor
from storage.types import utcnow


async def touch_user(
    session: AsyncSession,
    *,
    telegram_id: int,
    full_name: str,
    username: str | None,
    telegram_language: str | None,
) -> User:
    """The user's row, created on first contact; names follow what Telegram says now.

    Written only when something changed, so the common update costs one read.
    """
    user = await session.get(User, telegram_id)
    now = (full_name[:200], username, (telegram_language or "")[:16] or None, None)
    if user is None:
        user = User(telegram_id=telegram_id)
    elif (user.full_name, user.username, user.telegram_language, user.blocked_at) == now:
        return user
    # Hearing from a user again means they no longer block the bot.
    user.full_name, user.username, user.telegram_language, user.blocked_at = now
    session.add(user)
    return user


async def language_of(session: AsyncSession, telegram_id: int) -> str | None:
    """The language tag to speak to a user in when they are not the one asking."""
    user = await session.get(User, telegram_id)
    if user is None:
        return None
    return user.language or user.telegram_language


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


async def record_chat(
    session: AsyncSession, *, chat_id: int, chat_type: str, title: str, bot_is_member: bool
) -> Chat:
    chat = await session.get(Chat, chat_id)
    if chat is None:
        chat = Chat(chat_id=chat_id, type=chat_type, title=title[:256], bot_is_member=bot_is_member)
    else:
        chat.type, chat.title, chat.bot_is_member = chat_type, title[:256], bot_is_member
        chat.updated_at = utcnow()
    session.add(chat)
    return chat


async def migrate_chat(session: AsyncSession, *, old_id: int, new_id: int) -> Chat | None:
    """A group became a supergroup: its link, language and history follow the new id."""
    old = await session.get(Chat, old_id)
    if old is None:
        return None
    new = await session.get(Chat, new_id)
    if new is None:
        new = Chat(chat_id=new_id, type="supergroup", title=old.title)
    new.group_id = new.group_id or old.group_id
    new.linked_by = new.linked_by or old.linked_by
    new.language = new.language or old.language
    new.bot_is_member = True
    new.updated_at = utcnow()
    session.add(new)
    await session.delete(old)
    audit.record(session, actor_id=None, action="chat.migrate", subject=str(new_id), old=old_id)
    return new


async def set_chat_language(
    session: AsyncSession,
    *,
    actor: Actor,
    is_chat_admin: bool,
    chat_id: int,
    chat_type: str,
    title: str,
    language: str,
) -> Chat:
    """A group's language: its Telegram admins, its working group's organisers, the secretariat."""
    chat = await session.get(Chat, chat_id)
    organiser = (
        actor.is_organiser(chat.group_id)
        if chat is not None and chat.group_id is not None
        else actor.is_secretariat
    )
    if not (organiser or is_chat_admin):
        raise errors.NotAllowed(role="chat_admin")
    if chat is None:
        chat = await record_chat(
            session, chat_id=chat_id, chat_type=chat_type, title=title, bot_is_member=True
        )
    chat.language = language
    session.add(chat)
    return chat
