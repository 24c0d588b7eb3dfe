"""What the broadcast service decides without Telegram: why a recipient was not reached,
read from what Telegram said."""

from __future__ import annotations

import pytest

from storage import broadcasts
from storage.broadcasts import reason


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("Forbidden: bot was blocked by the user", broadcasts.BLOCKED),
        ("Forbidden: bot was kicked from the group chat", broadcasts.REMOVED),
        ("Forbidden: bot was kicked from the supergroup chat", broadcasts.REMOVED),
        ("Forbidden: bot is not a member of the supergroup chat", broadcasts.REMOVED),
        (broadcasts.KNOWN_REMOVED, broadcasts.REMOVED),
        ("Forbidden: bot can't initiate conversation with a user", broadcasts.NOT_STARTED),
        ("Forbidden: user is deactivated", broadcasts.DEACTIVATED),
        ("Bad Request: chat not found", broadcasts.NOT_FOUND),
        ("Bad Request: can't parse entities: unsupported start tag", broadcasts.REFUSED),
        ("Bad Request: message is too long", broadcasts.REFUSED),
        ("Timed out", broadcasts.GAVE_UP),
        ("Bad Gateway", broadcasts.GAVE_UP),
        ("", broadcasts.GAVE_UP),
        (None, broadcasts.GAVE_UP),
        (broadcasts.KNOWN_BLOCKED, broadcasts.UNREACHABLE),
    ],
)
def test_every_answer_telegram_gives_has_its_reason(error: str | None, expected: str) -> None:
    assert reason(error) == expected


def test_a_reason_is_read_whatever_the_case() -> None:
    assert reason("FORBIDDEN: BOT WAS BLOCKED BY THE USER") == broadcasts.BLOCKED
