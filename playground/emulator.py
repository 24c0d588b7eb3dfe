"""A fake Telegram Bot API standing where python-telegram-bot does its HTTP.

``TelegramEmulator`` answers Bot API methods as Telegram would and records every
call. It can be put in front of the bot two ways: as a ``BaseRequest``
(``EmulatorRequest``, in-process, for fast end-to-end tests) or as a real HTTP
server (``http_app``, for polling over loopback). Failures Telegram really
produces are injected on demand: 429 with retry_after, 403 blocked, 400 chat
migrated. An unimplemented method fails the test loudly instead of guessing.

Off by default, it also keeps Telegram's flood limits (``limits=Limits(...)``, optionally
time-compressed by a scale) and answers a share of the messages with a flood 429 at
random (``flood_share``), as a busy Telegram does; see ``Limits``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from telegram.request import BaseRequest, RequestData

BOT_ID = 7000000001
BOT_USERNAME = "b40_test_bot"
BOT_TOKEN = f"{BOT_ID}:AAE-fake-token-for-tests-only-0123456789"


@dataclass
class Call:
    method: str
    params: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button in this call's keyboard."""
        return buttons(self.params)


@dataclass
class Failure:
    method: str
    chat_id: int | None
    status: int
    description: str
    parameters: dict[str, Any] | None = None
    times: int = 1
    after: int = 0  # matching calls that still succeed before the failures start


# Telegram's limits that the emulator enforces.
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64  # bytes, UTF-8

NOT_STARTED = "Forbidden: bot can't initiate conversation with a user"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


@dataclass
class Upload:
    """A file the bot sent (sendDocument, sendPhoto), kept so a client can open it."""

    file_id: str
    name: str
    mime: str
    data: bytes


# The methods that send a message, which Telegram's flood limits count (not edits, not
# answers to button presses).
SENDING = frozenset({"sendMessage", "sendDocument", "sendPhoto"})


@dataclass(frozen=True)
class Limits:
    """Telegram's flood limits for sending messages, as the emulator enforces them.

    Telegram documents about 30 messages a second overall, 20 a minute into one group and
    1 a second into one chat, short bursts tolerated; it publishes no burst sizes. Each
    limit is a leaky bucket (GCRA): it holds up to ``burst`` messages and drains at the
    limit's rate, and a message is accepted only if every bucket it falls in (the bot's,
    the group's when the chat id is negative, the chat's) has room for it now. Only
    accepted messages (status 200) fill the buckets: a refused call sent nothing.

    ``scale`` compresses time, so that a benchmark is short: every rate is multiplied by
    it and every wait divided by it, while burst sizes (counts of messages) stay as they
    are; the run is Telegram's, played ``scale`` times faster. The bursts chosen here:

    - overall 30, a second's worth at Telegram's pace: a bot that paces itself smoothly
      (the bot's own limiter does) never comes near it, one that sends as fast as it can
      is refused after 30 messages;
    - per group 20, a minute's worth (the limit is stated per minute; PTB's limiter and the
      bot's allow the same burst);
    - per chat 4, the parts of one long message (the bot's limiter allows 4).

    A message over a limit is answered 429 with ``retry_after`` the time until there is
    room, rounded up, as Telegram does, to whole seconds of unscaled time: at scale 5 a
    wait of 30 ms is answered ``retry_after: 0.2``. python-telegram-bot 22 takes a
    fractional retry_after as it is (``RetryAfter.retry_after`` == 0.2 s). Until that time
    has passed, Telegram refuses that chat again (the whole bot, for the overall limit),
    however empty the buckets are: such an early retry is answered 429 too.
    """

    scale: float = 1.0
    per_second: float = 30.0
    burst: float = 30.0
    group_per_minute: float = 20.0
    group_burst: float = 20.0
    chat_per_second: float = 1.0
    chat_burst: float = 4.0

    def buckets(self, chat_id: int) -> list[tuple[tuple[str, int], float, float]]:
        """(key, messages per second, burst) of every bucket a message to ``chat_id`` fills."""
        found = [(("overall", 0), self.per_second * self.scale, self.burst)]
        if chat_id < 0:
            found.append(
                (("group", chat_id), self.group_per_minute / 60 * self.scale, self.group_burst)
            )
        found.append((("chat", chat_id), self.chat_per_second * self.scale, self.chat_burst))
        return found

    def retry_after(self, wait: float) -> float:
        """What Telegram would tell a bot that must wait ``wait`` (real) seconds: whole
        seconds of unscaled time, at least one, divided by the scale."""
        return max(1, math.ceil(wait * self.scale - 1e-9)) / self.scale


@dataclass(frozen=True)
class Throttle:
    """A message answered 429 because of a limit (``Limits``) or at random (flood)."""

    at: float  # time.monotonic()
    method: str
    chat_id: int
    reason: str  # "injected", or the limit gone over: "overall", "group", "chat", "early"
    retry_after: float  # seconds, as sent


@dataclass
class TelegramEmulator:
    calls: list[Call] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # the HTTP status of each call, in order
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    admins: set[tuple[int, int]] = field(default_factory=set)  # (chat_id, user_id)
    failures: list[Failure] = field(default_factory=list)
    pending_updates: deque[dict[str, Any]] = field(default_factory=deque)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (method, why, text)
    # Telegram's rules on who can be written to and what can be edited; the playground
    # keeps them, most tests do not need them (they never /start every person first).
    strict: bool = False
    now: Callable[[], float] = time.time
    # What each chat shows: messages as Telegram dicts, in order, with edits applied.
    history: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)  # users with a private chat with the bot
    # The command menu: (scope type, language code or "") -> [{"command", "description"}].
    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    callback_answers: dict[str, str] = field(default_factory=dict)  # query id -> toast text
    version: int = 0  # rises on every change a client would see
    # Flood limits (off unless given) and random flood control, see ``Limits``. With
    # probability ``flood_share`` a message-sending call is answered 429 before any other
    # check, with ``retry_after`` one second of unscaled time (1 / scale s); it fills no
    # bucket. Such 429s are counted in ``injected_429``, those of a limit the bot went over
    # (or of a retry before its retry_after) in ``enforced_429``; each is in ``throttled``.
    limits: Limits | None = None
    flood_share: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(40))  # noqa: S311 (not crypto)
    injected_429: int = 0
    enforced_429: int = 0
    throttled: list[Throttle] = field(default_factory=list)
    _buckets: dict[tuple[str, int], float] = field(default_factory=dict)  # key -> GCRA's TAT
    _banned_until: dict[int | None, float] = field(default_factory=dict)  # None: the whole bot
    _last_message_id: int = 4999
    _update_arrived: asyncio.Event | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    bot_user: ClassVar[dict[str, Any]] = {
        "id": BOT_ID,
        "is_bot": True,
        "first_name": "B40 Bot",
        "username": BOT_USERNAME,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }

    # --- failure injection ------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        times: int = 1,
        status: int,
        description: str,
        parameters: dict[str, Any] | None = None,
        after: int = 0,
    ) -> None:
        self.failures.append(
            Failure(method, chat_id, status, description, parameters, times, after)
        )

    def rate_limit(
        self,
        method: str = "sendMessage",
        *,
        retry_after: int = 1,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        self.fail(
            method,
            chat_id=chat_id,
            times=times,
            status=429,
            description=f"Too Many Requests: retry after {retry_after}",
            parameters={"retry_after": retry_after},
        )

    def block(self, chat_id: int, method: str = "sendMessage") -> None:
        self.fail(
            method,
            chat_id=chat_id,
            times=10**6,
            status=403,
            description="Forbidden: bot was blocked by the user",
        )

    def migrate(self, chat_id: int, new_chat_id: int, method: str = "sendMessage") -> None:
        self.fail(
            method,
            chat_id=chat_id,
            times=10**6,
            status=400,
            description="Bad Request: group chat was upgraded to a supergroup chat",
            parameters={"migrate_to_chat_id": new_chat_id},
        )

    def _failure_for(self, method: str, params: dict[str, Any]) -> Failure | None:
        chat_id = params.get("chat_id")
        for failure in self.failures:
            if (
                failure.method == method
                and failure.times > 0
                and (
                    failure.chat_id is None
                    or (chat_id is not None and int(chat_id) == failure.chat_id)
                )
            ):
                if failure.after > 0:
                    failure.after -= 1
                    return None
                failure.times -= 1
                return failure
        return None

    # --- what the bot did ---------------------------------------------------------------------

    def sent(self, chat_id: int | None = None, method: str = "sendMessage") -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.chat_id == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        """What the chat sees, in order: messages sent and messages edited."""
        return [
            c.text
            for c in self.calls
            if c.method in ("sendMessage", "editMessageText")
            and (chat_id is None or c.chat_id == chat_id)
        ]

    # --- the API --------------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        counted = (
            (self.limits is not None or self.flood_share > 0)
            and method in SENDING
            and params.get("chat_id") is not None
        )
        if not counted:
            status, body = self._handle(method, params)
            self.statuses.append(status)
            return status, body
        now = time.monotonic()
        chat_id = _chat_key(params["chat_id"])
        throttle = self._throttle(method, chat_id, now)
        if throttle is not None:
            self.calls.append(Call(method, params))
            description = f"Too Many Requests: retry after {_seconds(throttle.retry_after)}"
            status = 429
            body = _error(429, description, {"retry_after": throttle.retry_after})
        else:
            status, body = self._handle(method, params)
            if status == 200 and self.limits is not None:
                self._fill(self.limits, chat_id, now)
        self.statuses.append(status)
        return status, body

    # --- flood limits -------------------------------------------------------------------------

    def _throttle(self, method: str, chat_id: int, now: float) -> Throttle | None:
        """The 429 this message gets now, if any: flood at random, or a limit gone over."""
        scale = self.limits.scale if self.limits is not None else 1.0
        if self.flood_share > 0 and self.rng.random() < self.flood_share:
            self.injected_429 += 1
            return self._refuse(method, chat_id, "injected", 1 / scale, now, ban=chat_id)
        if self.limits is None:
            return None
        for key in (None, chat_id):
            banned = self._banned_until.get(key, 0.0)
            if now < banned:
                self.enforced_429 += 1
                wait = self.limits.retry_after(banned - now)
                return self._refuse(method, chat_id, "early", wait, now, ban=None)
        for (kind, key), rate, burst in self.limits.buckets(chat_id):
            # GCRA: the bucket is full while its theoretical arrival time is more than
            # burst - 1 emissions ahead of now.
            wait = self._buckets.get((kind, key), now) - now - (burst - 1) / rate
            if wait > 1e-9:
                self.enforced_429 += 1
                retry = self.limits.retry_after(wait)
                return self._refuse(
                    method, chat_id, kind, retry, now, ban=None if kind == "overall" else chat_id
                )
        return None

    def _refuse(
        self, method: str, chat_id: int, reason: str, retry: float, now: float, *, ban: int | None
    ) -> Throttle:
        if reason != "early":
            self._banned_until[ban] = max(self._banned_until.get(ban, 0.0), now + retry)
        throttle = Throttle(now, method, chat_id, reason, retry)
        self.throttled.append(throttle)
        return throttle

    def _fill(self, limits: Limits, chat_id: int, now: float) -> None:
        """An accepted message takes its place in every bucket it falls in."""
        for key, rate, _burst in limits.buckets(chat_id):
            self._buckets[key] = max(self._buckets.get(key, now), now) + 1 / rate

    def _handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append(Call(method, params))
        failure = self._failure_for(method, params)
        if failure is not None:
            return failure.status, _error(failure.status, failure.description, failure.parameters)
        if self._not_started(method, params):
            return 403, _error(403, NOT_STARTED)
        answer: Callable[[dict[str, Any]], Any] | None = getattr(self, f"api_{method}", None)
        try:
            problem = (
                self._edit_problem(method, params)
                or self._text_problem(method, params)
                or self._markup_problem(params)
            )
            if problem is not None:
                raise _Refused(400, problem)
            if answer is None:
                return 404, _error(404, f"Not Found: the emulator has no {method}")
            return 200, {"ok": True, "result": answer(params)}
        except _Refused as refusal:
            # What the bot sent and Telegram would refuse as malformed, for tests to check.
            self.refused.append((method, refusal.description, str(params.get("text", ""))))
            return refusal.status, _error(refusal.status, refusal.description)

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        chat_id = int(chat_id)
        if chat_id in self.chats:
            return self.chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        return {
            "id": chat_id,
            "type": "supergroup" if str(chat_id).startswith("-100") else "group",
            "title": "Chat",
        }

    def _message(self, params: dict[str, Any], message_id: int | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id or self.next_message_id(),
            "date": int(self.now()),
            "chat": self._chat(params["chat_id"]),
            "from": self.bot_user,
            "text": params.get("text", ""),
        }
        if params.get("parse_mode"):
            message["parse_mode"] = params["parse_mode"]  # kept for clients showing the chat
        markup = _markup(params)
        if markup:
            message["reply_markup"] = markup
        return message

    # --- what each chat shows -------------------------------------------------------------------

    def _changed_now(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_change(self, seen: int) -> int:
        """Wait until the version is past ``seen``; returns the version. The caller bounds
        the wait (``asyncio.timeout``)."""
        if self.version == seen:
            await self._changed.wait()
        return self.version

    def _show(self, message: dict[str, Any]) -> dict[str, Any]:
        self.history.setdefault(int(message["chat"]["id"]), []).append(message)
        self._changed_now()
        return message

    def shown(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        for message in self.history.get(chat_id, []):
            if message["message_id"] == message_id:
                return message
        return None

    def next_message_id(self) -> int:
        self._last_message_id += 1
        return self._last_message_id

    def receive(self, update: dict[str, Any]) -> None:
        """An update a person caused: their message joins the chat, and a person who writes
        to the bot in private has started it (it may write to them from then on)."""
        message = update.get("message")
        if message is not None:
            chat = message["chat"]
            self.chats.setdefault(int(chat["id"]), chat)
            if chat.get("type") == "private":
                self.started.add(int(chat["id"]))
            if message.get("text"):
                self._show(message)

    # --- kept between runs (the playground) -----------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What a client would still show after a restart, as JSON."""
        return {
            "next_message_id": self._last_message_id + 1,
            "chats": list(self.chats.values()),
            "history": {str(k): v for k, v in self.history.items()},
            "started": sorted(self.started),
            "uploads": [
                {
                    "file_id": u.file_id,
                    "name": u.name,
                    "mime": u.mime,
                    "data": base64.b64encode(u.data).decode(),
                }
                for u in self.uploads.values()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._last_message_id = int(state["next_message_id"]) - 1
        self.chats.update({int(c["id"]): c for c in state["chats"]})
        self.history = {int(k): v for k, v in state["history"].items()}
        self.started = set(state["started"])
        for u in state["uploads"]:
            self.uploads[u["file_id"]] = Upload(
                u["file_id"], u["name"], u["mime"], base64.b64decode(u["data"])
            )
        self._changed_now()

    # --- the API --------------------------------------------------------------------------------

    def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    def api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._show(self._message(params))

    def api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._message(params, message_id=int(params["message_id"]))
        shown = self.shown(int(params["chat_id"]), message["message_id"])
        if shown is None:
            return message  # a message the test made up; strict mode refused it already
        shown.update(
            text=message["text"],
            edit_date=message["date"],
            reply_markup=message.get("reply_markup") or {"inline_keyboard": []},
        )
        if "parse_mode" in message:
            shown["parse_mode"] = message["parse_mode"]
        self._changed_now()
        return shown

    def api_deleteMessage(self, params: dict[str, Any]) -> bool:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        messages = self.history.get(chat_id, [])
        self.history[chat_id] = [m for m in messages if m["message_id"] != message_id]
        self._changed_now()
        return True

    def api_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send_file(params, "document")

    def api_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send_file(params, "photo")

    def _send_file(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        upload = params.get(kind)
        if not isinstance(upload, Upload):
            raise _Refused(400, "Bad Request: wrong file identifier/HTTP URL specified")
        self.uploads[upload.file_id] = upload
        message = self._message({**params, "text": ""})
        del message["text"]
        if params.get("caption"):
            message["caption"] = params["caption"]
        described = {"file_id": upload.file_id, "file_unique_id": upload.file_id[:16]}
        if kind == "photo":
            message["photo"] = [
                {**described, "width": 0, "height": 0, "file_size": len(upload.data)}
            ]
        else:
            message["document"] = {
                **described,
                "file_name": upload.name,
                "mime_type": upload.mime,
                "file_size": len(upload.data),
            }
        return self._show(message)

    def _not_started(self, method: str, params: dict[str, Any]) -> bool:
        """In strict mode: Telegram lets a bot write first to nobody."""
        return (
            self.strict
            and method.startswith("send")
            and "chat_id" in params
            and int(params["chat_id"]) > 0
            and int(params["chat_id"]) not in self.started
        )

    def _edit_problem(self, method: str, params: dict[str, Any]) -> str | None:
        """In strict mode: an edit must find its message and change it."""
        if not self.strict or method != "editMessageText":
            return None
        shown = self.shown(int(params["chat_id"]), int(params["message_id"]))
        if shown is None:
            return "Bad Request: message to edit not found"
        unchanged = shown.get("text") == params.get("text") and (
            shown.get("reply_markup") or {"inline_keyboard": []}
        ) == (_markup(params) or {"inline_keyboard": []})
        return NOT_MODIFIED if unchanged else None

    def _markup_problem(self, params: dict[str, Any]) -> str | None:
        markup = _markup(params)
        problem = None
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if not str(button.get("text", "")).strip():
                    problem = "Bad Request: text buttons are unallowed in the inline keyboard"
                elif data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                    problem = "Bad Request: BUTTON_DATA_INVALID"
        return problem

    def _text_problem(self, method: str, params: dict[str, Any]) -> str | None:
        """Telegram refuses empty or over-long text and HTML it cannot parse; so does this."""
        if method not in ("sendMessage", "editMessageText"):
            return None
        text = str(params.get("text", ""))
        if not text.strip():
            return "Bad Request: message text is empty"
        if len(text) > MAX_TEXT:
            return "Bad Request: message is too long"
        if params.get("parse_mode") == "HTML":
            return html_problem(text)
        return None

    def api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        if params.get("text"):
            self.callback_answers[str(params["callback_query_id"])] = str(params["text"])
        return True

    def api_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands") or []
        if isinstance(commands, str):
            commands = json.loads(commands)
        scope = params.get("scope") or {"type": "default"}
        if isinstance(scope, str):
            scope = json.loads(scope)
        key = (str(scope.get("type", "default")), str(params.get("language_code") or ""))
        self.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        self._changed_now()
        return True

    def menu(self, language_code: str | None, chat_type: str = "private") -> list[dict[str, str]]:
        """The command menu a client shows, as Telegram picks it: the most specific scope
        for the chat type, in the user's language, else without a language."""
        scopes = ["all_private_chats" if chat_type == "private" else "all_group_chats", "default"]
        for scope in scopes:
            for language in (language_code or "", ""):
                found = self.commands.get((scope, language))
                if found is not None:
                    return found
        return []

    def api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return True

    def api_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        status = "administrator" if (chat_id, user_id) in self.admins else "member"
        member: dict[str, Any] = {
            "status": status,
            "user": {"id": user_id, "is_bot": False, "first_name": "User"},
        }
        if status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "is_anonymous": False,
                    "can_manage_chat": True,
                    "can_delete_messages": True,
                    "can_manage_video_chats": True,
                    "can_restrict_members": True,
                    "can_promote_members": False,
                    "can_change_info": True,
                    "can_invite_users": True,
                    "can_post_stories": False,
                    "can_edit_stories": False,
                    "can_delete_stories": False,
                }
            )
        return member

    # getUpdates long polling, for the HTTP front end.
    def push_update(self, update: dict[str, Any]) -> None:
        self.pending_updates.append(update)
        if self._update_arrived is not None:
            self._update_arrived.set()

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        while self.pending_updates and self.pending_updates[0]["update_id"] < offset:
            self.pending_updates.popleft()
        if not self.pending_updates:
            self._update_arrived = asyncio.Event()
            timeout = min(float(params.get("timeout") or 0), 2.0)
            try:
                await asyncio.wait_for(self._update_arrived.wait(), timeout)
            except TimeoutError:
                return []
        return [u for u in self.pending_updates if u["update_id"] >= offset]


_TELEGRAM_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}


class _HTMLCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_TAGS:
            self.problem = (
                self.problem or f"Bad Request: can't parse entities: Unsupported start tag {tag!r}"
            )
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problem = (
                self.problem or f"Bad Request: can't parse entities: Unexpected end tag {tag!r}"
            )
        else:
            self.stack.pop()

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self.problem = (
                self.problem or f"Bad Request: can't parse entities: Unknown entity {name!r}"
            )


def _error(
    status: int, description: str, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A Bot API error body, as Telegram writes one."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


def _seconds(value: float) -> str:
    """A retry_after as the description says it: ``1``, ``0.2``."""
    return f"{value:g}"


def _chat_key(chat_id: Any) -> int:
    """A chat id as the buckets know it; an @channel name is a chat of its own."""
    try:
        return int(chat_id)
    except (TypeError, ValueError):
        return hash(str(chat_id))


class _Refused(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


def buttons(holder: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, callback_data) of every inline button of a call's params or of a message
    (both carry ``reply_markup``); a button without callback data has ``""``."""
    return [
        (button["text"], button.get("callback_data", ""))
        for row in (_markup(holder) or {}).get("inline_keyboard", [])
        for button in row
    ]


def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup)
    return markup or None


def _upload(part: Any) -> Upload:
    """A file part as PTB sends it: (file name, content, MIME type)."""
    name, content, mime = part
    data = content if isinstance(content, bytes) else content.read()
    return Upload(file_id=secrets.token_urlsafe(24), name=str(name), mime=str(mime), data=data)


def html_problem(text: str) -> str | None:
    """What Telegram would say about this HTML, or None if it would accept it."""
    if re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text):
        return "Bad Request: can't parse entities: unescaped &"
    checker = _HTMLCheck()
    checker.feed(text)
    checker.close()
    if checker.problem is None and checker.stack:
        return f"Bad Request: can't parse entities: unclosed tag {checker.stack[-1]!r}"
    return checker.problem


class EmulatorRequest(BaseRequest):
    """python-telegram-bot's HTTP layer, answered by a ``TelegramEmulator``; no socket is opened."""

    def __init__(self, telegram: TelegramEmulator) -> None:
        self.telegram = telegram

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.parameters) if request_data is not None else {}
        if request_data is not None and request_data.contains_files:
            # A file is its own part, named by its parameter (document=...) or referred to
            # from one (attach://name, in media groups).
            parts = request_data.multipart_data
            for name, value in list(params.items()):
                if isinstance(value, str) and value.startswith("attach://"):
                    params[name] = _upload(parts.pop(value.removeprefix("attach://")))
            for name, part in parts.items():
                params[name] = _upload(part)
        if api_method == "getUpdates":
            status, body = 200, {"ok": True, "result": await self.telegram.get_updates(params)}
            self.telegram.calls.append(Call(api_method, params))
            self.telegram.statuses.append(status)
        else:
            status, body = self.telegram.handle(api_method, params)
        return status, json.dumps(body).encode()


def http_app(telegram: TelegramEmulator) -> Any:
    """The same fake as a real HTTP server (Starlette), for the bot in polling mode."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Request) -> JSONResponse:
        token = request.path_params["token"]
        if token != BOT_TOKEN:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401
            )
        method = request.path_params["method"]
        content_type = request.headers.get("content-type", "")
        if "application/json" in content_type:
            params = await request.json() if await request.body() else {}
        else:
            # PTB posts url-encoded forms (no uploads here); objects arrive JSON-encoded.
            params = {}
            for key, value in parse_qsl((await request.body()).decode(), keep_blank_values=True):
                params[key] = json.loads(value) if value[:1] in ("{", "[") else value
        if method == "getUpdates":
            telegram.calls.append(Call(method, params))
            telegram.statuses.append(200)
            return JSONResponse({"ok": True, "result": await telegram.get_updates(params)})
        status, body = telegram.handle(method, params)
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/bot{token}/{method}", endpoint, methods=["GET", "POST"])])
