"""What the broadcast service decides without Telegram: why a recipient was not reached,
read from what Telegram said."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from storage import broadcasts, errors
from storage.broadcasts import reason
from storage.db import Database
from storage.models import Audience, Broadcast, GroupStatus, WorkingGroup
from storage.roles import Actor


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


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AUTHOR = Actor(user_id=11_000_001, is_secretariat=True)


async def test_a_draft_with_no_audience_or_an_empty_one_is_not_confirmed(
    seeded: Database,
) -> None:
    async with seeded.transaction() as session:
        draft = await broadcasts.draft(
            session, actor=AUTHOR, text="Hello", parts=1, chat_id=AUTHOR.user_id, now=NOW
        )
        number = draft.id or 0
        with pytest.raises(errors.NoAudience) as none:
            await broadcasts.confirm(
                session, actor=AUTHOR, broadcast_id=number, expected=0, now=NOW
            )
        await broadcasts.choose(
            session, actor=AUTHOR, broadcast_id=number, audience=Audience.COUNTRIES, toggle="MD"
        )
        with pytest.raises(errors.NoRecipients) as empty:  # no delegate of Moldova yet
            await broadcasts.confirm(
                session, actor=AUTHOR, broadcast_id=number, expected=0, now=NOW
            )
        with pytest.raises(errors.NotAllowed):
            await broadcasts.confirm(
                session, actor=Actor(user_id=5), broadcast_id=number, expected=0, now=NOW
            )
        with pytest.raises(errors.UnknownCountry):
            await broadcasts.choose(
                session, actor=AUTHOR, broadcast_id=number, audience=Audience.COUNTRIES, toggle="ZZ"
            )
        with pytest.raises(errors.UnknownGroup):
            await broadcasts.choose(
                session,
                actor=AUTHOR,
                broadcast_id=number,
                audience=Audience.SOME_GROUPS,
                toggle="x",
            )
        with pytest.raises(errors.UnknownBroadcast) as unknown:
            await broadcasts.get(session, number + 1)
        stored = await broadcasts.get(session, number)
    assert none.value.params == {"number": number}
    assert empty.value.params == {"number": number}
    assert unknown.value.params == {"number": number + 1}
    assert (stored.state, stored.audience, stored.targets) == ("draft", "countries", ["MD"])


@pytest.mark.parametrize(("text", "parts"), [("   ", 1), ("x", 5)])
async def test_an_empty_or_too_long_draft_is_refused(
    seeded: Database, text: str, parts: int
) -> None:
    async with seeded.transaction() as session:
        with pytest.raises((errors.EmptyBroadcast, errors.BroadcastTooLong)) as refused:
            await broadcasts.draft(
                session, actor=AUTHOR, text=text, parts=parts, chat_id=1, now=NOW
            )
        assert (await session.exec(select(Broadcast))).all() == []
    if parts > broadcasts.MAX_PARTS:
        assert refused.value.params == {"parts": broadcasts.MAX_PARTS}


async def test_only_an_active_group_can_be_chosen(seeded: Database) -> None:
    async with seeded.transaction() as session:
        session.add(WorkingGroup(slug="water", name="Water", status=GroupStatus.PROPOSED.value))
        draft = await broadcasts.draft(
            session, actor=AUTHOR, text="Hello", parts=1, chat_id=AUTHOR.user_id, now=NOW
        )
        with pytest.raises(errors.UnknownGroup) as refused:
            await broadcasts.choose(
                session,
                actor=AUTHOR,
                broadcast_id=draft.id or 0,
                audience=Audience.SOME_GROUPS,
                toggle="water",
            )
        chosen = await broadcasts.choose(
            session,
            actor=AUTHOR,
            broadcast_id=draft.id or 0,
            audience=Audience.SOME_GROUPS,
            toggle="climate",
        )
    assert refused.value.params == {"slug": "water"}
    assert chosen.targets == ["climate"]


def test_a_broadcast_stopped_by_its_author_is_its_own_reason() -> None:
    assert reason(broadcasts.STOPPED_BY_AUTHOR) == broadcasts.STOPPED
