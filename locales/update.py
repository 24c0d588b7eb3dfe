"""Extract the messages from the code and bring every catalog up to date.

    python -m locales.update

Writes ``locales/b40.pot`` and updates ``locales/<lang>/LC_MESSAGES/b40.po`` for
every supported language: new messages arrive untranslated, changed ones fuzzy,
and tests/test_locales.py fails until a translator has done them.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from locales import DOMAIN, LOCALES_DIR, SOURCE_LANGUAGE, SUPPORTED_LANGUAGES

ROOT = LOCALES_DIR.parent
SOURCES = ("bot", "handlers", "scheduler", "storage", "locales")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"


def extract() -> Catalog:
    template = Catalog(project="b40-bot", domain=DOMAIN, charset="utf-8")
    for folder in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            template.add(
                message,
                None,
                [(f"{folder}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return template


def catalog_path(language: str) -> Path:
    return LOCALES_DIR / SUPPORTED_LANGUAGES[language] / "LC_MESSAGES" / f"{DOMAIN}.po"


def _messages(catalog: Catalog) -> list[tuple[object, object]]:
    return [(m.id, m.locations) for m in catalog if m.id]


def main() -> None:
    template = extract()
    if TEMPLATE.exists():
        with TEMPLATE.open("rb") as handle:
            previous = read_po(handle)
        if _messages(previous) == _messages(template):
            # Nothing changed: keep the date, so an idle run leaves every file as it was.
            template.creation_date = previous.creation_date
    with TEMPLATE.open("wb") as handle:
        write_po(handle, template, width=100, include_lineno=False)
    for language, folder in SUPPORTED_LANGUAGES.items():
        if language == SOURCE_LANGUAGE:
            continue
        path = catalog_path(language)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=folder, domain=DOMAIN)
            catalog.update(template, update_header_comment=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=folder, domain=DOMAIN, project="b40-bot", charset="utf-8")
            catalog.update(template)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, ignore_obsolete=True, include_lineno=False)
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages")


if __name__ == "__main__":
    main()
