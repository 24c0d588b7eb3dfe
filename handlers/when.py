"""Dates and times as people type them, and as they read them: one table of local times.

Parsing is strict (``2026-03-30``, ``10:00``, ``10:00-11:30``) and every failure is a
typed error that names what was typed; the zone of a wall time is an IANA name,
matched without regard to case, with the closest real one suggested for a typo.
Showing a time is always the same table: the member cities grouped by the wall clock
they read, west to east, with the weekday and date in the reader's language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from babel.dates import format_date, format_interval, format_skeleton

from handlers.context import esc, esc_line
from locales import locale
from scheduler.errors import InvalidDate, InvalidTime, InvalidWeekdays, SessionEndsBeforeStart
from scheduler.zones import check_zone, to_utc, zone_info

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")


def parse_date(text: str) -> date:
    """``YYYY-MM-DD``, a day that exists (``2026-02-30`` does not)."""
    if not _DATE.fullmatch(text):
        raise InvalidDate(text=text)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidDate(text=text) from None


def parse_time(text: str) -> time:
    """``HH:MM`` on a 24-hour clock, 00:00 to 23:59."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise InvalidTime(text=text)
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise InvalidTime(text=text)
    return time(hour, minute)


def parse_span(text: str) -> tuple[time, time | None]:
    """``10:00`` or ``10:00-11:30`` (an en dash works too): a start and maybe an end."""
    start, sep, end = text.replace("–", "-").partition("-")
    return parse_time(start), parse_time(end) if sep else None


def looks_like_time(text: str) -> bool:
    return bool(re.fullmatch(r"[\d:]+([-–][\d:]+)?", text)) and ":" in text


@dataclass(frozen=True)
class When:
    """A start instant (UTC) and, when the text gave an end, the length up to it."""

    starts_at: datetime
    length: timedelta | None
    zone: str


def parse_when(day_text: str, span_text: str, zone_text: str | None, *, default_zone: str) -> When:
    """A day, a wall time (or span) and an optional zone, to an instant.

    A wall time that does not exist in the zone (the hour skipped in spring) is refused;
    one that happens twice (the hour repeated in autumn) is its first occurrence. An end
    that is not after the start is refused, as an end on the next day is not meant.
    """
    day = parse_date(day_text)
    start, end = parse_span(span_text)
    zone = check_zone(zone_text) if zone_text is not None else default_zone
    starts_at = to_utc(day, start, zone=zone)
    if end is None:
        return When(starts_at, None, zone)
    ends_at = to_utc(day, end, zone=zone)
    if ends_at <= starts_at:
        raise SessionEndsBeforeStart(start=start.strftime("%H:%M"), end=end.strftime("%H:%M"))
    return When(starts_at, ends_at - starts_at, zone)


def time_table(
    starts_at: datetime,
    ends_at: datetime | None,
    places: Sequence[tuple[str, str]],
) -> str:
    """The weekday and date, then ``10:00–11:30 Belgrade, Zagreb · 11:00–12:30 Athens``.

    ``places`` are (name, IANA zone); with none (a group without cities yet), UTC.
    When the places do not all share a date (a session near midnight somewhere), each
    group carries its own date.
    """
    if not places:
        places = [("UTC", "UTC")]
    # Places read together when their clocks agree at the start and, for a span, at the
    # end too: a session across a switch night ends at different offsets for zones that
    # started it on the same clock (İstanbul and Athens on 25 October 2026).
    rows: dict[tuple[datetime, datetime | None], tuple[datetime, datetime | None, list[str]]] = {}
    for name, zone in places:
        tz = zone_info(zone)
        start = starts_at.astimezone(tz)
        end = ends_at.astimezone(tz) if ends_at is not None else None
        key = (start.replace(tzinfo=None), end.replace(tzinfo=None) if end else None)
        rows.setdefault(key, (start, end, []))[2].append(name)
    ordered = [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1] or k[0]))]
    dates = {start.date() for start, _end, _names in ordered}
    loc = locale()
    parts = []
    for start, end, names in ordered:
        # A 24-hour clock in every language (Greek and Albanian default to 12 hours):
        # across zones, "10:00" must never be read as the evening.
        naive = start.replace(tzinfo=None)
        if end is None:
            clock = format_skeleton("Hm", naive, locale=loc)
        else:
            clock = format_interval(naive.time(), end.replace(tzinfo=None).time(), "Hm", locale=loc)
        if len(dates) > 1:
            clock = format_date(start.date(), format="medium", locale=loc) + " " + clock
        parts.append(f"{clock} {', '.join(esc_line(name) for name in names)}")
    table = " · ".join(parts)
    if len(dates) > 1:
        return table
    heading = format_date(ordered[0][0].date(), format="full", locale=loc)
    return f"{esc(heading)}\n{table}"


_ENGLISH_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _day_names() -> dict[str, int]:
    """Weekday names people may type: ISO numbers, English, and the reader's language."""
    names: dict[str, int] = {str(day + 1): day for day in range(7)}
    for day, short in enumerate(_ENGLISH_DAYS):
        names[short] = day
    loc = locale()
    for context in ("format", "stand-alone"):
        for width in ("abbreviated", "wide", "short"):
            for day, name in loc.days[context][width].items():
                names.setdefault(_fold(name), day)
    english = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4}
    names.update({**english, "saturday": 5, "sunday": 6})
    return names


def _fold(name: str) -> str:
    return name.casefold().strip().rstrip(".")


def parse_weekdays(text: str) -> frozenset[int]:
    """``Mon-Fri``, ``Mon,Wed,Fri``, ``1-5`` (ISO, Monday = 1), or names in the reader's
    language; a range wraps past Sunday (``Sun-Thu``). Monday = 0 in what is returned."""
    names = _day_names()
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, sep, last = part.replace("–", "-").partition("-")
        try:
            start = names[_fold(first)]
            end = names[_fold(last)] if sep else start
        except KeyError:
            raise InvalidWeekdays(text=text) from None
        day = start
        days.add(day)
        while day != end:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def weekdays_text(days: frozenset[int]) -> str:
    """Mon–Fri, or Mon, Wed, Fri: abbreviated names in the reader's language."""
    short = locale().days["format"]["abbreviated"]
    ordered = sorted(days)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [
        f"{short[run[0]]}–{short[run[-1]]}" if len(run) > 2 else ", ".join(short[d] for d in run)
        for run in runs
    ]
    return esc(", ".join(parts))
