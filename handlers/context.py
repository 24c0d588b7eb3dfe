"""The unit of work of one update, and the typed context handlers see.

``run_update`` is the path of an update (DESIGN.md): one transaction, the
update id recorded inside it, the reader's language and the actor resolved
once, the handler, commit, then the replies. Replies are queued rather than
sent, so a reply never announces a change that was rolled back.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ChatType, MessageLimit, ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import CallbackContext, ExtBot

from locales import current_language, normalize_language
from storage import updates, users
from storage.db import Database
from storage.models import Chat
from storage.roles import Actor, resolve_actor
from storage.types import utcnow

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[Any]]


@dataclass
class Deps:
    """What handlers need from the assembly, without importing it."""

    db: Database
    bootstrap_secretariat: frozenset[int] = frozenset()
    default_language: str = "en"
    reference_zone: str = "Europe/Istanbul"
    clock: Callable[[], datetime] = utcnow
    # Called after a commit that wrote to the outbox; the assembly wires the worker here.
    outbox_written: Callable[[], None] = lambda: None

    def today(self) -> date:
        """The network's date now, in its reference zone."""
        return self.clock().astimezone(ZoneInfo(self.reference_zone)).date()


@dataclass
class UpdateScope:
    session: AsyncSession
    deps: Deps
    update: Update
    language: str
    after_commit: list[AfterCommit] = field(default_factory=list)
    failed: bool = False
    wrote_outbox: bool = False
    _actor: Actor | None = None

    async def actor(self) -> Actor:
        user = self.update.effective_user
        if user is None:
            raise RuntimeError("this update has no user")
        if self._actor is None:
            self._actor = await resolve_actor(
                self.session,
                user_id=user.id,
                bootstrap_secretariat=self.deps.bootstrap_secretariat,
                today=self.deps.today(),
            )
        return self._actor


_scope: ContextVar[UpdateScope | None] = ContextVar("update_scope", default=None)


def current_scope() -> UpdateScope:
    scope = _scope.get()
    if scope is None:
        raise RuntimeError("no update is being processed in this context")
    return scope


def maybe_scope() -> UpdateScope | None:
    return _scope.get()


async def _language_for(session: AsyncSession, update: Update, default: str) -> str:
    """Keep the user's row current, then choose: the group's language, the user's, the default."""
    user = update.effective_user
    row = None
    if user is not None:
        row = await users.touch_user(
            session,
            telegram_id=user.id,
            full_name=user.full_name,
            username=user.username,
            telegram_language=user.language_code,
        )
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        stored = await session.get(Chat, chat.id)
        if stored is not None and stored.language:
            return stored.language
    if user is None or row is None:
        return default
    return normalize_language(row.language) or normalize_language(user.language_code) or default


async def run_update(deps: Deps, update: object, process: Callable[[], Awaitable[None]]) -> None:
    if not isinstance(update, Update):
        await process()
        return
    async with deps.db.sessions() as session:
        transaction = await session.begin()
        if not await updates.claim(session, update.update_id):
            await transaction.rollback()
            log.info("update %s was already processed; ignored", update.update_id)
            return
        language = await _language_for(session, update, deps.default_language)
        scope = UpdateScope(session=session, deps=deps, update=update, language=language)
        scope_token = _scope.set(scope)
        language_token = current_language.set(language)
        try:
            await process()
        finally:
            current_language.reset(language_token)
            _scope.reset(scope_token)
        if scope.failed:
            # Nothing the handler wrote survives; the update still counts as seen.
            await transaction.rollback()
            async with deps.db.transaction() as retry_session:
                await updates.claim(retry_session, update.update_id)
        else:
            await transaction.commit()
    for action in scope.after_commit:
        try:
            await action()
        except Forbidden:
            if update.effective_user is not None:
                async with deps.db.transaction() as blocked_session:
                    await users.set_blocked(
                        blocked_session, telegram_id=update.effective_user.id, blocked=True
                    )
        except TelegramError:
            log.exception("reply to update %s failed", update.update_id)
    if scope.wrote_outbox and not scope.failed:
        deps.outbox_written()


def split_message(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Cut a long text at line ends into messages Telegram accepts."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


# Bidi controls let one name reverse the text around it in the reader's client.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def esc(text: object) -> str:
    """User text meets HTML here: always through this."""
    return html.escape(str(text).translate(_BIDI_CONTROLS), quote=False)


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The context handlers get: the update's unit of work, and ways to answer."""

    @property
    def scope(self) -> UpdateScope:
        return current_scope()

    @property
    def session(self) -> AsyncSession:
        return self.scope.session

    @property
    def deps(self) -> Deps:
        return self.scope.deps

    async def actor(self) -> Actor:
        return await self.scope.actor()

    def after_commit(self, action: AfterCommit) -> None:
        self.scope.after_commit.append(action)

    def reply(self, update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        chunks = split_message(text)
        bot = self.bot
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1

            async def send(chunk: str = chunk, last: bool = last) -> None:
                await bot.send_message(
                    chat.id,
                    chunk,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup if last else None,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    message_thread_id=_thread_of(update),
                )

            self.after_commit(send)

    def edit(self, update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Replace the text of the message whose button was pressed."""
        query = update.callback_query
        if query is None or query.message is None:
            self.reply(update, text, markup)
            return
        message = query.message
        bot = self.bot

        async def send() -> None:
            await bot.edit_message_text(
                text[: MessageLimit.MAX_TEXT_LENGTH],
                chat_id=message.chat.id,
                message_id=message.message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )

        self.after_commit(send)

    def answer(self, update: Update, text: str | None = None, *, alert: bool = False) -> None:
        query = update.callback_query
        if query is None:
            return
        bot = self.bot

        async def send() -> None:
            await bot.answer_callback_query(query.id, text=text, show_alert=alert)

        self.after_commit(send)


def _thread_of(update: Update) -> int | None:
    message = update.effective_message
    if message is not None and message.is_topic_message:
        return message.message_thread_id
    return None
