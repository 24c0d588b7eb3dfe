"""The unit of work of one update, and the typed context handlers see.

``run_update`` is the path of an update (DESIGN.md). One read loads who sent it,
where, and whether it was seen before; the handler runs; the update id is recorded
and everything commits in one transaction; then the replies go out, so a reply
never announces a change that was rolled back. Everything inside, the commit
included, is caught: a lost connection, a lock held too long or a race that only
shows at commit is retried once from the start (the second try sees what the first
could not), anything else is apologised for, and the update is recorded as seen in
a fresh transaction. Nothing escapes to python-telegram-bot, whose update loop
would end on an exception and leave the bot deaf.
"""

from __future__ import annotations

import html
import logging
import re
import time
import warnings
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import CallbackContext, ExtBot
from telegram.warnings import PTBDeprecationWarning

from handlers.html import split_html, truncate_html
from locales import N_, _, current_language, normalize_language, use_language
from scheduler.clock import Clock, network_date, utcnow
from storage import chats, outbox, updates, users
from storage.db import Database
from storage.models import Chat, User, WorkingGroup
from storage.roles import Actor, resolve_actor

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[Any]]

UNEXPECTED = N_(
    "Sorry, something went wrong on my side. Nothing was changed; please try again later."
)


@dataclass
class Deps:
    """What handlers need from the assembly, without importing it."""

    db: Database
    bootstrap_secretariat: frozenset[int] = frozenset()
    default_language: str = "en"
    reference_zone: str = "Europe/Istanbul"
    meeting_url: str = "https://meet.jit.si/{room}"
    # Calendar addresses: the key their tokens are made with, and where the server is reached.
    calendar_key: bytes = b""
    base_url: str = "http://127.0.0.1:8080"
    clock: Clock = utcnow
    # Called after a commit that wrote to the outbox; the assembly wires the worker here.
    outbox_written: Callable[[], None] = lambda: None
    # Called after a commit that changed a poll's tally; the assembly wires the drawer here.
    tally_changed: Callable[[int], None] = lambda poll_id: None
    # Called after a commit that stopped a broadcast: the worker drops what it holds of it.
    broadcast_stopped: Callable[[int], None] = lambda broadcast_id: None

    def today(self) -> date:
        """The network's date now, in its reference zone."""
        return network_date(self.clock(), self.reference_zone)


@dataclass
class UpdateScope:
    session: AsyncSession
    deps: Deps
    update: Update
    language: str
    user: User | None = None
    chat: Chat | None = None
    group: WorkingGroup | None = None  # the working group this chat is linked to
    after_commit: list[AfterCommit] = field(default_factory=list)
    failed: bool = False
    error: BaseException | None = None
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


# --- what may be tried again -------------------------------------------------------------------

# PostgreSQL: serialization failure, deadlock; the server going away under us.
_RETRY_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08003", "08006"}


def is_transient(error: BaseException | None) -> bool:
    """A failure that a second try of the whole update may not meet."""
    if error is None:
        return False
    if isinstance(error, IntegrityError):
        # A race that surfaced at flush or commit: the retry sees the winner's row and
        # answers as a sequential second try would ("already a member").
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if code in _RETRY_SQLSTATES:
            return True
        if isinstance(error, OperationalError) and "locked" in str(error.orig):
            return True  # SQLite: another writer held the lock past the busy timeout
    return isinstance(error, ConnectionError | TimeoutError)


# --- the path of an update ---------------------------------------------------------------------


@dataclass
class Progress:
    """What /healthz reads: whether updates are still being processed."""

    last_done: float = field(default_factory=time.monotonic)
    started: float | None = None


async def run_update(
    deps: Deps,
    update: object,
    process: Callable[[], Awaitable[None]],
    progress: Progress | None = None,
) -> None:
    progress = progress or Progress()
    progress.started = time.monotonic()
    try:
        if isinstance(update, Update):
            await _run(deps, update, process)
        else:
            await process()
    except Exception:
        # The last line of defence: whatever happens, the update loop goes on.
        log.exception("update %r could not be processed", getattr(update, "update_id", update))
    finally:
        progress.started = None
        progress.last_done = time.monotonic()


async def _run(deps: Deps, update: Update, process: Callable[[], Awaitable[None]]) -> None:
    scope: UpdateScope | None = None
    for attempt in (1, 2):
        try:
            scope = await _attempt(deps, update, process)
        except Exception as exc:
            if attempt == 1 and is_transient(exc):
                log.warning("update %s: %s; trying once more", update.update_id, _brief(exc))
                continue
            log.error("update %s failed", update.update_id, exc_info=exc)
            await _apologise(deps, update)
            await _record_seen(deps, update)
            return
        if scope is None:
            return  # processed before: Telegram delivers at least once
        if scope.failed and attempt == 1 and is_transient(scope.error):
            log.warning("update %s: %s; trying once more", update.update_id, _brief(scope.error))
            continue
        break
    if scope is None:
        return
    # Nothing a failed handler wrote survives; the update still counts as seen, and if a
    # twin of it succeeded meanwhile, the failure stays silent.
    if scope.failed and not await _record_seen(deps, update):
        return
    await _send_replies(deps, update, scope)
    if scope.session.info.get(outbox.WROTE) and not scope.failed:
        deps.outbox_written()


async def _attempt(
    deps: Deps, update: Update, process: Callable[[], Awaitable[None]]
) -> UpdateScope | None:
    user = update.effective_user
    chat = update.effective_chat
    async with deps.db.sessions() as session:
        await session.begin()
        try:
            user_row, chat_row, group, seen = await updates.load_context(
                session,
                update_id=update.update_id,
                user_id=user.id if user is not None else None,
                chat_id=chat.id if chat is not None else None,
            )
            if seen:
                log.info("update %s was already processed; ignored", update.update_id)
                await session.rollback()
                return None
            if user is not None:
                user_row = await users.touch_user(
                    session,
                    existing=user_row,
                    telegram_id=user.id,
                    full_name=user.full_name,
                    username=user.username,
                    telegram_language=user.language_code,
                )
            scope = UpdateScope(
                session=session,
                deps=deps,
                update=update,
                language=_language(update, user_row, chat_row, deps.default_language),
                user=user_row,
                chat=chat_row,
                group=group,
            )
            scope_token = _scope.set(scope)
            language_token = current_language.set(scope.language)
            try:
                await process()
            finally:
                current_language.reset(language_token)
                _scope.reset(scope_token)
            if scope.failed:
                await session.rollback()
                return scope
            if not await updates.claim(session, update.update_id):
                await session.rollback()  # a twin of this update committed first
                return None
            await session.commit()
            return scope
        except BaseException:
            if session.in_transaction():
                await session.rollback()
            raise


def _language(update: Update, user: User | None, chat: Chat | None, default: str) -> str:
    """The group's language in a group that has one, else the user's, else the default."""
    tg_chat = update.effective_chat
    if tg_chat is not None and tg_chat.type != ChatType.PRIVATE and chat and chat.language:
        return chat.language
    tg_user = update.effective_user
    chosen = user.language if user is not None else None
    app = tg_user.language_code if tg_user is not None else None
    return normalize_language(chosen) or normalize_language(app) or default


async def _record_seen(deps: Deps, update: Update) -> bool:
    """Record a failed update as seen; False if it already was (or the database is away)."""
    try:
        async with deps.db.transaction() as session:
            return await updates.claim(session, update.update_id)
    except Exception as exc:
        log.error("update %s could not be recorded as seen: %s", update.update_id, _brief(exc))
        return True


async def _apologise(deps: Deps, update: Update) -> None:
    """Tell the person, without the database: in their app's language."""
    user = update.effective_user
    language = normalize_language(user.language_code if user else None) or deps.default_language
    bot = update.get_bot()
    with use_language(language):
        text = esc(_(UNEXPECTED))
    try:
        if update.callback_query is not None:
            await bot.answer_callback_query(update.callback_query.id, text=text, show_alert=True)
        elif update.effective_chat is not None and update.effective_message is not None:
            await bot.send_message(update.effective_chat.id, text, parse_mode=ParseMode.HTML)
    except TelegramError as exc:
        log.warning("could not apologise for update %s: %s", update.update_id, exc)


async def _send_replies(deps: Deps, update: Update, scope: UpdateScope) -> None:
    for action in scope.after_commit:
        try:
            await action()
        except _Deferred:
            pass
        except Forbidden:
            chat = update.effective_chat
            if chat is not None:
                try:
                    async with deps.db.transaction() as session:
                        await chats.bot_unreachable(session, chat_id=chat.id)
                except Exception as exc:
                    log.error("could not record chat %s as unreachable: %s", chat.id, _brief(exc))
        except TelegramError:
            log.exception("reply to update %s failed", update.update_id)


class _Deferred(Exception):
    """A reply met flood control and went to the outbox instead."""


def _brief(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


# --- text ---------------------------------------------------------------------------------------


# Bidi controls let one name reverse the text around it in the reader's client.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_LINE_BREAKS = re.compile(r"[\s\u2028\u2029\x00-\x1f\x7f]+")


def esc(text: object) -> str:
    """User text meets HTML here: always through this."""
    return html.escape(str(text).translate(_BIDI_CONTROLS), quote=False)


def esc_line(text: object) -> str:
    """A name or title shown inside a line: escaped, and on one line, so that a newline
    in a Telegram name cannot start a line of its own ("Approve with /approve …")."""
    return esc(_LINE_BREAKS.sub(" ", str(text)).strip())


# --- the context -------------------------------------------------------------------------------


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

    def now(self) -> datetime:
        return self.deps.clock()

    def after_commit(self, action: AfterCommit) -> None:
        self.scope.after_commit.append(action)

    def redraw(self, poll_id: int) -> None:
        """After the commit, have the poll's tally message show what it now holds."""
        changed = self.deps.tally_changed

        async def redraw() -> None:
            changed(poll_id)

        self.after_commit(redraw)

    def reply(self, update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        self.send(chat.id, text, markup, thread=_thread_of(update))

    def send(
        self,
        chat_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        *,
        thread: int | None = None,
        on_sent: Callable[[Message], Awaitable[None]] | None = None,
    ) -> None:
        """Say ``text`` in a chat after the commit; ``on_sent`` gets the (last) message."""
        chunks = split_html(text)
        bot = self.bot
        db = self.deps.db
        wake = self.deps.outbox_written
        origin = self.scope.update.effective_chat
        elsewhere = origin is None or origin.id != chat_id
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1

            async def send(chunk: str = chunk, last: bool = last) -> None:
                try:
                    message = await bot.send_message(
                        chat_id,
                        chunk,
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup if last else None,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                        message_thread_id=thread,
                    )
                except BadRequest:
                    raise  # Telegram refused this message: sending it again changes nothing
                except Forbidden as exc:
                    if not elsewhere:
                        raise  # the update's own chat: recorded as unreachable by the caller
                    # A private chat the person never started: nothing to record, and the
                    # chat the update came from is not the one that refused.
                    log.info("message to chat %s refused: %s", chat_id, exc)
                    return
                except (RetryAfter, NetworkError) as exc:
                    # Flood control, a 5xx or a timeout: the outbox waits (for that chat only,
                    # or with its backoff) and tries again. After a timeout the message may
                    # have arrived; at least once, as everywhere.
                    if isinstance(exc, RetryAfter):
                        wait = timedelta(seconds=retry_after_seconds(exc))
                    else:
                        log.warning("reply to chat %s deferred: %s", chat_id, _brief(exc))
                        wait = outbox.backoff(1)
                    await _defer(db, chat_id, chunk, markup if last else None, wait)
                    wake()
                    raise _Deferred() from exc
                if last and on_sent is not None:
                    await on_sent(message)

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
            await edit_message(bot, message.chat.id, message.message_id, text, markup)

        self.after_commit(send)

    def answer(self, update: Update, text: str | None = None, *, alert: bool = False) -> None:
        query = update.callback_query
        if query is None:
            return
        bot = self.bot

        async def send() -> None:
            await bot.answer_callback_query(query.id, text=text, show_alert=alert)

        self.after_commit(send)


async def edit_message(
    bot: Bot,
    chat_id: int,
    message_id: int,
    text: str,
    markup: InlineKeyboardMarkup | None,
) -> None:
    """Show ``text`` in a message the bot sent. Telegram refuses an edit that changes
    nothing (a second press of the same button, a redraw of a tally that did not move):
    the message already shows what it should, so that is done. Anything else raises."""
    try:
        await bot.edit_message_text(
            truncate_html(text),
            chat_id=chat_id,
            message_id=message_id,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
    except BadRequest as exc:
        if "message is not modified" not in exc.message.lower():
            raise


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        # PTB 22 warns that retry_after becomes a timedelta; both are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        retry = exc.retry_after
    return retry.total_seconds() if isinstance(retry, timedelta) else float(retry)


async def _defer(
    db: Database, chat_id: int, text: str, markup: InlineKeyboardMarkup | None, wait: timedelta
) -> None:
    """A reply Telegram could not take now waits in the outbox, which knows how to wait."""
    async with db.transaction() as session:
        await outbox.enqueue(
            session,
            chat_id=chat_id,
            kind=outbox.TEXT,
            params={"text": text, "markup": markup.to_dict() if markup else None},
            not_before=utcnow() + wait,
        )


def _thread_of(update: Update) -> int | None:
    message = update.effective_message
    if message is not None and message.is_topic_message:
        return message.message_thread_id
    return None
