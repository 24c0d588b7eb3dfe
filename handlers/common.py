"""Small pieces every feature module uses: argument parsing, chat checks, notices."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from telegram import Chat as TelegramChat
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram import User as TelegramUser
from telegram.constants import ChatType

from handlers.context import BotContext, esc
from locales import normalize_language, use_language
from storage import outbox, roles, users
from storage.models import DelegateRole
from storage.models import User as UserRow

MAX_ARGUMENT = 500  # longer arguments are refused before any parsing


class HandlerError(Exception):
    """A request the handler refuses before any service is called."""


class Usage(HandlerError):
    """Arguments missing or malformed; ``command`` names the command whose usage to show."""

    def __init__(self, command: str) -> None:
        super().__init__(command)
        self.command = command


class WrongChat(HandlerError):
    """``needs`` is ``"private"`` or ``"group"``."""

    def __init__(self, needs: str) -> None:
        super().__init__(needs)
        self.needs = needs


class TooLong(HandlerError):
    pass


class Forged(HandlerError):
    """Callback data that no keyboard of ours produced: refused silently."""


def command_text(update: Update) -> str:
    """Everything after ``/command`` (or ``/command@Bot``), stripped."""
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    rest = text.partition(" ")[2] if text.startswith("/") else text
    rest = rest.strip()
    if len(rest) > MAX_ARGUMENT:
        raise TooLong()
    return rest


def sender(update: Update) -> TelegramUser:
    """The user behind an update that has one (commands and button presses always do)."""
    user = update.effective_user
    if user is None:
        raise RuntimeError(f"update {update.update_id} has no user")
    return user


def chat_of(update: Update) -> TelegramChat:
    chat = update.effective_chat
    if chat is None:
        raise RuntimeError(f"update {update.update_id} has no chat")
    return chat


def require_group(update: Update) -> None:
    chat = update.effective_chat
    if chat is None or chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        raise WrongChat("group")


def parse_user_id(text: str, command: str) -> int:
    """A numeric Telegram user id (what /approve and /coordinator take)."""
    if not re.fullmatch(r"\d{1,20}", text.strip()):
        raise Usage(command)
    value = int(text.strip())
    if value >= 2**63:
        raise Usage(command)
    return value


def callback_parts(update: Update, pattern: re.Pattern[str]) -> re.Match[str]:
    """The callback data of a pressed button, matched against what our keyboards send."""
    query = update.callback_query
    data = query.data if query is not None else None
    match = pattern.fullmatch(data) if isinstance(data, str) else None
    if match is None:
        raise Forged()
    return match


def keyboard(rows: Sequence[Sequence[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


def in_columns(buttons: Sequence[tuple[str, str]], columns: int = 2) -> list[list[tuple[str, str]]]:
    return [list(buttons[i : i + columns]) for i in range(0, len(buttons), columns)]


def display_name(full_name: str | None, username: str | None, user_id: int) -> str:
    """How a person is shown: their name, with @username when they have one (escaped)."""
    name = esc((full_name or "").strip()[:64] or str(user_id))
    return f"{name} (@{esc(username)})" if username else name


def display_user(user: UserRow | None, user_id: int) -> str:
    """``display_name`` for a stored user, who may never have written to the bot."""
    if user is None:
        return display_name(None, None, user_id)
    return display_name(user.full_name, user.username, user_id)


ROLE_WORDS: dict[str, DelegateRole] = {
    "mayor": DelegateRole.MAYOR,
    "focal": DelegateRole.FOCAL_POINT,
    "focal_point": DelegateRole.FOCAL_POINT,
    "technical": DelegateRole.TECHNICAL_STAFF,
    "technical_staff": DelegateRole.TECHNICAL_STAFF,
}


async def notify(
    ctx: BotContext,
    user_id: int,
    render: Callable[[], str],
    buttons: Callable[[], InlineKeyboardMarkup] | None = None,
) -> None:
    """Queue a message to someone else, in *their* language, delivered after commit."""
    language = normalize_language(await users.language_of(ctx.session, user_id))
    with use_language(language or ctx.deps.default_language):
        text = render()
        markup = buttons() if buttons is not None else None
    reply_markup: dict[str, Any] | None = markup.to_dict() if markup is not None else None
    outbox.enqueue(ctx.session, chat_id=user_id, text=text, reply_markup=reply_markup)
    ctx.scope.wrote_outbox = True


async def notify_all(
    ctx: BotContext,
    user_ids: Iterable[int],
    render: Callable[[], str],
    buttons: Callable[[], InlineKeyboardMarkup] | None = None,
) -> None:
    """``notify`` each of ``user_ids``, each in their own language."""
    for user_id in sorted(set(user_ids)):
        await notify(ctx, user_id, render, buttons)


async def notify_secretariat(
    ctx: BotContext,
    render: Callable[[], str],
    buttons: Callable[[], InlineKeyboardMarkup] | None = None,
) -> None:
    staff = await roles.secretariat_ids(ctx.session, bootstrap=ctx.deps.bootstrap_secretariat)
    await notify_all(ctx, staff, render, buttons)
