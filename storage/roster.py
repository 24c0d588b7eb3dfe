"""Member cities and their countries: lookup, admission, CSV import."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from zoneinfo import available_timezones

from babel import Locale
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from scheduler.planning import WorkingHours
from storage import audit, errors
from storage.models import City, Country
from storage.roles import Actor

MAX_CITY_NAME = 80
_EXTRA_FOLDS = str.maketrans({"ı": "i", "đ": "d", "ł": "l", "ø": "o", "æ": "ae", "ß": "ss"})
_NAME_PUNCTUATION = set(" -'’.()")


def city_key(name: str) -> str:
    """How a city is found: case, accents and spacing don't matter (Istanbul = İstanbul)."""
    folded = unicodedata.normalize("NFKD", name.casefold().translate(_EXTRA_FOLDS))
    stripped = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return " ".join(stripped.translate(_EXTRA_FOLDS).split())


def clean_city_name(name: str) -> str:
    """A city's name as stored: letters, marks, spaces and a little punctuation."""
    name = " ".join(unicodedata.normalize("NFC", name).split())
    if not name or len(name) > MAX_CITY_NAME:
        raise errors.InvalidCityName(max=MAX_CITY_NAME)
    for ch in name:
        if ch in _NAME_PUNCTUATION:
            continue
        if unicodedata.category(ch)[0] not in ("L", "M"):
            raise errors.InvalidCityName(max=MAX_CITY_NAME)
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        raise errors.InvalidCityName(max=MAX_CITY_NAME)
    return name


_ENGLISH = Locale("en")

# Babel (CLDR) names two-letter regions that are not countries of ISO 3166-1: groupings (EU, EZ,
# UN), private-use and pseudo codes (QO, XA, XB, ZZ) and codes ISO only reserves for places that
# belong to a country (AC, CP, CQ, DG, EA, IC, TA). Only XK, Kosovo's user-assigned code, stays.
_NOT_COUNTRIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}
)


def check_country(code: str) -> str:
    """An ISO 3166-1 alpha-2 country code (``XK`` for Kosovo included)."""
    code = code.strip().upper()
    if (
        len(code) != 2
        or not code.isascii()
        or not code.isalpha()
        or code in _NOT_COUNTRIES
        or code not in _ENGLISH.territories
    ):
        raise errors.UnknownCountry(code=code[:8])
    return code


@cache
def _zones_by_lower() -> dict[str, str]:
    return {zone.lower(): zone for zone in available_timezones() if "/" in zone}


def check_timezone(zone: str) -> str:
    """An IANA zone name from the tzdata package (``Europe/Belgrade``), spelled as tzdata does."""
    canonical = _zones_by_lower().get(zone.strip().lower())
    if canonical is None:
        raise errors.UnknownTimezone(zone=zone.strip()[:64])
    return canonical


async def ensure_country(session: AsyncSession, code: str) -> Country:
    country = await session.get(Country, code)
    if country is None:
        country = Country(code=code, name=_ENGLISH.territories[code])
        session.add(country)
        await session.flush()
    return country


async def add_city(
    session: AsyncSession,
    *,
    name: str,
    country_code: str,
    timezone: str,
    joined_on: date,
    founding: bool = False,
    actor_id: int | None = None,
) -> City:
    name = clean_city_name(name)
    country_code = check_country(country_code)
    timezone = check_timezone(timezone)
    existing = (
        await session.exec(
            select(City).where(City.country_code == country_code, City.search_key == city_key(name))
        )
    ).first()
    if existing is not None:
        raise errors.CityAlreadyMember(city=existing.name)
    await ensure_country(session, country_code)
    city = City(
        name=name,
        search_key=city_key(name),
        country_code=country_code,
        timezone=timezone,
        founding=founding,
        joined_on=joined_on,
    )
    session.add(city)
    await session.flush()
    audit.record(session, actor_id=actor_id, action="city.add", subject=name, country=country_code)
    return city


async def list_cities(session: AsyncSession) -> list[City]:
    rows = await session.exec(select(City).order_by(col(City.country_code), col(City.search_key)))
    return list(rows.all())


async def find_city(session: AsyncSession, name: str) -> City:
    """The member city called ``name``; ``Name, CC`` settles a name two countries share."""
    name, _, country = name.partition(",")
    key = city_key(name)
    if not key:
        raise errors.UnknownCity(name=name.strip()[:64])
    query = select(City).where(City.search_key == key)
    if country.strip():
        query = query.where(City.country_code == country.strip().upper())
    matches = list((await session.exec(query)).all())
    if not matches:
        raise errors.UnknownCity(name=name.strip()[:64])
    if len(matches) > 1:
        raise errors.AmbiguousCity(
            name=matches[0].name, countries=", ".join(sorted(c.country_code for c in matches))
        )
    return matches[0]


async def get_city(session: AsyncSession, city_id: int) -> City:
    city = await session.get(City, city_id)
    if city is None:
        raise errors.UnknownCity(name=str(city_id))
    return city


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class CityRow:
    line: int
    name: str
    country: str
    timezone: str
    founding: bool


_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}


def parse_cities_csv(text: str) -> list[CityRow]:
    """Rows of ``name,country,timezone[,founding]``; the first bad row raises InvalidImport."""
    rows: list[CityRow] = []
    header_seen = False
    seen: dict[tuple[str, str], int] = {}
    for line, record in _records(text):
        if not record or all(not cell.strip() for cell in record):
            continue
        if any("\0" in cell for cell in record):
            raise errors.InvalidImport(
                line=line, reason="a NUL byte (a binary file, or a spreadsheet not saved as CSV?)"
            )
        cells = [cell.strip() for cell in record]
        if not header_seen:
            header_seen = True
            if [c.lower() for c in cells[:3]] == ["name", "country", "timezone"]:
                continue
        if len(cells) not in (3, 4):
            raise errors.InvalidImport(
                line=line,
                reason="expected 3 or 4 columns (name,country,timezone[,founding]), "
                f"got {len(cells)}",
            )
        founding_text = cells[3].lower() if len(cells) == 4 else ""
        if founding_text not in _TRUE | _FALSE:
            raise errors.InvalidImport(
                line=line, reason=f"founding must be true or false, not {cells[3]!r}"
            )
        try:
            name = clean_city_name(cells[0])
            country = check_country(cells[1])
            zone = check_timezone(cells[2])
        except errors.InvalidCityName:
            raise errors.InvalidImport(
                line=line, reason=f"invalid city name {cells[0][:40]!r}"
            ) from None
        except errors.UnknownCountry:
            raise errors.InvalidImport(
                line=line,
                reason=f"unknown country code {cells[1][:8]!r} (ISO 3166 alpha-2, XK for Kosovo)",
            ) from None
        except errors.UnknownTimezone:
            raise errors.InvalidImport(
                line=line,
                reason=f"unknown time zone {cells[2][:64]!r} (IANA name, e.g. Europe/Sofia)",
            ) from None
        key = (country, city_key(name))
        if key in seen:
            raise errors.InvalidImport(line=line, reason=f"{name} repeats line {seen[key]}")
        seen[key] = line
        rows.append(CityRow(line, name, country, zone, founding_text in _TRUE))
    if not rows:
        raise errors.InvalidImport(line=0, reason="the file has no cities")
    return rows


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line, record) of a CSV text; what the csv module cannot read is an InvalidImport."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # Python refuses fields over 131,072 characters: no city file has them.
            line = reader.line_num
            if "field larger than field limit" in str(exc):
                reason = f"a field is longer than {csv.field_size_limit():,} characters"
            else:
                reason = f"not CSV ({exc})"
            raise errors.InvalidImport(line=line, reason=reason) from None
        yield reader.line_num, record


async def import_cities(
    session: AsyncSession, rows: list[CityRow], *, today: date, actor_id: int | None = None
) -> ImportResult:
    """Adds new cities and updates changed ones; the same file twice changes nothing.

    A row names a stored city when its name has the same search key (``BELGRADE`` is
    Belgrade): the city keeps its stored spelling, only its time zone and founding change.
    """
    existing = {(c.country_code, c.search_key): c for c in await list_cities(session)}
    added = updated = unchanged = 0
    for row in rows:
        city = existing.get((row.country, city_key(row.name)))
        if city is None:
            await add_city(
                session,
                name=row.name,
                country_code=row.country,
                timezone=row.timezone,
                founding=row.founding,
                joined_on=today,
                actor_id=actor_id,
            )
            added += 1
        elif (city.timezone, city.founding) != (row.timezone, row.founding):
            city.timezone, city.founding = row.timezone, row.founding
            session.add(city)
            audit.record(session, actor_id=actor_id, action="city.update", subject=city.name)
            updated += 1
        else:
            unchanged += 1
    await session.flush()
    return ImportResult(added=added, updated=updated, unchanged=unchanged)


async def set_working_hours(
    session: AsyncSession, *, actor: Actor, city: City, hours: WorkingHours
) -> City:
    """A city's working hours for planning: set by its own delegates or the secretariat."""
    own = actor.is_approved_delegate and actor.city is not None and actor.city.id == city.id
    if not (own or actor.is_secretariat):
        raise errors.NotAllowed(role="city_delegate")
    was = (city.work_start, city.work_end, city.work_days)
    city.work_start = hours.start.strftime("%H:%M")
    city.work_end = hours.end.strftime("%H:%M")
    city.work_days = "".join(str(day + 1) for day in sorted(hours.weekdays))
    session.add(city)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="city.hours",
        subject=city.name,
        was=list(was),
        now=[city.work_start, city.work_end, city.work_days],
    )
    return city
