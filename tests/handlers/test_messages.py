"""Every refusal a service or the planner can raise has words, in every language."""

from __future__ import annotations

import re
import string
from datetime import date, time

import pytest

import scheduler.errors
from handlers import errors as handler_errors
from locales import SUPPORTED_LANGUAGES, use_language
from storage import errors


def _all_errors() -> list[type[errors.DomainError]]:
    found: list[type[errors.DomainError]] = []
    pending = [errors.DomainError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return sorted(set(found), key=lambda e: (e.__module__, e.__name__))


SPECIAL = {"NotAllowed", "GroupAlreadyProposed", "InvalidWindow"}


def _params_for(template: str) -> dict[str, object]:
    names = {field for _t, field, _f, _c in string.Formatter().parse(template) if field}
    values: dict[str, object] = {name: f"<{name}&>" for name in names}
    # Typed values where the error carries them.
    values.update(
        {k: v for k, v in {"date": date(2026, 3, 29), "time": time(3, 30)}.items() if k in names}
    )
    return values


@pytest.mark.parametrize("error", _all_errors(), ids=lambda e: e.__name__)
def test_every_domain_error_has_a_message(error: type[errors.DomainError]) -> None:
    if error.__name__ in SPECIAL:
        return
    assert error in handler_errors.MESSAGES, f"{error.__name__} has no message"


@pytest.mark.parametrize("language", sorted(SUPPORTED_LANGUAGES))
@pytest.mark.parametrize(
    "error", [e for e in _all_errors() if e.__name__ not in SPECIAL], ids=lambda e: e.__name__
)
def test_every_message_renders_escaped_in_every_language(
    error: type[errors.DomainError], language: str
) -> None:
    params = _params_for(handler_errors.MESSAGES[error])
    with use_language(language):
        text = handler_errors.message_for(error(**params))
    assert text
    # Whatever a person typed is shown escaped, never as markup.
    assert "<" not in re.sub(r"&lt;|<b>|</b>", "", text), text
    for name, value in params.items():
        if isinstance(value, str):
            assert f"&lt;{name}&amp;&gt;" in text, (name, text)


@pytest.mark.parametrize("reason", ["end_before_start", "too_long", "past"])
def test_window_reasons_have_messages(reason: str) -> None:
    error = scheduler.errors.InvalidWindow(
        reason=reason, start=date(2026, 3, 27), end=date(2026, 3, 23), days=400, max=366
    )
    text = handler_errors.message_for(error)
    assert text and "{" not in text
