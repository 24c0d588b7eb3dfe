"""Wall clocks and instants in IANA zones: the conversions the session planner rests on.

Every instant that leaves this module is an aware datetime; ``to_utc`` returns UTC.
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from functools import cache
from importlib import resources

from scheduler.errors import NonexistentLocalTime, UnknownZone

# Zone rules from the pinned tzdata package, not the host (see storage/__init__.py); importing
# scheduler.errors already did this through storage, but this module must not depend on that.
zoneinfo.reset_tzpath(to=[])


@cache
def zone_info(name: str) -> zoneinfo.ZoneInfo:
    """The ZoneInfo for an exact IANA name; raises ``UnknownZone`` with a suggestion."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # ValueError: names such as "../x" or "" that ZoneInfo refuses to look up at all.
        raise UnknownZone(zone=name, suggestion=_suggest(name)) from None


def to_utc(day: date, wall: time, *, zone: str) -> datetime:
    """The UTC instant at which clocks in ``zone`` show ``wall`` on ``day``.

    * A wall time that never happens (the hour skipped when clocks spring forward, e.g.
      2026-03-29 03:30 in Europe/Athens) raises ``NonexistentLocalTime``.
    * A wall time that happens twice (the hour repeated when clocks fall back, e.g.
      2026-10-25 03:30 in Europe/Athens) means its FIRST occurrence, still on summer time
      (``fold=0``): 00:30 UTC, not 01:30. ``wall.fold`` is ignored, so the rule holds
      whatever the caller's time object carries.
    """
    if wall.tzinfo is not None:
        raise ValueError("wall must be a naive time; the zone is given separately")
    tz = zone_info(zone)
    local = datetime.combine(day, wall.replace(fold=0), tzinfo=tz)
    instant = local.astimezone(UTC)
    # zoneinfo maps a gap time to some instant without complaint; only the way back shows
    # that the clocks never read this wall time.
    if instant.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise NonexistentLocalTime(date=day, time=wall.replace(fold=0), zone=zone)
    return instant


def check_zone(name: str) -> str:
    """The IANA zone ``name`` spells, in its canonical spelling ("europe/sofia" → "Europe/Sofia").

    Names are matched case-insensitively and kept as they are (Europe/Sarajevo stays
    Europe/Sarajevo, not the zone it links to). Anything else raises
    ``UnknownZone(zone=name, suggestion=...)`` with the closest real name, also found from
    the city part alone ("Sofia" → Europe/Sofia, "istanbul" → Europe/Istanbul), or None.
    """
    key = name.strip().replace(" ", "_").lower()
    found = _by_lower().get(key)
    if found is None:
        raise UnknownZone(zone=name, suggestion=_suggest(name))
    return found


def local_time_table(
    instant: datetime, places: Sequence[tuple[str, str]]
) -> list[tuple[datetime, list[str]]]:
    """Places grouped by the wall clock they show at ``instant``, west to east.

    ``places`` are ``(name, zone)`` pairs. Each group is the local aware datetime (in the
    zone of its first place) and the names showing it, in the order given; groups come by
    UTC offset, smallest first: 10:00 Belgrade, Zagreb · 11:00 Athens, Sofia · 12:00 İstanbul.
    """
    if instant.tzinfo is None:
        raise ValueError("instant must be aware")
    groups: dict[datetime, tuple[datetime, list[str]]] = {}
    for place, zone_name in places:
        local = instant.astimezone(zone_info(zone_name))
        # One instant: the same wall clock means the same offset, so the naive wall time
        # is the whole key.
        wall = local.replace(tzinfo=None)
        if wall in groups:
            groups[wall][1].append(place)
        else:
            groups[wall] = (local, [place])
    return [groups[wall] for wall in sorted(groups)]


@cache
def _by_lower() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@cache
def _primary_zones() -> frozenset[str]:
    """Zones with rules of their own in tzdata (not links such as Asia/Istanbul)."""
    try:
        text = resources.files("tzdata.zoneinfo").joinpath("tzdata.zi").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return frozenset()
    return frozenset(line.split()[1] for line in text.splitlines() if line.startswith("Z "))


def _suggest(name: str) -> str | None:
    typed = name.strip().replace(" ", "_").lower()
    if not typed:
        return None
    by_lower = _by_lower()
    tails: dict[str, list[str]] = {}
    for lower, real in by_lower.items():
        tails.setdefault(lower.rpartition("/")[2], []).append(real)
    typed_tail = typed.rpartition("/")[2]

    scores: dict[str, float] = {}
    for lower in difflib.get_close_matches(typed, by_lower, n=5, cutoff=0.6):
        real = by_lower[lower]
        scores[real] = max(scores.get(real, 0.0), _ratio(typed, lower))
    for tail in difflib.get_close_matches(typed_tail, tails, n=5, cutoff=0.6):
        for real in tails[tail]:
            scores[real] = max(scores.get(real, 0.0), _ratio(typed_tail, tail))
    if not scores:
        return None
    primary = _primary_zones()
    # Ties (Europe/Istanbul and its link Asia/Istanbul) go to the zone with rules of its own,
    # then to Europe, where the network is; then alphabetically, so the answer is stable.
    return max(
        scores,
        key=lambda real: (scores[real], real in primary, real.startswith("Europe/"), _neg(real)),
    )


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _neg(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)
