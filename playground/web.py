"""The playground's page: server-rendered HTML and a small script, no build step.

Every action is a plain form (it works without the script); the script sends the same
forms with ``fetch`` and redraws the chat when the emulator says something changed
(server-sent events), so a second tab sees another person's messages arrive.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from locales import SUPPORTED_LANGUAGES, language_name, normalize_language
from playground.emulator import BOT_USERNAME, MAX_TEXT
from playground.world import Person, Playground

STATIC = Path(__file__).parent / "static"
PREFIX = "/playground"
# The languages a new person can have: what Telegram sends for the network's languages,
# and one the bot does not speak (it falls back to its default).
TELEGRAM_LANGUAGES = (
    "en", "tr", "el", "bg", "ro", "sr", "hr", "bs", "sq", "mk", "sl", "de",
)  # fmt: skip
CLOCK_STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
KEEP_ALIVE_SECONDS = 15.0
# Telegram failing on demand, to see what the bot does then: (what the page says, how).
FAULTS: dict[str, tuple[str, Any]] = {
    "429": (
        "the next message with 429 Too Many Requests (retry after 5 s)",
        lambda world: world.telegram.rate_limit(retry_after=5),
    ),
    "500": (
        "the next message with 500 Internal Server Error",
        lambda world: world.telegram.fail(
            "sendMessage", status=500, description="Internal Server Error"
        ),
    ),
}


class BadRequest(Exception):
    """What the page sent makes no sense; the message says what to do."""


def create_app(world: Playground, *, health: Starlette | None = None) -> Starlette:
    """The page's routes; ``health`` adds the bot's own HTTP routes (``/healthz``)."""

    async def page(request: Request) -> Response:
        person, chat_id = _where(world, request.query_params)
        return HTMLResponse(render_page(world, person, chat_id, request.query_params.get("notice")))

    async def messages(request: Request) -> Response:
        person, chat_id = _where(world, request.query_params)
        return HTMLResponse(render_messages(world, person, chat_id))

    async def send(request: Request) -> Response:
        form = await _form(request)
        person, chat_id = _where(world, form)
        text = str(form.get("text", "")).strip()
        if not text:
            return _done(request, person, chat_id, "Type a message or a command first.")
        if len(text) > MAX_TEXT:
            raise BadRequest(f"A Telegram message holds at most {MAX_TEXT} characters.")
        await world.say(person, chat_id, text)
        return _done(request, person, chat_id)

    async def press(request: Request) -> Response:
        form = await _form(request)
        person, chat_id = _where(world, form)
        try:
            message_id = int(str(form.get("message_id", "")))
            answer = await world.press(person, chat_id, message_id, str(form.get("data", "")))
        except (ValueError, LookupError) as exc:
            raise BadRequest("That button is not on that message any more.") from exc
        return _done(request, person, chat_id, answer)

    async def clock(request: Request) -> Response:
        form = await _form(request)
        person, chat_id = _where(world, form)
        step = CLOCK_STEPS.get(str(form.get("step", "")))
        if step is None:
            raise BadRequest("Move the clock by an hour, a day or a week.")
        await world.advance(step)
        return _done(request, person, chat_id, reload=True)

    async def fault(request: Request) -> Response:
        form = await _form(request)
        person, chat_id = _where(world, form)
        kind = str(form.get("kind", ""))
        if kind not in FAULTS:
            raise BadRequest("Choose one of the listed ways Telegram can fail.")
        FAULTS[kind][1](world)
        return _done(request, person, chat_id, f"Telegram will answer {FAULTS[kind][0]}.")

    async def people(request: Request) -> Response:
        form = await _form(request)
        language = str(form.get("language", ""))
        name = str(form.get("name", "")).strip()
        if language not in TELEGRAM_LANGUAGES or not name:
            raise BadRequest("Give the new person a name and a Telegram language.")
        person = world.add_person(name, language)
        return _done(request, person, person.id, reload=True)

    async def events(request: Request) -> Response:
        try:
            seen = int(request.query_params.get("v", "-1"))
        except ValueError:
            seen = -1

        async def stream() -> AsyncIterator[str]:
            nonlocal seen
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                try:
                    async with asyncio.timeout(KEEP_ALIVE_SECONDS):
                        seen = await world.telegram.wait_for_change(seen)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                yield f"data: {seen}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def file(request: Request) -> Response:
        upload = world.telegram.uploads.get(request.path_params["file_id"])
        if upload is None:
            return Response("No such file.", status_code=404, media_type="text/plain")
        disposition = "inline" if upload.mime.startswith("image/") else "attachment"
        return Response(
            upload.data,
            media_type=upload.mime,
            headers={"Content-Disposition": f'{disposition}; filename="{_ascii(upload.name)}"'},
        )

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        types = {"playground.js": "text/javascript", "playground.css": "text/css"}
        if name not in types:
            return Response(status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=types[name])

    async def home(_request: Request) -> Response:
        return RedirectResponse(PREFIX, status_code=307)

    async def bad_request(request: Request, exc: Exception) -> Response:
        if _wants_json(request):
            return JSONResponse({"notice": str(exc)}, status_code=400)
        return HTMLResponse(_error_page(str(exc)), status_code=400)

    return Starlette(
        routes=[
            Route("/", home),
            Route(PREFIX, page),
            Route(f"{PREFIX}/messages", messages),
            Route(f"{PREFIX}/send", send, methods=["POST"]),
            Route(f"{PREFIX}/press", press, methods=["POST"]),
            Route(f"{PREFIX}/clock", clock, methods=["POST"]),
            Route(f"{PREFIX}/people", people, methods=["POST"]),
            Route(f"{PREFIX}/fault", fault, methods=["POST"]),
            Route(f"{PREFIX}/events", events),
            Route(PREFIX + "/files/{file_id}", file),
            Route(PREFIX + "/static/{name}", static),
            *(health.routes if health is not None else []),
        ],
        exception_handlers={BadRequest: bad_request},
    )


MAX_FORM_BYTES = 64 * 1024


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form (what the page's forms and its script send)."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        raise BadRequest("Send the page's forms as they are (URL-encoded).")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadRequest("That is far more than a message can hold.")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise BadRequest("Send text as UTF-8.") from exc


def _where(world: Playground, params: Any) -> tuple[Person, int]:
    """Who the page speaks as, and in which chat; the secretariat's private chat by default."""
    try:
        person = world.people[int(params.get("who") or next(iter(world.people)))]
        chat_id = int(params.get("chat") or person.id)
    except (ValueError, KeyError) as exc:
        raise BadRequest("Pick someone from the list of people.") from exc
    if chat_id not in {c["id"] for c in world.chats_of(person)}:
        raise BadRequest("Pick a chat from the list: your private chat or a group's.")
    return person, chat_id


def _wants_json(request: Request) -> bool:
    return request.headers.get("x-playground") == "fetch"


def _done(
    request: Request, person: Person, chat_id: int, notice: str | None = None, reload: bool = False
) -> Response:
    if _wants_json(request):
        return JSONResponse({"notice": notice, "reload": reload, "url": _url(person, chat_id)})
    return RedirectResponse(_url(person, chat_id, notice), status_code=303)


def _url(person: Person, chat_id: int, notice: str | None = None) -> str:
    query = {"who": person.id, "chat": chat_id} | ({"notice": notice} if notice else {})
    return f"{PREFIX}?{urlencode(query)}"


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)


# --- the page ------------------------------------------------------------------------------------

e = html.escape


def render_page(world: Playground, person: Person, chat_id: int, notice: str | None) -> str:
    chats = world.chats_of(person)
    chat = next(c for c in chats if c["id"] == chat_id)
    people_options = "".join(
        f'<option value="{p.id}"{" selected" if p.id == person.id else ""}>'
        f"{e(p.name)} — {e(p.about)} ({e(p.language_code)})</option>"
        for p in world.people.values()
    )
    chat_options = "".join(
        f'<option value="{c["id"]}"{" selected" if c["id"] == chat_id else ""}>'
        f"{e(str(c['title']))}</option>"
        for c in chats
    )
    language_options = "".join(
        f'<option value="{code}">{e(_language_label(code))} ({code})</option>'
        for code in TELEGRAM_LANGUAGES
    )
    hidden = _hidden(person, chat_id)
    status = f'<p id="status" role="status" aria-live="polite">{e(notice or "")}</p>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(str(chat["title"]))} · B40 bot playground</title>
<link rel="stylesheet" href="{PREFIX}/static/playground.css">
</head>
<body data-who="{person.id}" data-chat="{chat_id}" data-version="{world.telegram.version}">
<header>
  <p class="brand">B40 bot playground</p>
  {render_clock(world, hidden)}
</header>
<nav aria-label="Who and where">
  <form method="get" action="{PREFIX}" id="where">
    <label>You are <select name="who" id="who">{people_options}</select></label>
    <label>Chat <select name="chat" id="chat">{chat_options}</select></label>
    <button type="submit">Go</button>
  </form>
  <details>
    <summary>Someone new</summary>
    <form method="post" action="{PREFIX}/people" data-async>
      <label>Name <input name="name" required maxlength="100" autocomplete="off"></label>
      <label>Telegram language <select name="language">{language_options}</select></label>
      <button type="submit">Be this person</button>
    </form>
  </details>
</nav>
<main>
  <h1>{e(str(chat["title"]))}</h1>
  {render_messages(world, person, chat_id)}
  {status}
  <form method="post" action="{PREFIX}/send" id="composer" data-async>
    {hidden}
    <label for="text" class="visually-hidden">Message</label>
    <input id="text" name="text" autocomplete="off" maxlength="{MAX_TEXT}"
      placeholder="Message or /command" autofocus>
    <button type="submit">Send</button>
  </form>
  {render_menu(world, person, chat)}
  <details class="faults">
    <summary>Make Telegram fail</summary>
    <form method="post" action="{PREFIX}/fault" data-async>
      {hidden}
      <ul>{
        "".join(
            f'<li><button type="submit" name="kind" value="{kind}">{kind}</button> '
            f"<span>answer {e(said)}</span></li>"
            for kind, (said, _how) in FAULTS.items()
        )
    }</ul>
    </form>
  </details>
</main>
<script src="{PREFIX}/static/playground.js" defer></script>
</body>
</html>"""


def render_clock(world: Playground, hidden: str) -> str:
    now = world.clock()
    zone = world.settings.timezone
    local = now.astimezone(ZoneInfo(zone))
    moved = world.clock.offset
    ahead = f" (moved {_duration(moved)} ahead)" if moved else ""
    steps = "".join(
        f'<button type="submit" name="step" value="{step}">+1 {step}</button>'
        for step in CLOCK_STEPS
    )
    return f"""<form method="post" action="{PREFIX}/clock" class="clock" data-async>
    {hidden}
    <p>The bot's clock: <time datetime="{now.isoformat(timespec="seconds")}">
      {now:%a %d %b %Y, %H:%M} UTC · {local:%H:%M} {e(zone)}</time>{e(ahead)}</p>
    <p class="steps"><span id="move-clock">Move it forward:</span>
      <span role="group" aria-labelledby="move-clock">{steps}</span></p>
  </form>"""


def render_messages(world: Playground, person: Person, chat_id: int) -> str:
    shown = world.telegram.history.get(chat_id, [])
    items = "".join(_render_message(message, person, chat_id) for message in shown)
    if not items:
        items = '<li class="empty">No messages yet. Try /start or /help.</li>'
    return (
        f'<ol id="messages" aria-label="Messages" data-version="{world.telegram.version}">'
        f"{items}</ol>"
    )


def _render_message(message: dict[str, Any], person: Person, chat_id: int) -> str:
    sender = message.get("from") or {}
    mine = sender.get("id") == person.id
    who = "bot" if sender.get("is_bot") else ("me" if mine else "other")
    name = "You" if mine else f"{sender.get('first_name', '')} {sender.get('last_name', '')}"
    body = ""
    if "text" in message:
        text = str(message["text"])
        body = telegram_html(text) if message.get("parse_mode") == "HTML" else linkify(text)
    if "document" in message:
        document = message["document"]
        body += (
            f'<p class="file"><a href="{PREFIX}/files/{e(document["file_id"])}">'
            f"{e(document.get('file_name', 'file'))}</a> ({document.get('file_size', 0)} bytes)</p>"
        )
    if "photo" in message:
        photo = message["photo"][-1]
        body += (
            f'<p><img src="{PREFIX}/files/{e(photo["file_id"])}" alt="A picture the bot sent"></p>'
        )
    if message.get("caption"):
        body += f'<p class="caption">{e(str(message["caption"]))}</p>'
    edited = ' <span class="edited">edited</span>' if message.get("edit_date") else ""
    keyboard = _render_keyboard(message, person, chat_id)
    return (
        f'<li class="message {who}" id="m{message["message_id"]}">'
        f'<p class="from">{e(name.strip())}</p>'
        f'<div class="text">{body}</div>{keyboard}'
        f'<p class="meta"><time datetime="{message.get("date", 0)}">'
        f"{_clock_time(message)}</time>{edited}</p></li>"
    )


def _render_keyboard(message: dict[str, Any], person: Person, chat_id: int) -> str:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    if not rows:
        return ""
    rendered = []
    for row in rows:
        buttons = []
        for button in row:
            label = e(str(button.get("text", "")))
            if "url" in button and str(button["url"]).startswith(("https://", "http://")):
                buttons.append(
                    f'<a class="button" href="{e(button["url"])}" rel="noopener noreferrer" '
                    f'target="_blank">{label}</a>'
                )
            elif "callback_data" in button:
                buttons.append(
                    f'<button type="submit" name="data" value="{e(button["callback_data"])}">'
                    f"{label}</button>"
                )
        rendered.append(f'<div class="row">{"".join(buttons)}</div>')
    return (
        f'<form class="keyboard" method="post" action="{PREFIX}/press" data-async>'
        f"{_hidden(person, chat_id)}"
        f'<input type="hidden" name="message_id" value="{message["message_id"]}">'
        f"{''.join(rendered)}</form>"
    )


def render_menu(world: Playground, person: Person, chat: dict[str, Any]) -> str:
    private = chat["type"] == "private"
    commands = world.telegram.menu(person.language_code, "private" if private else "group")
    if not commands:
        return ""
    suffix = "" if private else f"@{BOT_USERNAME}"
    items = "".join(
        f'<li><button type="submit" name="text" value="/{e(c["command"])}{suffix}">'
        f"/{e(c['command'])}</button> <span>{e(c['description'])}</span></li>"
        for c in commands
    )
    return f"""<details class="menu">
    <summary>Menu</summary>
    <form method="post" action="{PREFIX}/send" data-async>
      {_hidden(person, chat["id"])}
      <ul>{items}</ul>
    </form>
  </details>"""


def _hidden(person: Person, chat_id: int) -> str:
    return (
        f'<input type="hidden" name="who" value="{person.id}">'
        f'<input type="hidden" name="chat" value="{chat_id}">'
    )


def _clock_time(message: dict[str, Any]) -> str:
    return datetime.fromtimestamp(int(message.get("date", 0)), UTC).strftime("%d %b %H:%M UTC")


def _duration(offset: timedelta) -> str:
    days, seconds = offset.days, offset.seconds
    hours = seconds // 3600
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
    return " ".join(p for p in parts if p) or "0 h"


def _language_label(code: str) -> str:
    supported = normalize_language(code)
    if supported is None or supported not in SUPPORTED_LANGUAGES:
        return "Deutsch, which the bot does not speak" if code == "de" else code
    return language_name(supported)


def _error_page(message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Not possible · B40 bot playground</title>
<link rel="stylesheet" href="{PREFIX}/static/playground.css"></head>
<body><main><h1>That did not work</h1><p>{e(message)}</p>
<p><a href="{PREFIX}">Back to the playground</a></p></main></body></html>"""


# --- Telegram's HTML, shown safely -------------------------------------------------------------

# Telegram's tags and what the page shows for them; anything else is shown as text.
_TAGS = {
    "b": "strong", "strong": "strong", "i": "em", "em": "em", "u": "u", "ins": "u",
    "s": "s", "strike": "s", "del": "s", "code": "code", "pre": "pre",
    "blockquote": "blockquote", "tg-spoiler": "span", "span": "span", "a": "a",
}  # fmt: skip


class _TelegramHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        shown = _TAGS.get(tag)
        if shown is None:
            return
        attributes = ""
        if tag in ("tg-spoiler", "span"):
            attributes = ' class="spoiler"'
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            if href.startswith(("https://", "http://", "mailto:")):
                attributes = f' href="{e(href)}" rel="noopener noreferrer" target="_blank"'
        self.out.append(f"<{shown}{attributes}>")
        self.open.append(shown)

    def handle_endtag(self, tag: str) -> None:
        shown = _TAGS.get(tag)
        if shown is not None and shown in self.open:
            while self.open:
                closing = self.open.pop()
                self.out.append(f"</{closing}>")
                if closing == shown:
                    break

    def handle_data(self, data: str) -> None:
        # Telegram's clients make web addresses in text clickable; so does the page
        # (not inside a link or code, where they stay text).
        if {"a", "code", "pre"} & set(self.open):
            self.out.append(e(data, quote=False))
        else:
            self.out.append(linkify(data))


_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


def linkify(text: str) -> str:
    """Plain text as HTML, its web addresses as links."""
    out, last = [], 0
    for found in _URL.finditer(text):
        url = found.group()
        out.append(e(text[last : found.start()], quote=False))
        out.append(f'<a href="{e(url)}" rel="noopener noreferrer" target="_blank">{e(url)}</a>')
        last = found.end()
    out.append(e(text[last:], quote=False))
    return "".join(out)


def telegram_html(text: str) -> str:
    """A message in Telegram's HTML as the page shows it: only Telegram's formatting,
    links only to the web, everything else as text."""
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    return "".join(parser.out) + "".join(f"</{tag}>" for tag in reversed(parser.open))
