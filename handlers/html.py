"""Cutting Telegram HTML into messages Telegram accepts.

Telegram refuses a message longer than 4,096 characters and HTML whose tags do not
balance; a part it refuses is lost. So a long text is cut at a paragraph break if it
can be, else at a line end, else at a space, and never inside a tag or an entity; a
tag open at the cut is closed at the end of the part and opened again, with its
attributes, at the start of the next. Lengths are counted in UTF-16 code units (as
Telegram counts, an emoji outside the basic plane is two) over the raw HTML, which is
never shorter than the text Telegram shows: a part that fits here fits there.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from telegram.constants import MessageLimit

_ATOM = re.compile(r"<[^<>]*>|&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);|[\s\S]")
_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)")

_TAGS = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """Telegram HTML as plain text: tags dropped, entities read (for a button's alert, a
    calendar's description)."""
    return html.unescape(_TAGS.sub("", text))


# Where a cut is best made: after a blank line, after a line end, after a space.
_PARAGRAPH, _LINE, _SPACE, _ANYWHERE = 3, 2, 1, 0


def units(text: str) -> int:
    """Length in UTF-16 code units, the way Telegram counts."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


@dataclass(frozen=True)
class _Open:
    name: str
    raw: str  # the opening tag as written, attributes included

    @property
    def close(self) -> str:
        return f"</{self.name}>"


def _closing(stack: tuple[_Open, ...]) -> str:
    return "".join(tag.close for tag in reversed(stack))


class UncleanCut(ValueError):
    """No cut between words and outside every formatting was found for a part."""


def split_html(
    text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH, *, strict: bool = False
) -> list[str]:
    """Valid Telegram HTML in, parts of at most ``limit`` units out, each valid alone.

    A cut outside every tag is preferred to one inside bold or a link. ``strict`` raises
    ``UncleanCut`` rather than cut inside a word or a formatting (a broadcast is refused)."""
    if units(text) <= limit:
        return [text]
    atoms = _ATOM.findall(text)
    parts: list[str] = []
    start = 0
    stack: tuple[_Open, ...] = ()
    while start < len(atoms):
        end, stack_at_end = _fill(atoms, start, stack, limit)
        if strict and end < len(atoms) and (stack_at_end or _quality(atoms, end) == _ANYWHERE):
            raise UncleanCut(end)
        body = "".join(atoms[start:end]).rstrip()
        part = "".join(tag.raw for tag in stack) + body + _closing(stack_at_end)
        if body:
            parts.append(part)
        start, stack = end, stack_at_end
        while start < len(atoms) and atoms[start].isspace():
            start += 1  # whitespace at the cut is the only thing dropped
    return parts


def _fill(
    atoms: list[str], start: int, stack: tuple[_Open, ...], limit: int
) -> tuple[int, tuple[_Open, ...]]:
    """How far one part reaches from ``start``, and the tags open where it ends."""
    used = units("".join(tag.raw for tag in stack))
    # (outside every tag, quality, index, stack)
    best: tuple[bool, int, int, tuple[_Open, ...]] | None = None
    index = start
    while index < len(atoms):
        atom = atoms[index]
        next_stack = _after(stack, atom)
        cost = units(atom)
        if used + cost + units(_closing(next_stack)) > limit and index > start:
            if best is not None:
                return best[2], best[3]
            return index, stack  # one word longer than a message: cut between characters
        used += cost
        stack = next_stack
        index += 1
        quality = _quality(atoms, index)
        if quality > _ANYWHERE and (best is None or (not stack, quality) >= best[:2]):
            best = (not stack, quality, index, stack)
    return index, stack


def _quality(atoms: list[str], index: int) -> int:
    """How good a cut right before ``atoms[index]`` is."""
    previous = atoms[index - 1]
    if previous == "\n":
        return _PARAGRAPH if index >= 2 and atoms[index - 2] == "\n" else _LINE
    if previous.isspace():
        return _SPACE
    return _ANYWHERE


def _after(stack: tuple[_Open, ...], atom: str) -> tuple[_Open, ...]:
    if not atom.startswith("<"):
        return stack
    match = _TAG.match(atom)
    if match is None:
        return stack
    closing, name = match.group(1), match.group(2).lower()
    if not closing:
        return (*stack, _Open(name, atom))
    if stack and stack[-1].name == name:
        return stack[:-1]
    return stack


def truncate_html(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> str:
    """One message's worth of ``text`` (for an edit, which cannot become two), with an
    ellipsis where something was cut; still valid HTML."""
    parts = split_html(text, limit - 1)
    if len(parts) == 1:
        return parts[0]
    return parts[0] + "…"
