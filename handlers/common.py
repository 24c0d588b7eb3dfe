"""Small pieces every feature module uses: argument parsing, chat checks, buttons."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from telegram import Chat as TelegramChat
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram import User as TelegramUser
from telegram.constants import ChatType

from storage import secretariat
from storage.models import DelegateRole

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


def command_lines(update: Update, limit: int) -> str:
    """Everything after the command word, its lines kept (a title and a description, a
    number and a text): for the few commands whose argument may be long and span lines."""
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    rest = re.sub(r"^/\S*", "", text, count=1).strip()
    if len(rest) > limit:
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
    """A numeric Telegram user id (what /coordinator and /secretariat take)."""
    if not re.fullmatch(r"\d{1,20}", text.strip()):
        raise Usage(command)
    return secretariat.check_user_id(int(text.strip()))


def parse_number(text: str, command: str) -> int:
    """A number people type from a notice (a claim, a session): digits only, small."""
    text = text.strip().removeprefix("#")
    if not re.fullmatch(r"\d{1,9}", text):
        raise Usage(command)
    return int(text)


Where = Literal["private", "group", "any"]


def callback_parts(
    update: Update, pattern: re.Pattern[str], *, where: Where = "private"
) -> re.Match[str]:
    """The callback data of a pressed button, if it is one our keyboards drew, on the
    message that carries it, in the kind of chat it was drawn for; else Forged.

    Telegram hands over the message the button is on, with its keyboard: data that
    is not on that keyboard was not pressed there. A private chat's buttons are for
    the person whose chat it is.
    """
    query = update.callback_query
    data = query.data if query is not None else None
    match = pattern.fullmatch(data) if isinstance(data, str) else None
    if query is None or match is None:
        raise Forged()
    message = query.message
    if message is None or not isinstance(message, Message):
        raise Forged()  # too old to be seen, or not ours to read
    drawn = message.reply_markup.inline_keyboard if message.reply_markup else ()
    if not any(button.callback_data == data for row in drawn for button in row):
        raise Forged()
    chat = message.chat
    if where == "private" and (chat.type != ChatType.PRIVATE or chat.id != query.from_user.id):
        raise Forged()
    if where == "group" and chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        raise Forged()
    if message.from_user is not None and message.from_user.id != update.get_bot().id:
        raise Forged()
    return match


def keyboard(rows: Sequence[Sequence[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


def in_columns(buttons: Sequence[tuple[str, str]], columns: int = 2) -> list[list[tuple[str, str]]]:
    return [list(buttons[i : i + columns]) for i in range(0, len(buttons), columns)]


ROLE_WORDS: dict[str, DelegateRole] = {
    "mayor": DelegateRole.MAYOR,
    "focal": DelegateRole.FOCAL_POINT,
    "focal_point": DelegateRole.FOCAL_POINT,
    "technical": DelegateRole.TECHNICAL_STAFF,
    "technical_staff": DelegateRole.TECHNICAL_STAFF,
}
