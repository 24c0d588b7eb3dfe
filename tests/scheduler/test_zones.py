"""Wall times and instants: gaps, repeated hours, zone names, the local time table.

Expected instants are worked out by hand from the offsets the law sets (EU rule: clocks
change at 01:00 UTC on the last Sundays of March and October; Türkiye stays at +3), not
taken from the code under test.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import NonexistentLocalTime, UnknownZone
from scheduler.zones import check_zone, local_time_table, to_utc
from storage.errors import DomainError

CITIES = Path(__file__).parent.parent.parent / "playground" / "data" / "b40-cities.csv"
with CITIES.open(encoding="utf-8") as handle:
    NETWORK_ZONES = sorted({row["timezone"] for row in csv.DictReader(handle)})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "wall", "zone", "expected"),
    [
        # Winter: Belgrade +1, Athens +2, İstanbul +3.
        (date(2026, 1, 12), time(9), "Europe/Belgrade", utc(2026, 1, 12, 8)),
        (date(2026, 1, 12), time(9), "Europe/Athens", utc(2026, 1, 12, 7)),
        (date(2026, 1, 12), time(9), "Europe/Istanbul", utc(2026, 1, 12, 6)),
        # Summer: Belgrade +2, Athens +3, İstanbul still +3.
        (date(2026, 7, 1), time(9), "Europe/Belgrade", utc(2026, 7, 1, 7)),
        (date(2026, 7, 1), time(9), "Europe/Athens", utc(2026, 7, 1, 6)),
        (date(2026, 7, 1), time(9), "Europe/Istanbul", utc(2026, 7, 1, 6)),
        # The spring switch night in Athens: 02:59 is still +2, 04:00 already +3.
        (date(2026, 3, 29), time(2, 59), "Europe/Athens", utc(2026, 3, 29, 0, 59)),
        (date(2026, 3, 29), time(4), "Europe/Athens", utc(2026, 3, 29, 1)),
        # İstanbul has no gap that night.
        (date(2026, 3, 29), time(3, 30), "Europe/Istanbul", utc(2026, 3, 29, 0, 30)),
        # Belgrade's gap is 02:00-03:00, so 03:30 there is real (+2).
        (date(2026, 3, 29), time(3, 30), "Europe/Belgrade", utc(2026, 3, 29, 1, 30)),
        # After the autumn repeat, Athens is back at +2.
        (date(2026, 10, 25), time(4), "Europe/Athens", utc(2026, 10, 25, 2)),
    ],
)
def test_to_utc(day: date, wall: time, zone: str, expected: datetime) -> None:
    got = to_utc(day, wall, zone=zone)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("wall", [time(3), time(3, 30), time(3, 59)])
def test_spring_forward_gap_raises(wall: time) -> None:
    with pytest.raises(NonexistentLocalTime) as caught:
        to_utc(date(2026, 3, 29), wall, zone="Europe/Athens")
    assert caught.value.params == {"date": date(2026, 3, 29), "time": wall, "zone": "Europe/Athens"}
    assert isinstance(caught.value, DomainError)


@pytest.mark.parametrize("fold", [0, 1])
def test_repeated_hour_takes_the_first_occurrence(fold: int) -> None:
    # 03:30 happens at 00:30 UTC (+3, summer) and again at 01:30 UTC (+2); the rule is the first,
    # whatever fold the caller's time carries.
    assert to_utc(date(2026, 10, 25), time(3, 30, fold=fold), zone="Europe/Athens") == utc(
        2026, 10, 25, 0, 30
    )


def test_chisinau_switches_at_eu_times() -> None:
    # Since 2022 Moldova changes at 03:00 local in spring (01:00 UTC), like the EU; before,
    # it changed at 02:00, so with stale rules 02:30 would be the missing time instead.
    assert to_utc(date(2026, 3, 29), time(2, 30), zone="Europe/Chisinau") == utc(2026, 3, 29, 0, 30)
    with pytest.raises(NonexistentLocalTime):
        to_utc(date(2026, 3, 29), time(3, 30), zone="Europe/Chisinau")
    # Autumn: 03:30 repeats (first at 00:30 UTC); 02:30 happens once, at 23:30 UTC the day before.
    assert to_utc(date(2026, 10, 25), time(3, 30), zone="Europe/Chisinau") == utc(
        2026, 10, 25, 0, 30
    )
    assert to_utc(date(2026, 10, 25), time(2, 30), zone="Europe/Chisinau") == utc(
        2026, 10, 24, 23, 30
    )


def test_to_utc_refuses_aware_wall_and_unknown_zone() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_utc(date(2026, 1, 1), time(9, tzinfo=UTC), zone="Europe/Athens")
    with pytest.raises(UnknownZone) as caught:
        to_utc(date(2026, 1, 1), time(9), zone="Europe/Athen")
    assert caught.value.params["suggestion"] == "Europe/Athens"


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("Europe/Belgrade", "Europe/Belgrade"),
        ("europe/belgrade", "Europe/Belgrade"),
        ("EUROPE/ISTANBUL", "Europe/Istanbul"),
        (" Europe/Sofia ", "Europe/Sofia"),
        # A link stays the name people know, not the zone it points to.
        ("europe/sarajevo", "Europe/Sarajevo"),
        ("utc", "UTC"),
    ],
)
def test_check_zone_accepts(typed: str, canonical: str) -> None:
    assert check_zone(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [
        ("Europe/Belgrad", "Europe/Belgrade"),
        ("Sofia", "Europe/Sofia"),
        # Asia/Istanbul is a link to it; the zone itself is suggested.
        ("istanbul", "Europe/Istanbul"),
        ("Chisinau", "Europe/Chisinau"),
        ("Europe/Tirana", "Europe/Tirane"),
        ("Europe/Skopie", "Europe/Skopje"),
        ("Podgorica", "Europe/Podgorica"),
        ("qqqqqq", None),
        ("", None),
    ],
)
def test_check_zone_suggests(typed: str, suggestion: str | None) -> None:
    with pytest.raises(UnknownZone) as caught:
        check_zone(typed)
    assert caught.value.params == {"zone": typed, "suggestion": suggestion}


def test_local_time_table_groups_west_to_east_in_winter() -> None:
    places = [
        ("İstanbul", "Europe/Istanbul"),
        ("Sofia", "Europe/Sofia"),
        ("Belgrade", "Europe/Belgrade"),
        ("Athens", "Europe/Athens"),
        ("Sarajevo", "Europe/Sarajevo"),
        ("Zagreb", "Europe/Zagreb"),
    ]
    table = local_time_table(utc(2026, 1, 12, 9), places)
    assert [(local.hour, local.minute, names) for local, names in table] == [
        (10, 0, ["Belgrade", "Sarajevo", "Zagreb"]),
        (11, 0, ["Sofia", "Athens"]),
        (12, 0, ["İstanbul"]),
    ]
    assert all(local == utc(2026, 1, 12, 9) for local, _ in table)
    assert [local.utcoffset() for local, _ in table] == [timedelta(hours=h) for h in (1, 2, 3)]


def test_local_time_table_in_summer_athens_joins_istanbul() -> None:
    places = [
        ("İstanbul", "Europe/Istanbul"),
        ("Athens", "Europe/Athens"),
        ("Pula", "Europe/Zagreb"),
    ]
    table = local_time_table(utc(2026, 7, 1, 9), places)
    assert [(local.hour, names) for local, names in table] == [
        (11, ["Pula"]),
        (12, ["İstanbul", "Athens"]),
    ]


def test_local_time_table_refuses_naive_instant() -> None:
    with pytest.raises(ValueError, match="aware"):
        local_time_table(datetime(2026, 1, 1, 9), [("Athens", "Europe/Athens")])  # noqa: DTZ001


def test_local_time_table_accepts_any_aware_instant() -> None:
    plus_five = timezone(timedelta(hours=5))
    table = local_time_table(
        datetime(2026, 1, 12, 14, tzinfo=plus_five), [("Split", "Europe/Zagreb")]
    )
    assert [(local.hour, names) for local, names in table] == [(10, ["Split"])]


@given(
    instant=st.datetimes(
        min_value=datetime(2020, 1, 1),  # noqa: DTZ001
        max_value=datetime(2030, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ).map(lambda value: value.replace(second=0, microsecond=0)),
    zone=st.sampled_from(NETWORK_ZONES),
)
def test_every_instant_round_trips_through_its_wall_time(instant: datetime, zone: str) -> None:
    local = instant.astimezone(ZoneInfo(zone))
    back = to_utc(local.date(), local.time(), zone=zone)
    if local.fold == 0:
        assert back == instant
    else:
        # The second pass through a repeated hour: the rule gives the first, one hour earlier.
        first, second = local.replace(fold=0).utcoffset(), local.utcoffset()
        assert first is not None and second is not None
        assert back == instant - (first - second)
        assert back < instant
    assert back.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == local.replace(tzinfo=None)


@given(
    day=st.sampled_from(
        [date(2026, 3, 29), date(2026, 10, 25), date(2025, 3, 30), date(2025, 10, 26)]
    ),
    # The switches all happen between 01:00 and 05:00 local.
    minutes=st.integers(min_value=0, max_value=6 * 60),
    zone=st.sampled_from(NETWORK_ZONES),
)
def test_gap_iff_the_offset_jumps_forward(day: date, minutes: int, zone: str) -> None:
    # PEP 495: in a gap, fold=0 gives the offset before the switch and fold=1 the one after,
    # so a gap is exactly where fold=0's offset is the smaller.
    wall = time(minutes // 60, minutes % 60)
    tz = ZoneInfo(zone)
    before = datetime.combine(day, wall, tzinfo=tz).utcoffset()
    after = datetime.combine(day, wall.replace(fold=1), tzinfo=tz).utcoffset()
    assert before is not None and after is not None
    if before < after:
        with pytest.raises(NonexistentLocalTime):
            to_utc(day, wall, zone=zone)
    else:
        expected = datetime.combine(day, wall).replace(tzinfo=UTC) - before
        assert to_utc(day, wall, zone=zone) == expected
