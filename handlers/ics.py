"""Sessions as iCalendar (RFC 5545): the subscription feeds and the one-off .ics files.

Times are written as UTC instants (``DTSTART:20270114T090000Z``), never with a VTIMEZONE:
a UTC instant is read the same by every parser and every calendar app, which shows it in
the reader's own zone, while hand-made or library-made VTIMEZONE blocks are read
differently by different parsers (the tests check icalendar, vobject,
recurring-ical-events and Mozilla's ical.js against the database). The member cities'
local times are in the description, in the feed's language.

Each session is one event with a stable UID; SEQUENCE is the session's version and
LAST-MODIFIED its last change, so a moved session updates in place and a cancelled one
stays, as STATUS:CANCELLED. The text is escaped and folded by icalendar (at 75 octets,
never inside a UTF-8 character).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vDuration

from handlers.html import plain
from handlers.when import time_table
from locales import _, ngettext
from storage.calendars import Shown
from storage.models import AgendaOutcome, City, SessionStatus, Summit

PRODID = "-//B40 Balkan Cities Network//Working-group bot//EN"
FEED_PATH = "/calendar/{token}.ics"  # served by bot.feeds
REFRESH = timedelta(hours=1)
UID_DOMAIN = "b40-bot"


def feed_url(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + FEED_PATH.format(token=token)


def webcal_url(url: str) -> str:
    """The same address for calendar apps that subscribe on a ``webcal://`` link."""
    return "webcal://" + url.split("://", 1)[1]


def uid(session_id: int) -> str:
    return f"b40-session-{session_id}@{UID_DOMAIN}"


def summary(shown: Shown) -> str:
    meeting, group = shown.meeting, shown.group
    if meeting.title:
        return f"{group.name}: {meeting.title}"
    return _("{group}: session #{number}").format(group=group.name, number=meeting.id)


def description(shown: Shown) -> str:
    meeting = shown.meeting
    lines = [plain(time_table(meeting.starts_at, meeting.ends_at, shown.places))]
    if meeting.status == SessionStatus.CANCELLED.value:
        lines.append(_("This session is cancelled."))
    else:
        lines.append(_("Join: {url}").format(url=meeting.join_url))
    if shown.answer:
        words = {
            "yes": _("You are coming."),
            "maybe": _("You may come."),
            "no": _("You are not coming."),
        }
        lines.append(words.get(shown.answer, ""))
    if shown.agenda:
        lines.append("")
        lines.append(_("Agenda:"))
        for index, item in enumerate(shown.agenda, start=1):
            line = f"{index}. {item['title']} ({item['city']})"
            if item.get("minutes"):
                minutes = int(str(item["minutes"]))
                line += " · " + ngettext("{n} min", "{n} min", minutes).format(n=minutes)
            lines.append(line)
            if item.get("outcome") == AgendaOutcome.RECOMMENDATION.value:
                lines.append("   → " + str(item["recommendation"]))
    return "\n".join(lines)


def event(shown: Shown, *, stamp: datetime | None = None) -> Event:
    meeting = shown.meeting
    # SEQUENCE is the session's version (its time or status changed); LAST-MODIFIED also
    # moves when only what the event says changed (the agenda, the person's answer).
    changed = (shown.changed or meeting.updated_at).astimezone(UTC)
    found = Event()
    found.add("uid", uid(meeting.id or 0))
    found.add("dtstamp", (stamp or changed).astimezone(UTC))
    found.add("created", meeting.created_at.astimezone(UTC))
    found.add("last-modified", changed)
    found.add("sequence", meeting.sequence)
    found.add("dtstart", meeting.starts_at.astimezone(UTC))
    found.add("dtend", meeting.ends_at.astimezone(UTC))
    found.add("summary", summary(shown))
    found.add("description", description(shown))
    cancelled = meeting.status == SessionStatus.CANCELLED.value
    found.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if not cancelled:
        found.add("location", meeting.join_url)
        found.add("url", meeting.join_url)
    found.add("transp", "OPAQUE")
    return found


def summit_event(summit: Summit, city: City) -> Event:
    """A whole-day event (``VALUE=DATE``; the end is the day after the last)."""
    found = Event()
    found.add("uid", f"b40-summit-{summit.year}@{UID_DOMAIN}")
    found.add("dtstamp", summit.updated_at.astimezone(UTC))
    found.add("last-modified", summit.updated_at.astimezone(UTC))
    found.add("sequence", summit.sequence)
    found.add("dtstart", summit.starts_on)
    found.add("dtend", summit.ends_on + timedelta(days=1))
    found.add("summary", _("B40 Summit {year} · {city}").format(year=summit.year, city=city.name))
    found.add("location", city.name)
    found.add("status", "CONFIRMED")
    found.add("transp", "OPAQUE")
    return found


def calendar(name: str, events: Sequence[Event], *, method: str = "PUBLISH") -> bytes:
    feed = Calendar()
    feed.add("prodid", PRODID)
    feed.add("version", "2.0")
    feed.add("calscale", "GREGORIAN")
    feed.add("method", method)
    feed.add("name", name)
    feed.add("x-wr-calname", name)
    feed.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    feed.add("x-published-ttl", vDuration(REFRESH))
    for found in events:
        feed.add_component(found)
    written: bytes = feed.to_ical()
    return written


def feed_name(kind: str, group_name: str | None) -> str:
    if kind == "group" and group_name:
        return _("B40 · {group}").format(group=group_name)
    if kind == "person":
        return _("B40 · my sessions")
    return _("B40 · all working groups")


def one_off(shown: Shown, *, now: datetime) -> bytes:
    """A file of just this session, for a calendar app to import."""
    return calendar(summary(shown), [event(shown, stamp=now)])
