"""The playground's page over HTTP (in-process ASGI): the forms work without the script,
bad requests get a clear page, and what the bot and people wrote is shown safely."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from telegram import InputFile

from playground.web import create_app, linkify, telegram_html
from playground.world import ATHENS, GROUP_CHATS, SARAJEVO, SECRETARY, Playground
from storage.db import Database
from tests.playground.test_world import make_world, seeded_session_start

CLIMATE = GROUP_CHATS[0][1].id


@pytest.fixture
async def page(db: Database, tmp_path: Path) -> AsyncIterator[tuple[Playground, httpx.AsyncClient]]:
    async with make_world(db, tmp_path).running() as world:
        transport = httpx.ASGITransport(app=create_app(world))
        async with httpx.AsyncClient(transport=transport, base_url="http://playground") as client:
            yield world, client


class _Checker(HTMLParser):
    """Collects the page's text and fails on tags a page of ours never writes."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    return checker


async def test_without_the_script_a_command_is_answered_on_the_next_page(
    page: tuple[Playground, httpx.AsyncClient],
) -> None:
    _world, client = page
    sent = await client.post(
        "/playground/send", data={"who": SARAJEVO.id, "chat": CLIMATE, "text": "/next"}
    )
    assert sent.status_code == 303
    shown = await client.get(sent.headers["location"])
    assert shown.status_code == 200
    text = "".join(parse(shown.text).text)
    assert "Quarterly session" in text
    # The card's RSVP buttons are forms that press them.
    assert re.search(r'name="data" value="rsvp:\d+:yes"', shown.text)


async def test_a_button_pressed_through_the_page(
    page: tuple[Playground, httpx.AsyncClient],
) -> None:
    world, client = page
    await client.post("/playground/send", data={"who": ATHENS.id, "chat": CLIMATE, "text": "/next"})
    card = world.telegram.history[CLIMATE][-1]
    data = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    pressed = await client.post(
        "/playground/press",
        data={"who": ATHENS.id, "chat": CLIMATE, "message_id": card["message_id"], "data": data},
        headers={"X-Playground": "fetch"},
    )
    assert pressed.status_code == 200
    assert pressed.json()["notice"]  # the toast Telegram would show
    messages = await client.get("/playground/messages", params={"who": ATHENS.id, "chat": CLIMATE})
    assert "Athens" in "".join(parse(messages.text).text)
    assert "edited" in messages.text


@pytest.mark.parametrize(
    ("path", "form", "says"),
    [
        ("/playground/send", {"who": "nobody", "chat": "1", "text": "/help"}, "Pick someone"),
        ("/playground/send", {"who": SARAJEVO.id, "chat": "-42", "text": "/help"}, "Pick a chat"),
        ("/playground/send", {"who": SARAJEVO.id, "chat": ATHENS.id, "text": "x"}, "Pick a chat"),
        ("/playground/send", {"who": SARAJEVO.id, "text": "x" * 4097}, "4096 characters"),
        ("/playground/press", {"who": SARAJEVO.id, "message_id": "1", "data": "x"}, "button"),
        ("/playground/press", {"who": SARAJEVO.id, "message_id": "abc", "data": "x"}, "button"),
        ("/playground/clock", {"who": SARAJEVO.id, "step": "year"}, "an hour, a day or a week"),
        ("/playground/people", {"name": "", "language": "tr"}, "a name and a Telegram"),
        ("/playground/people", {"name": "Eve", "language": "xx"}, "a name and a Telegram"),
    ],
)
async def test_bad_requests_get_a_page_that_says_what_to_do(
    page: tuple[Playground, httpx.AsyncClient], path: str, form: dict[str, object], says: str
) -> None:
    world, client = page
    before = world.telegram.version
    answer = await client.post(path, data=form)
    assert answer.status_code == 400
    assert says in answer.text and "Back to the playground" in answer.text
    as_json = await client.post(path, data=form, headers={"X-Playground": "fetch"})
    assert as_json.status_code == 400 and says in as_json.json()["notice"]
    assert world.telegram.version == before  # nothing reached the bot


async def test_a_form_sent_another_way_is_refused(
    page: tuple[Playground, httpx.AsyncClient],
) -> None:
    _world, client = page
    answer = await client.post("/playground/send", json={"who": SARAJEVO.id, "text": "/help"})
    assert answer.status_code == 400 and "URL-encoded" in answer.text
    huge = await client.post(
        "/playground/send",
        content=b"text=" + b"x" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 400


async def test_what_people_type_is_shown_as_text(
    page: tuple[Playground, httpx.AsyncClient],
) -> None:
    _world, client = page
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)> & "quotes"'
    await client.post("/playground/send", data={"who": SARAJEVO.id, "chat": CLIMATE, "text": evil})
    shown = await client.get("/playground", params={"who": SARAJEVO.id, "chat": CLIMATE})
    checker = parse(shown.text)
    assert "img" not in checker.tags
    assert checker.tags.count("script") == 1  # the page's own
    assert evil in "".join(checker.text)


def test_plain_text_is_escaped_and_its_addresses_linked() -> None:
    assert linkify("<b> & https://meet.jit.si/a") == (
        '&lt;b&gt; &amp; <a href="https://meet.jit.si/a" rel="noopener noreferrer" '
        'target="_blank">https://meet.jit.si/a</a>'
    )


def test_telegram_html_keeps_formatting_and_drops_the_rest() -> None:
    assert telegram_html("<b>Bold</b> &amp; <i>it</i>") == "<strong>Bold</strong> &amp; <em>it</em>"
    assert telegram_html('<a href="javascript:alert(1)">x</a>') == "<a>x</a>"
    assert (
        telegram_html('<a href="https://meet.jit.si/B40">join</a>')
        == '<a href="https://meet.jit.si/B40" rel="noopener noreferrer" target="_blank">join</a>'
    )
    assert telegram_html("<tg-spoiler>s</tg-spoiler>") == '<span class="spoiler">s</span>'
    assert telegram_html("<script>x</script>") == "x"
    assert telegram_html("<b>open") == "<strong>open</strong>"
    assert telegram_html("a &lt;b&gt; c") == "a &lt;b&gt; c"
    # Web addresses in text are links, as in Telegram's clients; not inside code.
    assert telegram_html("Join: https://meet.jit.si/B40-x.") == (
        'Join: <a href="https://meet.jit.si/B40-x" rel="noopener noreferrer" '
        'target="_blank">https://meet.jit.si/B40-x</a>.'
    )
    assert telegram_html("<code>https://x.org</code>") == "<code>https://x.org</code>"
    # An address ends at a quote or an angle bracket; what it holds is escaped.
    assert telegram_html("https://x.org/?a=1&amp;b=2&quot;onmouseover=x") == (
        '<a href="https://x.org/?a=1&amp;b=2" rel="noopener noreferrer" target="_blank">'
        'https://x.org/?a=1&amp;b=2</a>"onmouseover=x'
    )


async def test_the_menu_is_the_one_the_bot_published_in_the_persons_language(
    page: tuple[Playground, httpx.AsyncClient],
) -> None:
    _world, client = page
    turkish = await client.get("/playground", params={"who": SECRETARY.id})
    greek = await client.get("/playground", params={"who": ATHENS.id, "chat": CLIMATE})
    assert 'value="/roster"' in turkish.text and "çalışma grubu" in turkish.text
    # In a group the menu sends /command@bot, as Telegram's clients do.
    assert 'value="/roster@' in greek.text and "ομάδα" in greek.text


async def test_documents_and_pictures_the_bot_sends_can_be_opened(
    page: tuple[Playground, httpx.AsyncClient],
) -> None:
    world, client = page
    bot = world.application.bot
    await bot.send_document(
        SECRETARY.id, InputFile(b"BEGIN:VCALENDAR\r\n", filename="session.ics"), caption="ics"
    )
    await bot.send_photo(SECRETARY.id, InputFile(b"\x89PNG\r\n", filename="chart.png"))
    shown = await client.get("/playground/messages", params={"who": SECRETARY.id})
    links = re.findall(r'(?:href|src)="(/playground/files/[^"]+)"', shown.text)
    assert len(links) == 2 and "session.ics" in shown.text
    document = await client.get(links[0])
    assert document.content == b"BEGIN:VCALENDAR\r\n"
    assert document.headers["content-disposition"] == 'attachment; filename="session.ics"'
    assert (await client.get("/playground/files/not-a-file")).status_code == 404


async def test_the_page_hears_of_every_change(page: tuple[Playground, httpx.AsyncClient]) -> None:
    world, _client = page
    seen = world.telegram.version
    waiting = asyncio.create_task(world.telegram.wait_for_change(seen))
    await asyncio.sleep(0)
    assert not waiting.done()
    await world.say(ATHENS, CLIMATE, "/help")
    assert await asyncio.wait_for(waiting, 5) > seen


async def test_moving_the_clock_from_the_page(page: tuple[Playground, httpx.AsyncClient]) -> None:
    world, client = page
    starts_at = await seeded_session_start(world)
    await world.advance(starts_at - timedelta(hours=25) - world.clock())
    offset = world.clock.offset
    moved = await client.post(
        "/playground/clock",
        data={"who": SARAJEVO.id, "chat": CLIMATE, "step": "day"},
        headers={"X-Playground": "fetch"},
    )
    assert moved.json()["reload"] is True
    assert world.clock.offset - offset == timedelta(days=1)
    shown = await client.get(moved.json()["url"])
    assert " ahead)" in shown.text  # the page says the clock was moved
    assert "Quarterly session" in "".join(parse(shown.text).text)  # the day-before reminder


async def test_telegram_can_be_made_to_fail_and_the_bot_copes(
    page: tuple[Playground, httpx.AsyncClient],
) -> None:
    """429 on the next message: the reply waits in the outbox and arrives after retry_after."""
    world, client = page
    chosen = await client.post(
        "/playground/fault",
        data={"who": ATHENS.id, "chat": CLIMATE, "kind": "429"},
        headers={"X-Playground": "fetch"},
    )
    assert "429" in chosen.json()["notice"]
    world.telegram.failures[-1].parameters = {"retry_after": 1}  # a shorter wait for the test
    await client.post("/playground/send", data={"who": ATHENS.id, "chat": CLIMATE, "text": "/help"})
    assert 429 in world.telegram.statuses
    assert [m.get("from", {}).get("is_bot") for m in world.telegram.history[CLIMATE]] == [False]
    await asyncio.sleep(1.2)
    await world.application.outbox.deliver_due()
    assert [m.get("from", {}).get("is_bot") for m in world.telegram.history[CLIMATE]] == [
        False,
        True,
    ]
    refused = await client.post("/playground/fault", data={"who": ATHENS.id, "kind": "teapot"})
    assert refused.status_code == 400 and "Choose one" in refused.text


class _Accessibility(HTMLParser):
    """What a screen reader needs from the page: every control named, one main heading."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.labels_for: set[str] = set()
        self.controls: list[tuple[str, dict[str, str | None]]] = []
        self.inside_label = 0
        self.button: list[str] | None = None
        self.counts: dict[str, int] = {}
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "html":
            self.lang = found.get("lang")
        if tag == "label":
            self.inside_label += 1
            if found.get("for"):
                self.labels_for.add(str(found["for"]))
        if (
            tag in ("input", "select", "textarea")
            and found.get("type") != "hidden"
            and not self.inside_label
        ):
            self.controls.append((tag, found))
        if tag == "button":
            self.button = []
        if tag == "img" and not found.get("alt"):
            self.problems.append("an image without alt text")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.inside_label -= 1
        if tag == "button" and self.button is not None:
            if not "".join(self.button).strip():
                self.problems.append("a button without a name")
            self.button = None

    def handle_data(self, data: str) -> None:
        if self.button is not None:
            self.button.append(data)

    def check(self) -> list[str]:
        for tag, attrs in self.controls:
            if attrs.get("id") not in self.labels_for and not attrs.get("aria-label"):
                self.problems.append(f"a {tag} without a label: {attrs}")
        if self.lang != "en":
            self.problems.append("no language on <html>")
        for landmark in ("header", "nav", "main"):
            if self.counts.get(landmark) != 1:
                self.problems.append(f"{self.counts.get(landmark, 0)} <{landmark}>")
        if self.counts.get("h1") != 1:
            self.problems.append(f"{self.counts.get('h1', 0)} <h1>")
        return self.problems


async def test_every_control_has_a_name_a_screen_reader_can_say(
    page: tuple[Playground, httpx.AsyncClient],
) -> None:
    world, client = page
    await world.say(SARAJEVO, CLIMATE, "/next")
    await world.application.bot.send_photo(CLIMATE, InputFile(b"\x89PNG", filename="c.png"))
    shown = await client.get("/playground", params={"who": SARAJEVO.id, "chat": CLIMATE})
    checker = _Accessibility()
    checker.feed(shown.text)
    assert checker.check() == []
    assert checker.counts.get("button", 0) > 10  # the RSVP buttons, the menu, the clock
    assert 'role="status"' in shown.text and 'aria-live="polite"' in shown.text
    assert 'name="viewport"' in shown.text
    # The check itself sees what is missing.
    broken = _Accessibility()
    broken.feed(
        '<html lang="en"><header></header><nav></nav><main><h1>x</h1>'
        '<input name="q"><button> </button><img src="x"></main></html>'
    )
    assert len(broken.check()) == 3
