"""A fake Telegram Bot API standing where python-telegram-bot does its HTTP.

``FakeTelegram`` answers Bot API methods as Telegram would and records every
call. It can be put in front of the bot two ways: as a ``BaseRequest``
(``FakeRequest``, in-process, for fast end-to-end tests) or as a real HTTP
server (``http_app``, for polling over loopback). Failures Telegram really
produces are injected on demand: 429 with retry_after, 403 blocked, 400 chat
migrated. An unimplemented method fails the test loudly instead of guessing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
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
        markup = self.params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        return [
            (button["text"], button.get("callback_data", ""))
            for row in markup.get("inline_keyboard", [])
            for button in row
        ]


@dataclass
class Failure:
    method: str
    chat_id: int | None
    status: int
    description: str
    parameters: dict[str, Any] | None = None
    times: int = 1
    after: int = 0  # matching calls that still succeed before the failures start


@dataclass
class FakeTelegram:
    calls: list[Call] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # the HTTP status of each call, in order
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    admins: set[tuple[int, int]] = field(default_factory=set)  # (chat_id, user_id)
    failures: list[Failure] = field(default_factory=list)
    pending_updates: deque[dict[str, Any]] = field(default_factory=deque)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (method, why, text)
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5000))
    _update_arrived: asyncio.Event | None = None

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
        status, body = self._handle(method, params)
        self.statuses.append(status)
        return status, body

    def _handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append(Call(method, params))
        failure = self._failure_for(method, params)
        if failure is not None:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": failure.status,
                "description": failure.description,
            }
            if failure.parameters:
                body["parameters"] = failure.parameters
            return failure.status, body
        refused = self._refuse_bad_text(method, params)
        if refused is not None:
            return refused
        answer: Callable[[dict[str, Any]], Any] | None = getattr(self, f"api_{method}", None)
        if answer is None:
            return 404, {
                "ok": False,
                "error_code": 404,
                "description": f"Not Found: fake has no {method}",
            }
        return 200, {"ok": True, "result": answer(params)}

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
            "message_id": message_id or next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(params["chat_id"]),
            "from": self.bot_user,
            "text": params.get("text", ""),
        }
        if params.get("reply_markup"):
            markup = params["reply_markup"]
            message["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
        return message

    def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    def api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params)

    def api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, message_id=int(params["message_id"]))

    def _refuse_bad_text(
        self, method: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]] | None:
        """Telegram refuses over-long text and HTML it cannot parse; so does the fake."""
        if method not in ("sendMessage", "editMessageText"):
            return None
        text = str(params.get("text", ""))
        problem = None
        if not text.strip():
            problem = "Bad Request: message text is empty"
        elif len(text) > 4096:
            problem = "Bad Request: message is too long"
        elif params.get("parse_mode") == "HTML":
            problem = html_problem(text)
        if problem is None:
            return None
        self.refused.append((method, problem, text))
        return 400, {"ok": False, "error_code": 400, "description": problem}

    def api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    def api_setMyCommands(self, params: dict[str, Any]) -> bool:
        return True

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


class FakeRequest(BaseRequest):
    """python-telegram-bot's HTTP layer, answered by a ``FakeTelegram``; no socket is opened."""

    def __init__(self, telegram: FakeTelegram) -> None:
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
        params = dict(request_data.parameters) if request_data is not None else {}
        if api_method == "getUpdates":
            status, body = 200, {"ok": True, "result": await self.telegram.get_updates(params)}
            self.telegram.calls.append(Call(api_method, params))
            self.telegram.statuses.append(status)
        else:
            status, body = self.telegram.handle(api_method, params)
        return status, json.dumps(body).encode()


def http_app(telegram: FakeTelegram) -> Any:
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
