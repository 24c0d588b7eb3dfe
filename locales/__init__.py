"""Languages of the network: gettext catalogs, the current locale, and formatters.

The reader's language lives in a ContextVar, set once per update and inside
every job (``use_language``). ``N_`` marks text at module level; ``_`` and
``ngettext`` translate at the moment of use, so nothing freezes in the
language that happened to be active at import time.

Catalogs are the ``.po`` files themselves, compiled in memory on first use
with Babel: there is no build step to forget and no ``.mo`` to go stale.
"""

from __future__ import annotations

import gettext
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

# Zone rules from the pinned tzdata package, not the host (see storage/__init__.py).
zoneinfo.reset_tzpath(to=[])

LOCALES_DIR = Path(__file__).parent
DOMAIN = "b40"
SOURCE_LANGUAGE = "en"

# Public code (what people type in /language) -> Babel locale id (also the catalog folder).
SUPPORTED_LANGUAGES: dict[str, str] = {
    "en": "en",
    "tr": "tr",
    "el": "el",
    "bg": "bg",
    "ro": "ro",
    "sr-Latn": "sr_Latn",
    "sr-Cyrl": "sr_Cyrl",
    "hr": "hr",
    "bs": "bs",
    "sq": "sq",
    "mk": "mk",
    "sl": "sl",
}

# Tags Telegram or people send that name a supported language another way.
_ALIASES = {
    # CLDR writes Serbian in Cyrillic unless told otherwise; so does Telegram's "sr".
    "sr": "sr-Cyrl",
    "sr-rs": "sr-Cyrl",
    "sr-cyrl-rs": "sr-Cyrl",
    "sr-latn-rs": "sr-Latn",
    "sr-me": "sr-Latn",
    "sr-latn-me": "sr-Latn",
    "cnr": "sr-Latn",  # Montenegrin
    "me": "sr-Latn",
    "mo": "ro",  # Moldovan
}

_LOWER = {code.lower(): code for code in SUPPORTED_LANGUAGES}

current_language: ContextVar[str] = ContextVar("current_language", default=SOURCE_LANGUAGE)


def normalize_language(tag: str | None) -> str | None:
    """Map an IETF-ish tag (``sr_Latn``, ``de-AT``, ``EN``) to a supported code, or None."""
    if not tag:
        return None
    key = tag.strip().replace("_", "-").lower()
    while key:
        if key in _LOWER:
            return _LOWER[key]
        if key in _ALIASES:
            return _ALIASES[key]
        key = key.rpartition("-")[0]
    return None


def N_(message: str) -> str:
    """Mark a string for extraction without translating it now."""
    return message


@cache
def translations(language: str) -> gettext.NullTranslations:
    folder = SUPPORTED_LANGUAGES.get(language)
    if folder is None or language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    path = LOCALES_DIR / folder / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=folder, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _(message: str) -> str:
    return translations(current_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language.get()).ngettext(singular, plural, n)


@contextmanager
def use_language(language: str) -> Iterator[None]:
    token = current_language.set(language)
    try:
        yield
    finally:
        current_language.reset(token)


# English here is read in the Balkans, on a 24-hour clock: British formats, not "3:30 PM".
_FORMAT_LOCALES = {"en": "en_GB"}


@cache
def babel_locale(language: str) -> Locale:
    return Locale.parse(
        _FORMAT_LOCALES.get(language) or SUPPORTED_LANGUAGES.get(language, SOURCE_LANGUAGE)
    )


def locale() -> Locale:
    return babel_locale(current_language.get())


def language_name(language: str) -> str:
    """A language's name in itself (its autonym), as people look for it in a menu."""
    # The catalog's locale, not the formatting one: "English", not "English (United Kingdom)".
    loc = Locale.parse(SUPPORTED_LANGUAGES[language])
    name = loc.get_display_name(loc) or language
    return name[:1].upper() + name[1:]


def country_name(code: str) -> str:
    name = locale().territories.get(code) or babel_locale(SOURCE_LANGUAGE).territories.get(code)
    return str(name or code)


def local_time(instant: datetime, zone: str) -> str:
    """Wall-clock time of an aware instant in an IANA zone, for the current reader."""
    return format_time(instant.astimezone(zoneinfo.ZoneInfo(zone)), format="short", locale=locale())


def local_datetime(instant: datetime, zone: str) -> str:
    return format_datetime(
        instant.astimezone(zoneinfo.ZoneInfo(zone)), format="medium", locale=locale()
    )
