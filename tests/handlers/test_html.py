"""Long HTML is cut into parts Telegram accepts, and nothing but whitespace at a cut is lost
(finding 5: a tag or entity cut in two made Telegram refuse a part, which was lost)."""

from __future__ import annotations

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.html import split_html, truncate_html, units
from playground.emulator import html_problem


def visible(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", text))


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", visible(text))


def check(text: str, limit: int) -> list[str]:
    parts = split_html(text, limit)
    for part in parts:
        assert html_problem(part) is None, part
        assert units(part) <= limit, (units(part), part)
    assert squeezed("".join(parts)) == squeezed(text)
    return parts


def test_short_text_is_left_alone() -> None:
    text = "<b>Roster</b>\n• Sofia — 11:00"
    assert split_html(text, 4096) == [text]
    assert split_html("x" * 4096) == ["x" * 4096]


def test_a_cut_prefers_a_paragraph_then_a_line() -> None:
    text = "aaaa bbbb\ncccc\n\ndddd eeee"
    assert split_html(text, 16) == ["aaaa bbbb\ncccc", "dddd eeee"]
    assert split_html("aaaa bbbb\ncccc dddd", 12) == ["aaaa bbbb", "cccc dddd"]


def test_a_tag_open_at_the_cut_is_closed_and_opened_again() -> None:
    text = "<b>" + " ".join(["word"] * 30) + "</b>"
    parts = check(text, 50)
    assert len(parts) > 2
    assert all(p.startswith("<b>") and p.endswith("</b>") for p in parts)


def test_a_link_spanning_the_cut_keeps_its_address() -> None:
    link = '<a href="https://b40.example/?a=1&amp;b=2">' + "join the session " * 6 + "</a>"
    parts = check("Session: " + link, 60)
    assert all('href="https://b40.example/?a=1&amp;b=2"' in p for p in parts[1:])


def test_an_entity_is_never_cut() -> None:
    text = "x" * 9 + "&amp;" + "y" * 20
    parts = check(text, 12)
    assert "&amp;" in "".join(parts)
    assert all(not re.search(r"&[a-z]*$", p) for p in parts)


def test_emoji_count_twice_and_are_never_halved() -> None:
    text = "🏙️" * 30
    parts = check(text, 11)
    assert "".join(parts) == text


def test_one_word_longer_than_a_message_is_cut_between_characters() -> None:
    parts = check("z" * 5000, 4096)
    assert [len(p) for p in parts] == [4096, 904]


def test_truncate_keeps_one_valid_message_with_an_ellipsis() -> None:
    text = "<i>" + "long line\n" * 1000 + "</i>"
    cut = truncate_html(text)
    assert units(cut) <= 4096 and cut.endswith("</i>…") and html_problem(cut) is None
    assert truncate_html("<b>short</b>") == "<b>short</b>"


words = st.sampled_from(["Sofia", "İstanbul", "&amp;", "&lt;", "🏙️", "a", "Ljubljana", "x" * 12])
separators = st.sampled_from([" ", " ", "\n", "\n\n"])
tags = st.sampled_from(["b", "i", "u", "code"])


@st.composite
def telegram_html(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 12))):
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            tag = draw(tags)
            pieces.append(f"<{tag}>{draw(telegram_html(depth + 1))}</{tag}>")
        else:
            pieces.append(draw(words))
        pieces.append(draw(separators))
    return "".join(pieces).strip() or "x"


@settings(max_examples=300, deadline=None)
# The limit leaves room for the tags themselves (two levels deep: 21 units), as 4,096 does.
@given(text=telegram_html(), limit=st.integers(min_value=40, max_value=120))
def test_every_part_is_valid_and_short_and_nothing_is_lost(text: str, limit: int) -> None:
    parts = check(text, limit)
    if units(text) <= limit:
        assert parts == [text]
