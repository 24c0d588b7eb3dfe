"""Factories for updates as Telegram sends them (JSON), e.g. ``command("/join", user, chat)``."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from playground.emulator import BOT_USERNAME, TelegramEmulator

_update_ids = itertools.count(100_000)
_message_ids = itertools.count(1)


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    @property
    def private(self) -> Chat:
        return Chat(id=self.id, type="private", first_name=self.first_name)


@dataclass(frozen=True)
class Chat:
    id: int
    type: str
    title: str | None = None
    first_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title is not None:
            data["title"] = self.title
        if self.first_name is not None:
            data["first_name"] = self.first_name
        return data


def group(chat_id: int, title: str, *, supergroup: bool = True) -> Chat:
    return Chat(id=chat_id, type="supergroup" if supergroup else "group", title=title)


def register(telegram: TelegramEmulator, *chats: Chat) -> None:
    """Tell the fake what chats exist, so its messages carry the right chat."""
    for chat in chats:
        telegram.chats[chat.id] = chat.to_dict()


def next_update_id() -> int:
    return next(_update_ids)


def message(text: str, user: User, chat: Chat, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": chat.to_dict(),
        "from": user.to_dict(),
    }
    if text:
        data["text"] = text
    if text.startswith("/"):
        command = text.split()[0] if text.split() else text
        data["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    data.update(extra)
    return {"update_id": next_update_id(), "message": data}


def command(
    text: str, user: User, chat: Chat | None = None, *, address: bool = False
) -> dict[str, Any]:
    """``/cmd args``; in a group with ``address=True`` it is sent as ``/cmd@bot args``."""
    if address:
        head, _, rest = text.partition(" ")
        text = f"{head}@{BOT_USERNAME}" + (f" {rest}" if rest else "")
    return message(text, user, chat or user.private)


def bot_message(chat: Chat, *buttons: str, text: str = "…") -> dict[str, Any]:
    """A message of the bot's in ``chat`` carrying inline buttons with these callback data."""
    bot = {"id": 7000000001, "is_bot": True, "first_name": "B40 Bot", "username": BOT_USERNAME}
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": chat.to_dict(),
        "from": bot,
        "text": text,
    }
    if buttons:
        message["reply_markup"] = {
            "inline_keyboard": [[{"text": data or "?", "callback_data": data} for data in buttons]]
        }
    return message


def callback(
    data: str, user: User, on_message: dict[str, Any] | None = None, chat: Chat | None = None
) -> dict[str, Any]:
    """A button press on ``on_message``, the bot's message as the fake returned it."""
    chat = chat or user.private
    msg = on_message or {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": chat.to_dict(),
        "text": "…",
    }
    return {
        "update_id": next_update_id(),
        "callback_query": {
            "id": str(next_update_id()),
            "from": user.to_dict(),
            "chat_instance": str(chat.id),
            "message": msg,
            "data": data,
        },
    }


def my_chat_member(chat: Chat, by: User, old: str, new: str) -> dict[str, Any]:
    bot = {"id": 7000000001, "is_bot": True, "first_name": "B40 Bot", "username": BOT_USERNAME}
    return {
        "update_id": next_update_id(),
        "my_chat_member": {
            "chat": chat.to_dict(),
            "from": by.to_dict(),
            "date": int(time.time()),
            "old_chat_member": {
                "status": old,
                "user": bot,
                **({"until_date": 0} if old == "kicked" else {}),
            },
            "new_chat_member": {
                "status": new,
                "user": bot,
                **({"until_date": 0} if new == "kicked" else {}),
            },
        },
    }


def migrated(old_chat: Chat, new_id: int, by: User) -> dict[str, Any]:
    return message("", by, old_chat, migrate_to_chat_id=new_id)
