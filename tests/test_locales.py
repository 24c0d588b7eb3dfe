"""Every catalog is complete, keeps every placeholder and tag, and has the right plural forms."""

from __future__ import annotations

import re
from string import Formatter

import pytest
from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from locales import (
    SOURCE_LANGUAGE,
    SUPPORTED_LANGUAGES,
    _,
    ngettext,
    normalize_language,
    use_language,
)
from locales.update import TEMPLATE, catalog_path, extract

TRANSLATED = [code for code in SUPPORTED_LANGUAGES if code != SOURCE_LANGUAGE]
# The tags the bot writes; "<code>" is not among them (it names an argument in usage texts).
TAG = re.compile(r"</?(b|i|u|s|a)\b[^>]*>")
COMMAND = re.compile(r"(?<![\w/])/[a-z_]{3,}\b")


def load(language: str) -> Catalog:
    with catalog_path(language).open("rb") as handle:
        return read_po(handle, locale=SUPPORTED_LANGUAGES[language])


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


def strings(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, tuple) else [message.id]


def translations(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def test_template_matches_the_code() -> None:
    """Run `python -m locales.update` after changing a message."""
    with TEMPLATE.open("rb") as handle:
        committed = {m.id for m in read_po(handle) if m.id}
    assert {m.id for m in extract() if m.id} == committed


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalog_is_complete_and_well_formed(language: str) -> None:
    catalog = load(language)
    with TEMPLATE.open("rb") as handle:
        template_ids = {m.id for m in read_po(handle) if m.id}
    problems: list[str] = []
    ids = {m.id for m in catalog if m.id}
    problems += [f"missing: {mid!r}" for mid in template_ids - ids]
    expected = get_plural(SUPPORTED_LANGUAGES[language])
    if catalog.num_plurals != expected.num_plurals:
        problems.append(f"nplurals {catalog.num_plurals}, Babel says {expected.num_plurals}")
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        texts = translations(message)
        if any(not t for t in texts):
            problems.append(f"untranslated: {message.id!r}")
            continue
        if isinstance(message.id, tuple) and len(texts) != expected.num_plurals:
            problems.append(f"{len(texts)} plural forms for {message.id[0]!r}")
        source = strings(message)
        wanted_fields = set().union(*(fields(s) for s in source))
        wanted_tags = sorted(TAG.findall(source[-1]))
        wanted_commands = sorted(set(COMMAND.findall(source[-1])))
        for text in texts:
            try:
                got = fields(text)
            except ValueError as exc:
                problems.append(f"broken placeholder in {text!r}: {exc}")
                continue
            if got != wanted_fields and not (
                isinstance(message.id, tuple) and got <= wanted_fields
            ):
                problems.append(
                    f"placeholders {sorted(got)} != {sorted(wanted_fields)} in {text!r}"
                )
            if sorted(TAG.findall(text)) != wanted_tags:
                problems.append(f"HTML tags differ in {text!r}")
            if sorted(set(COMMAND.findall(text))) != wanted_commands:
                problems.append(f"commands differ in {text!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_are_used(language: str) -> None:
    with use_language(language):
        assert _("Only the secretariat can do that.") != "Only the secretariat can do that."


@pytest.mark.parametrize(
    ("language", "counts"),
    [
        # Slovenian has four forms: 1, 2, 3–4, and the rest; 101 behaves like 1.
        ("sl", [1, 2, 3, 5, 101]),
        # Serbian, Croatian, Bosnian: 1/21, 2–4/22–24, 5–20/25; 11–14 are "many".
        ("hr", [1, 2, 5, 11, 21]),
        ("ro", [1, 2, 20, 101]),
    ],
)
def test_plural_forms_follow_the_language(language: str, counts: list[int]) -> None:
    rule = Locale.parse(SUPPORTED_LANGUAGES[language]).plural_form
    with use_language(language):
        texts = [
            ngettext("{n} city: {names}", "{n} cities: {names}", n).replace(str(n), "N")
            for n in counts
        ]
    # The same CLDR category must give the same text, different categories different texts.
    categories = [rule(n) for n in counts]
    for i in range(len(counts)):
        for j in range(len(counts)):
            assert (texts[i] == texts[j]) == (categories[i] == categories[j]), (
                counts[i],
                counts[j],
                texts,
            )


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en-US", "en"),
        ("tr", "tr"),
        ("sr", "sr-Cyrl"),
        ("sr-Latn", "sr-Latn"),
        ("sr_latn", "sr-Latn"),
        ("de", None),
        ("", None),
        (None, None),
    ],
)
def test_language_tags_are_normalised(tag: str | None, expected: str | None) -> None:
    assert normalize_language(tag) == expected
