"""The bot follows its chats, and its outbox survives what Telegram throws at it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select
from telegram import Update

from playground.updates import User, command, group, migrated, my_chat_member
from storage import audit, outbox
from storage.models import Chat, OutboxMessage
from storage.models import User as UserRow
from tests.conftest import SECRETARY, BotHarness, link_chat, make_delegate, replies

OLD = group(-4001234567, "B40 Democracy", supergroup=False)
NEW_ID = -1004001234567
NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
DELEGATE = User(id=55_000_001, first_name="Edona", language_code="sq")


async def test_added_removed_and_upgraded_to_supergroup(harness: BotHarness) -> None:
    harness.register(OLD)
    hello = await harness.send(my_chat_member(OLD, SECRETARY, "left", "member"))
    assert "/link" in replies(hello, OLD.id)[0]
    await link_chat(harness, OLD, "democracy-migration")

    await harness.command("/language mk", SECRETARY, OLD)
    async with harness.db.transaction() as session:
        linked = await session.get(Chat, OLD.id)
        assert linked is not None
        # Messages still owed to the old chat follow it; sent ones and other chats' stay.
        for chat_id, text in ((OLD.id, "owed"), (OLD.id, "sent"), (-42, "other")):
            await outbox.enqueue(session, chat_id=chat_id, kind=outbox.TEXT, params={"text": text})
        rows = (await session.exec(select(OutboxMessage))).all()
        sent = next(m for m in rows if m.params["text"] == "sent")
        await outbox.mark_sent(session, sent.id or 0, now=NOW)

    await harness.app.process_update(
        Update.de_json(migrated(OLD, NEW_ID, SECRETARY), harness.app.bot)
    )
    async with harness.db.transaction() as session:
        assert await session.get(Chat, OLD.id) is None
        moved = await session.get(Chat, NEW_ID)
        assert moved is not None
        assert (moved.type, moved.title, moved.group_id, moved.linked_by, moved.language) == (
            "supergroup",
            linked.title,
            linked.group_id,
            SECRETARY.id,
            "mk",
        )
        assert moved.bot_is_member is True and moved.updated_at is not None
        chats = {m.params["text"]: m.chat_id for m in (await session.exec(select(OutboxMessage)))}
        assert chats == {"owed": NEW_ID, "sent": OLD.id, "other": -42}
        trail = await audit.entries(session, action="chat.migrate")
        assert [(e.actor_id, e.subject, e.details) for e in trail] == [
            (None, str(NEW_ID), {"old": OLD.id})
        ]

    supergroup = group(NEW_ID, "B40 Democracy")
    harness.register(supergroup)
    await make_delegate(harness, DELEGATE, "Tirana")
    joined = await harness.command("/join", DELEGATE, supergroup)
    assert "Tirana" in replies(joined, NEW_ID)[0]

    await harness.send(my_chat_member(supergroup, SECRETARY, "member", "left"))
    listing = replies(await harness.command("/groups", SECRETARY))[0]
    assert "B40 Democracy" not in listing  # the bot is no longer there


async def test_a_user_who_blocks_the_bot_is_remembered(harness: BotHarness) -> None:
    await harness.send(my_chat_member(DELEGATE.private, DELEGATE, "member", "kicked"))
    async with harness.db.transaction() as session:
        row = await session.get(UserRow, DELEGATE.id)
        assert row is not None and row.blocked_at is not None
    # Restarting the bot unblocks it, as does writing to it again.
    await harness.send(my_chat_member(DELEGATE.private, DELEGATE, "kicked", "member"))
    async with harness.db.transaction() as session:
        row = await session.get(UserRow, DELEGATE.id)
        assert row is not None and row.blocked_at is None
    await harness.send(my_chat_member(DELEGATE.private, DELEGATE, "member", "kicked"))
    await harness.command("/help", DELEGATE)
    async with harness.db.transaction() as session:
        row = await session.get(UserRow, DELEGATE.id)
        assert row is not None and row.blocked_at is None


async def _outbox(harness: BotHarness) -> list[OutboxMessage]:
    async with harness.db.transaction() as session:
        return list((await session.exec(select(OutboxMessage))).all())


async def test_outbox_waits_out_a_429_and_then_delivers(harness: BotHarness) -> None:
    harness.telegram.rate_limit(retry_after=7, chat_id=SECRETARY.id)
    await harness.command("/iam Varna", DELEGATE)
    [message] = await _outbox(harness)
    # Flood control uses up no attempt: it only makes that chat wait.
    assert message.sent_at is None and message.attempts == 0 and message.failed_at is None
    assert 6 <= (message.not_before - message.created_at).total_seconds() <= 60
    # Not due yet: nothing is sent.
    assert await harness.app.outbox.deliver_due() == 0
    async with harness.db.transaction() as session:
        row = await session.get(OutboxMessage, message.id)
        assert row is not None
        row.not_before = row.created_at
    assert await harness.app.outbox.deliver_due() == 1
    assert "Varna" in harness.telegram.texts(SECRETARY.id)[-1]


async def test_a_429_pauses_only_that_chat(harness: BotHarness) -> None:
    other = User(id=55_000_009, first_name="Iva", language_code="bg")
    async with harness.db.transaction() as session:
        for chat_id in (SECRETARY.id, other.id, SECRETARY.id):
            await outbox.enqueue(session, chat_id=chat_id, kind=outbox.TEXT, params={"text": "x"})
    harness.telegram.rate_limit(retry_after=30, chat_id=SECRETARY.id)
    assert await harness.app.outbox.deliver_due() == 1
    assert harness.telegram.texts(other.id) == ["x"]
    # The secretary's first message met the 429; the second was not even tried.
    assert len(harness.telegram.sent(SECRETARY.id)) == 1
    waiting = [m for m in await _outbox(harness) if m.chat_id == SECRETARY.id]
    assert [m.attempts for m in waiting] == [0, 0] and all(m.sent_at is None for m in waiting)
    assert all(m.leased_until is None for m in waiting)


async def test_outbox_gives_up_on_a_user_who_blocked_the_bot(harness: BotHarness) -> None:
    await make_delegate(harness, DELEGATE, "Durrës")
    harness.telegram.block(DELEGATE.id)
    await link_chat(harness, group(-1007770001, "B40 Economy"), "economy")
    await harness.command(
        f"/coordinator {DELEGATE.id}", SECRETARY, group(-1007770001, "B40 Economy")
    )
    notices = [m for m in await _outbox(harness) if m.chat_id == DELEGATE.id]
    assert notices[-1].kind == "group.coordinator"
    assert notices[-1].failed_at is not None and "blocked" in (notices[-1].error or "")
    async with harness.db.transaction() as session:
        row = await session.get(UserRow, DELEGATE.id)
        assert row is not None and row.blocked_at is not None


async def test_a_403_in_a_group_marks_the_group_not_the_sender(harness: BotHarness) -> None:
    """Finding 6: a reply refused in a group marked its sender as having blocked the bot."""
    chat = group(-1007770002, "B40 Smart Cities")
    await link_chat(harness, chat, "smart-cities")
    harness.telegram.fail(
        "sendMessage", chat_id=chat.id, status=403, description="Forbidden: bot was kicked"
    )
    await harness.command("/roster", DELEGATE, chat)
    async with harness.db.transaction() as session:
        user = await session.get(UserRow, DELEGATE.id)
        stored = await session.get(Chat, chat.id)
    assert user is not None and user.blocked_at is None
    assert stored is not None and stored.bot_is_member is False


async def test_outbox_follows_a_migrated_chat(harness: BotHarness) -> None:
    harness.register(OLD)
    await link_chat(harness, OLD, "climate")
    harness.telegram.migrate(OLD.id, NEW_ID)
    async with harness.db.transaction() as session:
        await outbox.enqueue(
            session, chat_id=OLD.id, kind=outbox.TEXT, params={"text": "Session moved."}
        )
    assert await harness.app.outbox.deliver_due() == 1
    assert harness.telegram.texts(NEW_ID) == ["Session moved."]
    async with harness.db.transaction() as session:
        moved = await session.get(Chat, NEW_ID)
        assert moved is not None and moved.group_id is not None
        assert await session.get(Chat, OLD.id) is None


async def test_a_notice_speaks_the_language_its_reader_has_at_delivery(
    harness: BotHarness,
) -> None:
    """Rendered when delivered: a secretary who switched to Turkish reads Turkish."""
    await harness.command("/language en", SECRETARY)
    # The claim is processed but its notice not yet delivered ...
    await harness.app.process_update(
        Update.de_json(command("/iam Varna", DELEGATE), harness.app.bot)
    )
    # ... when the secretary switches language; the notice goes out after that update.
    await harness.command("/language tr", SECRETARY)
    text = harness.telegram.texts(SECRETARY.id)[-1]
    assert "Varna" in text and "/approve" in text
    assert "New delegate request" not in text


@pytest.mark.parametrize(
    ("status", "description"),
    [(500, "Internal Server Error"), (502, "Bad Gateway")],
)
async def test_a_reply_that_meets_a_5xx_waits_in_the_outbox(
    harness: BotHarness, status: int, description: str
) -> None:
    harness.telegram.fail(
        "sendMessage", chat_id=DELEGATE.id, status=status, description=description
    )
    calls = await harness.command("/help", DELEGATE)
    assert [c.method for c in calls] == ["sendMessage"]  # tried once, inline; not yet delivered
    [waiting] = await _outbox(harness)
    assert waiting.chat_id == DELEGATE.id and waiting.sent_at is None
    assert 4 <= (waiting.not_before - waiting.created_at).total_seconds() <= 10
    help_text = waiting.params["text"]
    assert "/start" in help_text
    assert await harness.app.outbox.deliver_due() == 0  # not due yet
    async with harness.db.transaction() as session:
        row = await session.get(OutboxMessage, waiting.id)
        assert row is not None
        row.not_before = row.created_at
    assert await harness.app.outbox.deliver_due() == 1
    assert harness.telegram.texts(DELEGATE.id) == [help_text, help_text]  # the failed try, then it
    assert harness.telegram.statuses[-1] == 200
    assert await harness.app.outbox.deliver_due() == 0  # once


async def test_a_reply_telegram_refuses_is_not_tried_again(harness: BotHarness) -> None:
    harness.telegram.fail(
        "sendMessage", chat_id=DELEGATE.id, status=400, description="Bad Request: chat not found"
    )
    await harness.command("/help", DELEGATE)
    assert await _outbox(harness) == []
