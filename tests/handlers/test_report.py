"""The annual report through the real bot and from the command line: the figures against
what happened, three files people can open, and every refusal explained."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.cli import main
from playground.emulator import Call
from playground.updates import User, callback, group
from tests.conftest import (
    SECRETARY,
    BotHarness,
    Clock,
    replies,
    working_group,
)

CHAT = group(-1007820001, "B40 Climate")
COORDINATOR = User(id=82_100_001, first_name="Marko", language_code="en")  # Belgrade
ELENI = User(id=82_100_002, first_name="Eleni", language_code="en")  # Athens
DENIZ = User(id=82_100_003, first_name="Deniz", language_code="en")  # İstanbul
MEMBERS = ((COORDINATOR, "Belgrade"), (ELENI, "Athens"), (DENIZ, "İstanbul"))
DECEMBER = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def _a_year(harness: BotHarness, clock: Clock) -> None:
    """Two sessions held (February and May), one cancelled; answers; an agenda item with
    its recommendation; a closed poll; the 2026 term."""
    await harness.command("/language en", SECRETARY)
    await working_group(harness, CHAT, "climate", MEMBERS, coordinator=COORDINATOR)
    await harness.command("/presidency 2026 Thessaloniki", SECRETARY)
    cards = {}
    for number, when in ((1, "2026-02-10"), (2, "2026-05-12"), (3, "2026-06-16")):
        calls = await harness.command(
            f"/schedule {when} 10:00 Europe/Belgrade 90", COORDINATOR, CHAT
        )
        [card] = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
        cards[number] = card
    await harness.command("/cancel 3", COORDINATOR, CHAT)
    await _answer(harness, cards[1], ELENI, "rsvp:1:yes")
    await _answer(harness, cards[1], DENIZ, "rsvp:1:yes")
    await _answer(harness, cards[2], DENIZ, "rsvp:2:yes")
    await _answer(harness, cards[2], ELENI, "rsvp:2:no")
    await harness.command("/propose Heat <plans> & schools", DENIZ, CHAT)
    item_card = harness.telegram.history[CHAT.id][-1]
    await harness.send(callback("ag:1:acc", COORDINATOR, item_card, CHAT))
    calls = await harness.command("/poll Which theme next? | Heat | Floods", COORDINATOR, CHAT)
    [poll] = [c for c in calls if c.method == "sendMessage" and c.chat_id == CHAT.id]
    for who in (ELENI, DENIZ, COORDINATOR):
        await harness.press(poll.buttons()[0][1], who, on=poll, chat=CHAT)
    clock.now = datetime(2026, 2, 10, 11, 0, tzinfo=UTC)
    await harness.command("/outcome 1 Every city drafts a heat plan.", COORDINATOR, CHAT)
    await harness.command("/closepoll", COORDINATOR, CHAT)
    clock.now = DECEMBER


async def _answer(harness: BotHarness, card: Call, who: User, data: str) -> None:
    await harness.press(data, who, on=card, chat=CHAT)


def _uploads(calls: list[Call]) -> dict[str, bytes]:
    found = {}
    for call in calls:
        if call.method in ("sendDocument", "sendPhoto"):
            upload = call.params["document" if call.method == "sendDocument" else "photo"]
            found[upload.name] = upload.data
    return found


class _Checked(HTMLParser):
    """Parses the page and checks every tag it opens is closed (void tags aside)."""

    VOID = frozenset({"meta", "img", "br"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


async def test_the_report_of_a_year_in_three_files(harness: BotHarness, clock: Clock) -> None:
    await _a_year(harness, clock)
    calls = await harness.command("/report 2026", SECRETARY)
    files = _uploads(calls)
    assert sorted(files) == [
        "b40-attendance-2026.png",
        "b40-figures-2026.csv",
        "b40-report-2026.html",
    ]
    assert files["b40-attendance-2026.png"].startswith(b"\x89PNG\r\n\x1a\n")
    rows = list(csv.DictReader(io.StringIO(files["b40-figures-2026.csv"].decode("utf-8-sig"))))

    def value(**match: str) -> int:
        found = [r for r in rows if all(r[k] == v for k, v in match.items())]
        assert len(found) == 1, (match, [r for r in rows if r["section"] != "sessions"])
        [row] = found
        return int(row["value"])

    assert value(section="sessions", group="climate", measure="held") == 2
    assert value(section="sessions", group="climate", measure="cancelled") == 1
    # Athens came in February only, İstanbul to both, Belgrade never answered.
    assert value(section="attendance", city="Athens", quarter="", measure="attended") == 1
    assert value(section="attendance", city="İstanbul", quarter="", measure="attended") == 2
    assert value(section="attendance", city="İstanbul", quarter="1", measure="attended") == 1
    assert value(section="attendance", city="İstanbul", quarter="2", measure="attended") == 1
    assert value(section="attendance", city="Belgrade", quarter="", measure="expected") == 2
    assert value(section="attendance", city="Belgrade", quarter="", measure="attended") == 0
    assert value(section="agenda", measure="recommendation") == 1
    assert value(section="polls", group="Local Climate Action", measure="voted") == 3

    page = files["b40-report-2026.html"].decode("utf-8")
    checked = _Checked()
    checked.feed(page)
    assert checked.open == []
    text = "".join(checked.text)
    assert "Term presidency: Thessaloniki, 2026-01-01 – 2026-12-31." in text
    assert "Heat <plans> & schools" in text and "&lt;plans&gt; &amp; schools" in page
    assert "Every city drafts a heat plan." in text
    assert "Which theme next?" in text and "3 / 3" in text
    assert 'src="data:image/png;base64,' in page
    [caption] = [c.params.get("caption") for c in calls if c.method == "sendDocument"][:1]
    assert caption == "The B40 annual report 2026: the report, its figures and its chart."


@pytest.mark.parametrize(
    ("who", "text", "where", "expected"),
    [
        (ELENI, "/report 2026", None, "Only the term presidency or the secretariat can make"),
        (SECRETARY, "/report", None, "Give the year: /report &lt;year&gt;, e.g. /report 2027."),
        (SECRETARY, "/report 26", None, "Give the year"),
        (SECRETARY, "/report 1999", None, "Give the year"),
        (SECRETARY, "/report 2031", None, "There is nothing to report for 2031"),
        (SECRETARY, "/report 2026", CHAT, "Please send this command to me in a private chat."),
    ],
)
async def test_report_refusals_are_explained(
    harness: BotHarness, clock: Clock, who: User, text: str, where: object, expected: str
) -> None:
    await _a_year(harness, clock)
    chat = CHAT if where is not None else None
    calls = await harness.command(text, who, chat)
    said = replies(calls, chat.id if chat is not None else who.id)
    assert len(said) == 1 and said[0].startswith(expected), said
    assert not _uploads(calls)


async def test_the_same_report_from_the_command_line(
    harness: BotHarness, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _a_year(harness, clock)
    monkeypatch.setenv("B40_DATABASE_URL", harness.db.url)
    monkeypatch.delenv("B40_BOT_TOKEN", raising=False)
    out = tmp_path / "report"
    code = await asyncio.to_thread(
        main, ["report", "2026", "--out", str(out)], now=lambda: DECEMBER + timedelta(days=1)
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "b40-attendance-2026.png",
        "b40-figures-2026.csv",
        "b40-report-2026.html",
    ]
    assert "Thessaloniki" in (out / "b40-report-2026.html").read_text(encoding="utf-8")
    assert await asyncio.to_thread(main, ["report", "2031", "--out", str(out)]) == 1
