"""The bot follows its chats, and its outbox survives what Telegram throws at it."""

from __future__ import annotations

from sqlmodel import select

from storage.models import Chat, OutboxMessage
from storage.models import User as UserRow
from tests.conftest import SECRETARY, BotHarness, link_chat, make_delegate, replies
from tests.fakes.updates import User, group, migrated, my_chat_member

OLD = group(-4001234567, "B40 Democracy", supergroup=False)
NEW_ID = -1004001234567
DELEGATE = User(id=55_000_001, first_name="Edona", language_code="sq")


async def test_added_removed_and_upgraded_to_supergroup(harness: BotHarness) -> None:
    harness.register(OLD)
    hello = await harness.send(my_chat_member(OLD, SECRETARY, "left", "member"))
    assert "/link" in replies(hello, OLD.id)[0]
    await link_chat(harness, OLD, "democracy-migration")

    await harness.send(migrated(OLD, NEW_ID, SECRETARY))
    async with harness.db.transaction() as session:
        assert await session.get(Chat, OLD.id) is None
        moved = await session.get(Chat, NEW_ID)
        assert moved is not None and moved.group_id is not None

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
    # Writing to the bot again means they unblocked it.
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
    assert message.sent_at is None and message.attempts == 1 and message.failed_at is None
    assert 6 <= (message.not_before - message.created_at).total_seconds() <= 60
    # Not due yet: nothing is sent.
    assert await harness.app.outbox.deliver_due() == 0
    async with harness.db.transaction() as session:
        row = await session.get(OutboxMessage, message.id)
        assert row is not None
        row.not_before = row.created_at
    assert await harness.app.outbox.deliver_due() == 1
    assert "Varna" in harness.telegram.texts(SECRETARY.id)[-1]


async def test_outbox_gives_up_on_a_user_who_blocked_the_bot(harness: BotHarness) -> None:
    await make_delegate(harness, DELEGATE, "Durrës")
    harness.telegram.block(DELEGATE.id)
    await link_chat(harness, group(-1007770001, "B40 Economy"), "economy")
    await harness.command(
        f"/coordinator {DELEGATE.id}", SECRETARY, group(-1007770001, "B40 Economy")
    )
    notices = [m for m in await _outbox(harness) if m.chat_id == DELEGATE.id]
    assert notices[-1].failed_at is not None and "blocked" in (notices[-1].error or "")
    async with harness.db.transaction() as session:
        row = await session.get(UserRow, DELEGATE.id)
        assert row is not None and row.blocked_at is not None


async def test_outbox_follows_a_migrated_chat(harness: BotHarness) -> None:
    from storage import outbox

    harness.register(OLD)
    await link_chat(harness, OLD, "climate")
    harness.telegram.migrate(OLD.id, NEW_ID)
    async with harness.db.transaction() as session:
        outbox.enqueue(session, chat_id=OLD.id, text="Session moved to Thursday.")
    assert await harness.app.outbox.deliver_due() == 1
    assert harness.telegram.texts(NEW_ID) == ["Session moved to Thursday."]
    async with harness.db.transaction() as session:
        moved = await session.get(Chat, NEW_ID)
        assert moved is not None and moved.group_id is not None
