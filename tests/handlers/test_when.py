"""Dates, times and weekdays as people type them, and as they read them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from handlers.when import (
    looks_like_time,
    parse_date,
    parse_span,
    parse_time,
    parse_weekdays,
    parse_when,
    time_table,
    weekdays_text,
)
from locales import use_language
from scheduler.errors import InvalidDate, InvalidTime, InvalidWeekdays, SessionEndsBeforeStart

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


@pytest.mark.parametrize(
    ("typed", "language", "days"),
    [
        ("Mon-Fri", "en", {MON, TUE, WED, THU, FRI}),
        ("monday-friday", "en", {MON, TUE, WED, THU, FRI}),
        ("Tuesday, Thursday", "en", {TUE, THU}),
        ("WEDNESDAY", "en", {WED}),
        ("Saturday,Sunday", "en", {SAT, SUN}),
        ("mon – wed", "en", {MON, TUE, WED}),
        ("1-5", "en", {MON, TUE, WED, THU, FRI}),
        ("7", "en", {SUN}),
        ("Sun-Tue", "en", {SUN, MON, TUE}),  # a range wraps past Sunday
        ("Fri-Mon", "en", {FRI, SAT, SUN, MON}),
        ("Sat-Sat", "en", {SAT}),
        ("Δευτέρα-Πέμπτη", "el", {MON, TUE, WED, THU}),  # in the reader's language
        ("δευ,παρ", "el", {MON, FRI}),  # abbreviated, without accents or case
        ("Pazartesi-Çarşamba", "tr", {MON, TUE, WED}),
        ("ponedjeljak-petak", "bs", {MON, TUE, WED, THU, FRI}),
        ("Mon-Thu", "tr", {MON, TUE, WED, THU}),  # English works in every language
        ("Monday-Wednesday", "el", {MON, TUE, WED}),
        ("thursday,FRIDAY", "tr", {THU, FRI}),
        ("Saturday-Sunday", "bs", {SAT, SUN}),
        ("tuesday", "sq", {TUE}),
    ],
)
def test_weekdays_as_people_type_them(typed: str, language: str, days: set[int]) -> None:
    with use_language(language):
        assert parse_weekdays(typed) == frozenset(days)


@pytest.mark.parametrize("typed", ["8", "0", "Funday", "Mon-", "Mon;Fri", "", "Mon-Fri-Sat"])
def test_weekdays_that_are_not_refused_with_what_was_typed(typed: str) -> None:
    with use_language("en"), pytest.raises(InvalidWeekdays) as refused:
        parse_weekdays(typed)
    assert refused.value.params == {"text": typed}


@pytest.mark.parametrize(
    ("days", "language", "shown"),
    [
        ({MON, TUE, WED, THU, FRI}, "en", "Mon–Fri"),
        ({MON, WED, FRI}, "en", "Mon, Wed, Fri"),
        ({MON, TUE}, "en", "Mon, Tue"),  # two in a row are listed, three make a range
        ({MON, TUE, WED, FRI, SAT}, "en", "Mon–Wed, Fri, Sat"),
        ({SUN}, "en", "Sun"),
        ({MON, TUE, WED, THU, FRI}, "el", "Δευ–Παρ"),
    ],
)
def test_weekdays_as_people_read_them(days: set[int], language: str, shown: str) -> None:
    with use_language(language):
        assert weekdays_text(frozenset(days)) == shown


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [("00:00", time(0, 0)), ("9:05", time(9, 5)), ("23:59", time(23, 59))],
)
def test_times_on_a_24_hour_clock(typed: str, parsed: time) -> None:
    assert parse_time(typed) == parsed


@pytest.mark.parametrize("typed", ["24:00", "12:60", "12", "12:5", "123:00", "noon", "-1:00"])
def test_times_that_are_not(typed: str) -> None:
    with pytest.raises(InvalidTime) as refused:
        parse_time(typed)
    assert refused.value.params == {"text": typed}


@pytest.mark.parametrize("typed", ["2026-02-30", "2026-2-3", "26-02-03", "2026/02/03", "x"])
def test_dates_that_are_not(typed: str) -> None:
    with pytest.raises(InvalidDate) as refused:
        parse_date(typed)
    assert refused.value.params == {"text": typed}


def test_spans_and_what_looks_like_a_time() -> None:
    assert parse_span("10:00") == (time(10, 0), None)
    assert parse_span("10:00-11:30") == (time(10, 0), time(11, 30))
    assert parse_span("10:00–11:30") == (time(10, 0), time(11, 30))
    assert [looks_like_time(t) for t in ("10:00", "10:00-11:00", "10:00–11:00")] == [True] * 3
    assert [looks_like_time(t) for t in ("90", "Europe/Sofia", "10-11", "1:0x")] == [False] * 4


def test_a_wall_time_becomes_an_instant_in_its_zone() -> None:
    # 10:00 in Sofia in winter is 08:00 UTC; in Istanbul (the default) 07:00 UTC.
    sofia = parse_when("2026-01-12", "10:00-11:30", "europe/sofia", default_zone="Europe/Istanbul")
    assert sofia.starts_at == datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
    assert (sofia.length, sofia.zone) == (timedelta(minutes=90), "Europe/Sofia")
    default = parse_when("2026-01-12", "10:00", None, default_zone="Europe/Istanbul")
    assert default.starts_at == datetime(2026, 1, 12, 7, 0, tzinfo=UTC)
    assert (default.length, default.zone) == (None, "Europe/Istanbul")
    for span in ("11:30-10:00", "10:00-10:00"):
        with pytest.raises(SessionEndsBeforeStart) as refused:
            parse_when("2026-01-12", span, None, default_zone="Europe/Istanbul")
        start, end = span.split("-")
        assert refused.value.params == {"start": start, "end": end}


def test_a_table_without_places_reads_utc_and_near_midnight_each_place_has_its_date() -> None:
    with use_language("en"):
        assert time_table(datetime(2026, 1, 12, 8, 0, tzinfo=UTC), None, []) == (
            "Monday, 12 January 2026\n08:00 UTC"
        )
        late = time_table(
            datetime(2026, 1, 12, 22, 30, tzinfo=UTC),
            datetime(2026, 1, 12, 23, 0, tzinfo=UTC),
            [("İstanbul", "Europe/Istanbul"), ("Belgrade", "Europe/Belgrade")],
        )
    assert late == "12 Jan 2026 23:30–00:00 Belgrade · 13 Jan 2026 01:30–02:00 İstanbul"
