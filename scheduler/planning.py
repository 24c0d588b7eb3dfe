"""When can a working group meet? Candidate session times across the members' zones.

The window is cut into a UTC grid of ``step`` slots (15 minutes: :00, :15, :30, :45).
Each city's availability is a Python int used as a bitset, bit ``i`` for slot ``i``:
a run of ones for its working hours on each working local day that is not a public
holiday of its country, minus the slots its existing sessions (``Busy``) touch.

* ``fits`` = starts where a whole session lies in ones: the mask ANDed with itself shifted
  by doubling spans (1, 2, 4, ... slots), so a 60-minute session costs three big-int ANDs.
* The number of cities inside at every start is kept bit-sliced: plane ``j`` holds bit
  ``j`` of each slot's count, and adding a city's mask is a ripple-carry over the planes.
  The same for the number of cities at the edge of their day and for their burden.
* Per reference-zone day, the best start falls out of the planes most significant first
  (keep the slots whose bit is the better one, when any slot has it), then the earliest.

Cities with the same zone, country and hours and no busy slots share one mask, added
with their number as its weight. Nothing loops over minutes: the loops are over cities,
over local days of each distinct calendar, and over the days of the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import cache

import holidays

from scheduler.errors import InvalidDuration, InvalidWindow, InvalidWorkingHours
from scheduler.zones import check_zone, zone_info

MAX_DURATION = timedelta(hours=8)
MAX_WINDOW_DAYS = 366
# A session starting in the first hour of a city's day, or ending in its last, is at its edge.
EDGE = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class WorkingHours:
    """A city's working day in local wall time; ``weekdays`` with Monday = 0."""

    start: time = time(9)
    end: time = time(17)
    weekdays: frozenset[int] = frozenset(range(5))

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working hours are local wall times, without tzinfo")
        if self.end <= self.start or not self.weekdays or not self.weekdays <= set(range(7)):
            raise InvalidWorkingHours(start=self.start, end=self.end, weekdays=self.weekdays)


@dataclass(frozen=True)
class PlanningCity:
    id: int
    name: str
    country: str  # ISO 3166 alpha-2, XK for Kosovo
    zone: str  # IANA
    hours: WorkingHours = WorkingHours()


@dataclass(frozen=True)
class Busy:
    """A session already fixed for ``city_ids`` (in any group), from ``start`` to ``end``."""

    city_ids: frozenset[int]
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("busy times must be aware")
        if self.end <= self.start:
            raise ValueError("a busy session must end after it starts")


class ReasonKind(StrEnum):
    OUTSIDE_HOURS = "outside_hours"
    NOT_WORKING_DAY = "not_working_day"
    HOLIDAY = "holiday"
    BUSY = "busy"


@dataclass(frozen=True)
class Reason:
    """Why a city is not inside a candidate; ``holiday`` names the day for ``HOLIDAY``."""

    kind: ReasonKind
    holiday: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A proposed session: who is inside, why the others are not, who is at an edge."""

    start: datetime
    end: datetime
    inside: frozenset[int]
    reasons: dict[int, list[Reason]] = field(hash=False)
    edge: frozenset[int]  # inside, but starting in their first hour or ending in their last


def plan(
    cities: Sequence[PlanningCity],
    *,
    start: date,
    end: date,
    duration: timedelta,
    busy: Iterable[Busy] = (),
    now: datetime,
    reference_zone: str = "Europe/Istanbul",
    burden: Mapping[int, int] | None = None,
    limit: int = 5,
    step: timedelta = timedelta(minutes=15),
) -> list[Candidate]:
    """Up to ``limit`` session times between ``start`` and ``end`` (days in ``reference_zone``).

    The window runs from ``start`` 00:00 to ``end`` 24:00 in the reference zone; a session
    starts after ``now``, on the UTC grid of ``step``, and ends inside the window. A city is
    inside when the whole session lies in its working hours on a working weekday (local),
    that day is not a public holiday of its country, and no ``Busy`` of it overlaps.

    Best first: most cities inside; then fewest cities at the edge of their day; then the
    smallest total ``burden`` (past early or late slots, by city id) of those edge cities,
    so the edge passes to whoever has carried it least; then the earliest. At most one
    candidate per reference-zone day while other days have a start; only when there are
    fewer such days than ``limit`` does a day give a second one, never overlapping the first.
    Times at which no city is inside are never proposed, so the list may be empty.
    """
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise TypeError("start and end are dates")
    if step <= timedelta(0) or step > _DAY or step % _SECOND:
        raise ValueError("step must be a whole number of seconds, positive, at most a day")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    _check_duration(duration, step)
    ref = zone_info(check_zone(reference_zone))
    if end < start:
        raise InvalidWindow(reason="end_before_start", start=start, end=end)
    days = (end - start).days + 1
    if days > MAX_WINDOW_DAYS:
        raise InvalidWindow(reason="too_long", start=start, end=end, days=days, max=MAX_WINDOW_DAYS)
    midnights = [_wall_instant(start + timedelta(days=d), time(0), ref) for d in range(days + 1)]
    window_start, window_end = midnights[0], midnights[-1]
    if window_end <= now:
        raise InvalidWindow(reason="past", start=start, end=end)

    cities = list(cities)
    zones = {city.id: check_zone(city.zone) for city in cities}
    if len(zones) != len(cities):
        raise ValueError("city ids must be unique")
    weights = dict(burden or {})
    if any(weight < 0 for weight in weights.values()):
        raise ValueError("burden counts cannot be negative")
    if not cities:
        return []

    base = _EPOCH + ((window_start - _EPOCH) // step) * step
    grid = _Grid(base=base, step=step, size=-((base - window_end) // step))
    slots = duration // step
    valid = grid.run(
        max(grid.ceil(window_start), grid.floor(now) + 1), grid.floor(window_end - duration) + 1
    )

    busy = list(busy)
    busy_masks: dict[int, int] = {}
    for session in busy:
        touched = grid.run(grid.floor(session.start), grid.ceil(session.end))
        if touched:
            for city_id in session.city_ids & zones.keys():
                busy_masks[city_id] = busy_masks.get(city_id, 0) | touched

    profiles: dict[tuple[str, str, WorkingHours], _Profile] = {}
    inside_planes: list[int] = []
    edge_planes: list[int] = []
    burden_planes: list[int] = []
    own_fits: dict[int, int] = {}
    city_profile: dict[int, _Profile] = {}
    for city in cities:
        key = (zones[city.id], city.country.upper(), city.hours)
        profile = profiles.get(key)
        if profile is None:
            profile = profiles[key] = _Profile.build(
                grid, zone=key[0], country=key[1], hours=city.hours, duration=duration
            )
            profile.fits = _runs(profile.available, slots) & valid
        city_profile[city.id] = profile
        weight = weights.get(city.id, 0)
        if city.id in busy_masks:
            fits = _runs(profile.available & ~busy_masks[city.id], slots) & valid
            own_fits[city.id] = fits
            _add(inside_planes, fits, 1)
            _add(edge_planes, fits & profile.edge, 1)
            _add(burden_planes, fits & profile.edge, weight)
        else:
            profile.count += 1
            profile.burden += weight
    for profile in profiles.values():
        if profile.count:
            _add(inside_planes, profile.fits, profile.count)
            _add(edge_planes, profile.fits & profile.edge, profile.count)
            _add(burden_planes, profile.fits & profile.edge, profile.burden)

    ranking = _Ranking(inside=inside_planes, edge=edge_planes, burden=burden_planes)
    # A time that suits no member is no proposal at all.
    anyone = 0
    for plane in inside_planes:
        anyone |= plane
    valid &= anyone
    remaining: dict[int, tuple[int, int]] = {}  # day -> (first slot, starts still open)
    for day in range(days):
        lo, hi = grid.ceil(midnights[day]), grid.ceil(midnights[day + 1])
        open_starts = (valid >> lo) & ((1 << (hi - lo)) - 1) if hi > lo else 0
        if open_starts:
            remaining[day] = (lo, open_starts)

    by_city: dict[int, list[Busy]] = {}
    for session in busy:
        for city_id in session.city_ids:
            by_city.setdefault(city_id, []).append(session)
    candidates = []
    for slot in _pick(ranking, remaining, limit=limit, slots=slots):
        session_start = grid.at(slot)
        session_end = session_start + duration
        inside: set[int] = set()
        edge: set[int] = set()
        reasons: dict[int, list[Reason]] = {}
        for city in cities:
            profile = city_profile[city.id]
            if own_fits.get(city.id, profile.fits) >> slot & 1:
                inside.add(city.id)
                if profile.edge >> slot & 1:
                    edge.add(city.id)
            else:
                reasons[city.id] = explain(
                    city, start=session_start, end=session_end, busy=by_city.get(city.id, ())
                )
        candidates.append(
            Candidate(
                start=session_start,
                end=session_end,
                inside=frozenset(inside),
                reasons=reasons,
                edge=frozenset(edge),
            )
        )
    return candidates


def _pick(
    ranking: _Ranking, remaining: dict[int, tuple[int, int]], *, limit: int, slots: int
) -> list[int]:
    """Start slots, best first: each day's best while there are days, then each day's next
    best that does not overlap what that day already gave. ``remaining`` maps a day to its
    first slot and its open starts (bits from that slot); it is used up."""
    picks: list[tuple[int, int, int, int]] = []
    while len(picks) < limit and remaining:
        best_of_days = sorted(
            (ranking.best(lo, open_starts), day) for day, (lo, open_starts) in remaining.items()
        )
        for score, day in best_of_days[: limit - len(picks)]:
            picks.append(score)
            lo, open_starts = remaining[day]
            # No second start on that day within a session's length of this one.
            open_starts &= ~_run_mask(score[3] - lo - slots + 1, score[3] - lo + slots)
            if open_starts:
                remaining[day] = (lo, open_starts)
            else:
                del remaining[day]
    return [score[3] for score in sorted(picks)]


def explain(
    city: PlanningCity, *, start: datetime, end: datetime, busy: Iterable[Busy] = ()
) -> list[Reason]:
    """Why ``city`` cannot take a session from ``start`` to ``end``; empty when it can."""
    tz = zone_info(check_zone(city.zone))
    day = start.astimezone(tz).date()
    reasons = []
    if day.weekday() not in city.hours.weekdays:
        reasons.append(Reason(ReasonKind.NOT_WORKING_DAY))
    name = holiday_name(city.country, day)
    if name is not None:
        reasons.append(Reason(ReasonKind.HOLIDAY, holiday=name))
    opens = _wall_instant(day, city.hours.start, tz)
    closes = _wall_instant(day, city.hours.end, tz)
    if start < opens or end > closes:
        reasons.append(Reason(ReasonKind.OUTSIDE_HOURS))
    if any(session.start < end and start < session.end for session in busy):
        reasons.append(Reason(ReasonKind.BUSY))
    return reasons


def edge_cities(
    cities: Iterable[PlanningCity], *, start: datetime, end: datetime
) -> frozenset[int]:
    """Ids of the cities for which a session is inside working hours on a working weekday
    but starts within their first hour or ends within their last: the ones to add to the
    burden once the session is fixed (holidays and busy slots are not looked at)."""
    found = set()
    for city in cities:
        tz = zone_info(check_zone(city.zone))
        day = start.astimezone(tz).date()
        if day.weekday() not in city.hours.weekdays:
            continue
        opens = _wall_instant(day, city.hours.start, tz)
        closes = _wall_instant(day, city.hours.end, tz)
        if opens <= start and end <= closes and (start < opens + EDGE or end > closes - EDGE):
            found.add(city.id)
    return frozenset(found)


def holiday_name(country: str, day: date) -> str | None:
    """The public holiday of ``country`` on ``day``, or None (also for unknown countries)."""
    return _country_holidays(country.upper(), day.year).get(day)


def clear_holiday_cache() -> None:
    _country_holidays.cache_clear()


@cache
def _country_holidays(country: str, year: int) -> dict[date, str]:
    try:
        found = holidays.country_holidays(country, years=year)
    except NotImplementedError:
        return {}
    # A plain copy: the library's object adds other years to itself when asked about them.
    return dict(found.items())


def _check_duration(duration: timedelta, step: timedelta) -> None:
    if duration <= timedelta(0) or duration % step or duration > MAX_DURATION:
        raise InvalidDuration(
            minutes=_whole(duration / timedelta(minutes=1)),
            max=_whole(MAX_DURATION / timedelta(minutes=1)),
            step=_whole(step / timedelta(minutes=1)),
        )


def _whole(minutes: float) -> int | float:
    return int(minutes) if minutes == int(minutes) else minutes


def _wall_instant(day: date, wall: time, tz: tzinfo) -> datetime:
    """The instant of a wall time, first occurrence when repeated; a time in a
    spring-forward gap maps to the instant that follows the gap (zoneinfo's fold=0)."""
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class _Grid:
    base: datetime
    step: timedelta
    size: int

    def floor(self, instant: datetime) -> int:
        return (instant - self.base) // self.step

    def ceil(self, instant: datetime) -> int:
        return -((self.base - instant) // self.step)

    def at(self, slot: int) -> datetime:
        return self.base + slot * self.step

    def run(self, lo: int, hi: int) -> int:
        """Bits ``lo`` to ``hi - 1``, clipped to the grid."""
        return _run_mask(max(lo, 0), min(hi, self.size))


def _run_mask(lo: int, hi: int) -> int:
    lo = max(lo, 0)
    return ((1 << (hi - lo)) - 1) << lo if hi > lo else 0


@dataclass
class _Profile:
    """Everything that depends only on a city's zone, country and hours."""

    available: int  # slots inside working hours of a working, non-holiday local day
    edge: int  # starts in the first hour of a working day, or ending in its last
    fits: int = 0
    count: int = 0  # cities without busy slots that share it
    burden: int = 0  # their total burden

    @classmethod
    def build(
        cls, grid: _Grid, *, zone: str, country: str, hours: WorkingHours, duration: timedelta
    ) -> _Profile:
        tz = zone_info(zone)
        day = grid.at(0).astimezone(tz).date()
        last = grid.at(grid.size).astimezone(tz).date()
        # Whole seconds from the grid's first slot: int arithmetic is several times faster
        # than timedelta's, and this loop runs once per local day of every calendar.
        base = (grid.base - _EPOCH) // _SECOND
        step = grid.step // _SECOND
        edge_s, duration_s = EDGE // _SECOND, duration // _SECOND
        start_s, end_s = _seconds(hours.start), _seconds(hours.end)
        # One byte per slot, painted with slice assignments and read as one binary number at
        # the end: a big-int OR per day would cost O(window) each time.
        available = bytearray(grid.size)
        edge = bytearray(grid.size)
        while day <= last:
            if day.weekday() in hours.weekdays and holiday_name(country, day) is None:
                midnight = (day.toordinal() - _EPOCH_ORDINAL) * 86400 - base
                opens = midnight + start_s - _offset(tz, day, hours.start)
                closes = midnight + end_s - _offset(tz, day, hours.end)
                first = -(-opens // step)
                _paint(available, first, closes // step)
                _paint(edge, first, -(-(opens + edge_s) // step))
                # Starts whose session ends after closes - EDGE and by closes.
                _paint(
                    edge,
                    (closes - edge_s - duration_s) // step + 1,
                    (closes - duration_s) // step + 1,
                )
            day += _DAY
        return cls(available=_to_int(available), edge=_to_int(edge))


_SECOND = timedelta(seconds=1)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_ONE = b"\x01"


def _seconds(wall: time) -> int:
    return wall.hour * 3600 + wall.minute * 60 + wall.second


def _offset(tz: tzinfo, day: date, wall: time) -> int:
    """Seconds east of UTC at a wall time, as ``_wall_instant`` resolves it (fold=0)."""
    offset = tz.utcoffset(datetime.combine(day, wall))
    if offset is None:
        raise ValueError("zone without an offset")
    return offset // _SECOND


def _paint(slots: bytearray, lo: int, hi: int) -> None:
    lo, hi = max(lo, 0), min(hi, len(slots))
    if hi > lo:
        slots[lo:hi] = _ONE * (hi - lo)


def _to_int(slots: bytearray) -> int:
    """The int whose bit ``i`` is byte ``i``: int() reads binary digits most significant first,
    so the bytes are reversed and spelt as "0" and "1" first, all in C."""
    return int(slots[::-1].translate(_BINARY_DIGITS), 2)


_BINARY_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def _runs(mask: int, length: int) -> int:
    """Bit ``i`` set where bits ``i`` to ``i + length - 1`` of ``mask`` all are."""
    result, span = mask, 1
    while span * 2 <= length:
        result &= result >> span
        span *= 2
    if span < length:
        # Two windows of ``span`` bits, ``length - span <= span`` apart, cover ``length``.
        result &= result >> (length - span)
    return result


def _add(planes: list[int], mask: int, weight: int) -> None:
    """Add ``weight`` to the bit-sliced counter ``planes`` at every slot set in ``mask``."""
    position = 0
    while weight and mask:
        if weight & 1:
            carry, level = mask, position
            while carry:
                while level >= len(planes):
                    planes.append(0)
                plane = planes[level]
                planes[level] = plane ^ carry
                carry &= plane
                level += 1
        weight >>= 1
        position += 1


@dataclass(frozen=True)
class _Ranking:
    inside: list[int]
    edge: list[int]
    burden: list[int]

    def best(self, lo: int, open_starts: int) -> tuple[int, int, int, int]:
        """The best start among ``open_starts`` (bits from slot ``lo``), as its sort key
        ``(-inside, edge, burden, slot)``."""
        width = open_starts.bit_length()
        keep = open_starts
        sliced = []
        for planes, larger in ((self.inside, True), (self.edge, False), (self.burden, False)):
            mine = [(plane >> lo) & ((1 << width) - 1) for plane in planes]
            sliced.append(mine)
            for plane in reversed(mine):
                narrowed = keep & plane if larger else keep & ~plane
                if narrowed:
                    keep = narrowed
        at = (keep & -keep).bit_length() - 1
        inside, edge, burden = (
            sum(((plane >> at) & 1) << level for level, plane in enumerate(mine)) for mine in sliced
        )
        return (-inside, edge, burden, lo + at)
