"""What the roster refuses: regions that are not countries, CSV the csv module cannot read, and
renaming a city by importing it in other letters."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path

import pytest
import tzdata
from babel import Locale
from sqlmodel import select

from storage import errors, roster
from storage.db import Database
from storage.models import AuditEntry, City
from tests.conftest import seed_cities

NETWORK_COUNTRIES = ["AL", "BA", "BG", "GR", "HR", "MD", "ME", "MK", "RO", "RS", "SI", "TR"]


def iso_3166_codes() -> set[str]:
    """The officially assigned ISO 3166-1 alpha-2 codes, as tzdata ships them."""
    table = Path(tzdata.__file__).parent / "zoneinfo" / "iso3166.tab"
    lines = table.read_text(encoding="utf-8").splitlines()
    return {line.split("\t")[0] for line in lines if line and not line.startswith("#")}


@pytest.mark.parametrize("code", [*NETWORK_COUNTRIES, "XK", "xk", " tr "])
def test_the_network_countries_and_kosovo_are_countries(code: str) -> None:
    assert roster.check_country(code) == code.strip().upper()


@pytest.mark.parametrize("code", ["EU", "UN", "ZZ", "EZ", "QO", "XA", "XB", "AC", "IC", "CQ"])
def test_regions_that_are_not_countries_are_refused(code: str) -> None:
    with pytest.raises(errors.UnknownCountry) as caught:
        roster.check_country(code)
    assert caught.value.params == {"code": code}


def test_every_code_accepted_is_an_iso_country_or_kosovo() -> None:
    candidates = {code for code in Locale("en").territories if len(code) == 2}
    accepted = set()
    for code in candidates:
        with contextlib.suppress(errors.UnknownCountry):
            accepted.add(roster.check_country(code))
    assert accepted == iso_3166_codes() | {"XK"}


def test_a_field_longer_than_the_csv_limit_is_an_invalid_import_with_its_line() -> None:
    text = "name,country,timezone\nOhrid,MK,Europe/Skopje\n" + "B" * 131_073 + ",MK,Europe/Skopje\n"
    with pytest.raises(errors.InvalidImport) as caught:
        roster.parse_cities_csv(text)
    assert caught.value.params == {
        "line": 3,
        "reason": "a field is longer than 131,072 characters",
    }


def test_a_field_at_the_csv_limit_is_read_and_refused_as_a_name() -> None:
    text = "name,country,timezone\n" + "B" * 131_072 + ",MK,Europe/Skopje\n"
    with pytest.raises(errors.InvalidImport) as caught:
        roster.parse_cities_csv(text)
    assert caught.value.params == {"line": 2, "reason": "invalid city name " + repr("B" * 40)}


def test_a_nul_byte_is_an_invalid_import_with_its_line() -> None:
    text = "name,country,timezone\nOhrid,MK,Europe/Skopje\nBit\0ola,MK,Europe/Skopje\n"
    with pytest.raises(errors.InvalidImport) as caught:
        roster.parse_cities_csv(text)
    assert caught.value.params == {
        "line": 3,
        "reason": "a NUL byte (a binary file, or a spreadsheet not saved as CSV?)",
    }


async def stored(db: Database, country: str) -> list[tuple[str, str, str, bool]]:
    async with db.transaction() as session:
        cities = (await session.exec(select(City).where(City.country_code == country))).all()
        return sorted((c.name, c.search_key, c.timezone, c.founding) for c in cities)


@pytest.mark.parametrize(
    ("line", "country", "kept"),
    [
        ("BELGRADE,RS,Europe/Belgrade,false", "RS", "Belgrade"),
        ("belgrade,RS,Europe/Belgrade,false", "RS", "Belgrade"),
        ("Istanbul,TR,Europe/Istanbul,false", "TR", "İstanbul"),
    ],
)
async def test_reimporting_a_city_in_other_letters_keeps_its_stored_name(
    db: Database, line: str, country: str, kept: str
) -> None:
    await seed_cities(db)
    before = await stored(db, country)
    assert (kept, roster.city_key(kept), "Europe/" + kept.replace("İ", "I"), True) in before
    async with db.transaction() as session:
        result = await roster.import_cities(
            session, roster.parse_cities_csv(line), today=date(2026, 6, 1)
        )
        entries = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "city.update"))
        ).all()
    assert (result.added, result.updated, result.unchanged) == (0, 1, 0)
    assert [entry.subject for entry in entries] == [kept]
    after = await stored(db, country)
    # Only the founding flag changed: the name is still the stored spelling.
    assert after == [
        (name, key, zone, False if name == kept else founding)
        for name, key, zone, founding in before
    ]


async def test_reimporting_the_same_city_in_capitals_changes_nothing(db: Database) -> None:
    await seed_cities(db)
    before = await stored(db, "RS")
    async with db.transaction() as session:
        result = await roster.import_cities(
            session,
            roster.parse_cities_csv("BELGRADE,RS,Europe/Belgrade,true"),
            today=date(2026, 6, 1),
        )
    assert (result.added, result.updated, result.unchanged) == (0, 0, 1)
    assert await stored(db, "RS") == before
