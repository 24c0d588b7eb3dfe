"""Working groups in chat: joining and leaving, the audit trail, proposals, notices."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlmodel import select

from bot.application import build_application
from playground.emulator import EmulatorRequest, TelegramEmulator
from playground.updates import User, group, migrated, my_chat_member
from storage import audit, outbox
from storage.models import Chat, GroupMembership, OutboxMessage
from tests.conftest import SECRETARY, BotHarness, link_chat, make_delegate, replies, settings_for

CHAT = group(-1006660001, "B40 Smart Cities")
MILA = User(id=66_100_001, first_name="Mila", language_code="en")
PRESIDENT = User(id=66_100_002, first_name="Kiril", language_code="en")


async def _memberships(harness: BotHarness) -> list[tuple[int, int]]:
    async with harness.db.transaction() as session:
        rows = (await session.exec(select(GroupMembership))).all()
        return [(row.group_id, row.city_id) for row in rows]


async def _group_of(harness: BotHarness, chat_id: int) -> int | None:
    async with harness.db.transaction() as session:
        chat = await session.get(Chat, chat_id)
        return chat.group_id if chat else None


async def test_join_and_leave_change_the_roster_and_the_audit_log(harness: BotHarness) -> None:
    await link_chat(harness, CHAT, "smart-cities")
    other = group(-1009990002, "B40 Economy")
    await link_chat(harness, other, "economy")
    await make_delegate(harness, MILA, "Skopje")
    assert "joined" in replies(await harness.command("/join", MILA, CHAT))[0]
    assert "joined" in replies(await harness.command("/join", MILA, other))[0]
    assert len(await _memberships(harness)) == 2
    left = replies(await harness.command("/leave", MILA, CHAT))
    assert left == [
        "Skopje (North Macedonia) left <b>Smart Cities and Digital Transformation</b> "
        "(smart-cities)."
    ]
    # Skopje left this group only.
    [kept] = await _memberships(harness)
    assert kept[0] == (await _group_of(harness, other.id))
    roster = replies(await harness.command("/roster", MILA, CHAT))[0]
    assert "Skopje" not in roster and "no member cities yet" in roster
    async with harness.db.transaction() as session:
        entries = await audit.entries(session)
        trail = [(e.action, e.subject, e.details.get("city")) for e in entries]
    assert {e.actor_id for e in entries if e.action in ("group.join", "group.leave")} == {MILA.id}
    assert ("group.join", "smart-cities", "Skopje") in trail
    assert ("group.leave", "smart-cities", "Skopje") in trail
    assert trail.index(("group.join", "smart-cities", "Skopje")) < trail.index(
        ("group.leave", "smart-cities", "Skopje")
    )


async def test_the_presidency_is_asked_when_the_secretariat_proposes(harness: BotHarness) -> None:
    await make_delegate(harness, PRESIDENT, "Sofia", "mayor")
    await harness.command("/presidency 2026 Sofia", SECRETARY)
    await harness.command("/newgroup water Water and Energy", SECRETARY)
    ask = harness.telegram.sent(PRESIDENT.id)[-1]
    assert ask.text == (
        "A new working group is proposed: <b>Water and Energy</b> (water). Confirm to create it."
    )
    confirm = [data for _label, data in ask.buttons() if data.startswith("ng:ok:")]
    created = await harness.press(confirm[0], PRESIDENT, on=ask)
    assert "is created" in replies(created, PRESIDENT.id)[-1]


async def test_a_migrated_group_keeps_its_language_and_link(harness: BotHarness) -> None:
    old = group(-4006660002, "B40 Economy", supergroup=False)
    await link_chat(harness, old, "economy")
    await harness.command("/language sq", SECRETARY, old)
    await harness.send(migrated(old, -1004006660002, SECRETARY))
    async with harness.db.transaction() as session:
        moved = await session.get(Chat, -1004006660002)
    assert moved is not None and moved.language == "sq" and moved.group_id is not None


async def test_an_update_that_writes_a_notice_wakes_the_outbox(harness: BotHarness) -> None:
    woken: list[bool] = []
    harness.app.deps.outbox_written = lambda: woken.append(True)
    await harness.command("/cities", MILA)
    assert woken == []  # nothing owed, nobody woken
    await harness.command("/iam Skopje", MILA)
    assert woken == [True]


async def test_the_outbox_job_delivers_by_itself(harness: BotHarness) -> None:
    """The jobs run in this test: the repeating outbox job, not the test, sends the notice."""
    telegram = TelegramEmulator()
    app = build_application(
        settings_for(harness.db),
        harness.db,
        request=EmulatorRequest(telegram),
        clock=lambda: datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
        rate_limiter=True,
        jobs=True,
    )
    async with harness.db.transaction() as session:
        await outbox.enqueue(session, chat_id=MILA.id, kind=outbox.TEXT, params={"text": "Hi"})
    async with app:
        await app.start()
        try:
            for _ in range(40):
                if telegram.texts(MILA.id):
                    break
                await asyncio.sleep(0.1)
        finally:
            await app.stop()
    assert telegram.texts(MILA.id) == ["Hi"]
    async with harness.db.transaction() as session:
        [row] = (await session.exec(select(OutboxMessage))).all()
    assert row.sent_at is not None


async def test_groups_lists_every_group_its_cities_by_country_and_its_chat(
    harness: BotHarness,
) -> None:
    reader = User(id=66_000_100, first_name="Lena", language_code="en")
    climate = group(-1006600001, "B40 Climate")
    economy = group(-1006600002, "B40 Economy & Trade")
    await link_chat(harness, climate, "climate")
    await link_chat(harness, economy, "economy")
    for n, city in enumerate(("Sofia", "Athens", "Burgas")):
        delegate = User(id=66_000_101 + n, first_name=f"D{n}", language_code="en")
        await make_delegate(harness, delegate, city)
        await harness.command("/join", delegate, climate)
        if city == "Athens":
            await harness.command("/join", delegate, economy)
    [listing] = replies(await harness.command("/groups", reader))
    assert listing == (
        "<b>Working groups</b>\n\n"
        "<b>Local Climate Action</b> (climate)\n"
        "3 cities: Burgas, Sofia, Athens\n"  # Bulgaria's, then Greece's
        "Chat: B40 Climate\n\n"
        "<b>Local Democracy and Migration</b> (democracy-migration)\n"
        "No member cities yet.\nNo chat linked yet.\n\n"
        "<b>Smart Cities and Digital Transformation</b> (smart-cities)\n"
        "No member cities yet.\nNo chat linked yet.\n\n"
        "<b>Local Economic and Cultural Cooperation</b> (economy)\n"
        "1 city: Athens\n"
        "Chat: B40 Economy &amp; Trade"
    )
    # A chat the bot was removed from is no longer listed.
    await harness.send(my_chat_member(economy, SECRETARY, "member", "left"))
    [after] = replies(await harness.command("/groups", reader))
    assert after.endswith("1 city: Athens\nNo chat linked yet.")
