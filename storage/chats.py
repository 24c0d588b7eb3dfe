"""The chats the bot is in: one upsert, links to working groups, languages, migrations."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, outbox, users
from storage.models import Chat, User
from storage.roles import Actor
from storage.types import utcnow


async def upsert_chat(
    session: AsyncSession, *, chat_id: int, chat_type: str, title: str, **changes: Any
) -> Chat:
    """The chat's row, created when first seen; type and title follow Telegram."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        chat = Chat(chat_id=chat_id, type=chat_type, title=title[:256])
    chat.type, chat.title = chat_type, title[:256]
    for name, value in changes.items():
        setattr(chat, name, value)
    chat.updated_at = utcnow()
    session.add(chat)
    return chat


async def migrate_chat(session: AsyncSession, *, old_id: int, new_id: int) -> Chat | None:
    """A group became a supergroup: its link, language and pending messages follow the new id."""
    old = await session.get(Chat, old_id)
    await outbox.move_chat(session, old_id=old_id, new_id=new_id)
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


def may_set_language(actor: Actor, chat: Chat | None) -> bool:
    """Without asking Telegram: the linked group's organisers, or the secretariat."""
    if chat is not None and chat.group_id is not None:
        return actor.is_organiser(chat.group_id)
    return actor.is_secretariat


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
    if not (may_set_language(actor, chat) or is_chat_admin):
        raise errors.NotAllowed(role="chat_admin")
    return await upsert_chat(
        session, chat_id=chat_id, chat_type=chat_type, title=title, language=language
    )


async def languages(session: AsyncSession, chat_ids: Collection[int]) -> dict[int, str | None]:
    """The language tag each chat is spoken to in: a person's choice, else their app's;
    a group's own. Unknown chats map to None (the default language)."""
    people = [c for c in chat_ids if c > 0]
    groups = [c for c in chat_ids if c < 0]
    found: dict[int, str | None] = dict.fromkeys(chat_ids)
    if people:
        rows = await session.exec(
            select(User.telegram_id, User.language, User.telegram_language).where(
                col(User.telegram_id).in_(people)
            )
        )
        for user_id, chosen, from_app in rows.all():
            found[user_id] = chosen or from_app
    if groups:
        chats = await session.exec(
            select(Chat.chat_id, Chat.language).where(col(Chat.chat_id).in_(groups))
        )
        for chat_id, language in chats.all():
            found[chat_id] = language
    return found


async def bot_unreachable(session: AsyncSession, *, chat_id: int) -> None:
    """Telegram said 403: a person blocked the bot, or a group removed it."""
    if chat_id > 0:
        await users.set_blocked(session, telegram_id=chat_id, blocked=True)
        return
    chat = await session.get(Chat, chat_id)
    if chat is not None:
        chat.bot_is_member = False
        chat.updated_at = utcnow()
        session.add(chat)
