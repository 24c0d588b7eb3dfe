"""What the secretariat does is on record: the exact replies, the stored decision and the
audit trail (who, what, on whom), for staff changes and membership applications."""

from __future__ import annotations

from sqlmodel import col, select

from playground.updates import User
from storage import audit
from storage.models import (
    City,
    MembershipApplication,
    OutboxMessage,
    SecretariatMember,
    WorkingGroup,
)
from tests.conftest import SECRETARY, BotHarness, make_delegate, replies

NEW_STAFF = 123_456_789
OHRID = User(id=88_000_001, first_name="Ana", language_code="en")
BITOLA = User(id=88_000_002, first_name="Goce", language_code="en")


async def _english(harness: BotHarness) -> None:
    """The secretary reads English here, so the replies can be read in the test."""
    await harness.command("/language en", SECRETARY)


async def _trail(harness: BotHarness) -> list[tuple[str, int | None, str, dict[str, object]]]:
    async with harness.db.transaction() as session:
        return [(e.action, e.actor_id, e.subject, e.details) for e in await audit.entries(session)]


async def test_staff_changes_say_what_they_did_and_are_on_record(harness: BotHarness) -> None:
    await _english(harness)
    say = harness.command
    assert replies(await say(f"/secretariat add {NEW_STAFF}", SECRETARY)) == [
        f"User {NEW_STAFF} is now in the secretariat."
    ]
    assert replies(await say(f"/secretariat add {NEW_STAFF}", SECRETARY)) == [
        f"User {NEW_STAFF} is already in the secretariat."
    ]
    listing = replies(await say("/secretariat", SECRETARY))[0]
    assert listing.startswith("<b>The secretariat</b>\n• ")
    assert f" — {NEW_STAFF}\n" in listing or listing.endswith(f" — {NEW_STAFF}")
    assert f"Ayşe Yılmaz (@ayse_sec) — {SECRETARY.id}" in listing
    assert replies(await say(f"/secretariat remove {NEW_STAFF}", SECRETARY)) == [
        f"User {NEW_STAFF} is no longer in the secretariat."
    ]
    assert replies(await say(f"/secretariat remove {NEW_STAFF}", SECRETARY)) == [
        f"User {NEW_STAFF} is not in the secretariat."
    ]
    [bootstrap] = replies(await say(f"/secretariat remove {SECRETARY.id}", SECRETARY))
    assert str(SECRETARY.id) in bootstrap and "B40_SECRETARIAT" in bootstrap
    [usage] = replies(await say("/secretariat promote 5", SECRETARY))
    assert usage == "Use /secretariat add &lt;user id&gt; or /secretariat remove &lt;user id&gt;."
    async with harness.db.transaction() as session:
        staff = (await session.exec(select(SecretariatMember))).all()
    assert [m.user_id for m in staff] == []  # the bootstrap member lives in the settings
    assert [t for t in await _trail(harness) if t[0].startswith("secretariat.")] == [
        ("secretariat.add", SECRETARY.id, str(NEW_STAFF), {}),
        ("secretariat.remove", SECRETARY.id, str(NEW_STAFF), {}),
    ]


async def test_applications_decided_are_stored_told_and_on_record(harness: BotHarness) -> None:
    await _english(harness)
    thanked = replies(await harness.command("/apply Ohrid, MK, Europe/Skopje", OHRID), OHRID.id)
    assert thanked == [
        "Thank you! The secretariat will consider the application of "
        "Ohrid (North Macedonia, Europe/Skopje)."
    ]
    await harness.command("/apply Bitola, MK, Europe/Skopje", BITOLA)
    notices = [c for c in harness.telegram.sent(SECRETARY.id) if c.buttons()]
    # The secretariat is told who asks, with the applicant's name from Telegram.
    assert notices[-2].text == (
        "Ana asks for Ohrid (North Macedonia, Europe/Skopje) to join the network."
    )
    admit = next(d for _l, d in notices[-2].buttons() if d.startswith("app:ok:"))
    decline = next(d for _l, d in notices[-1].buttons() if d.startswith("app:no:"))
    admitted = await harness.press(admit, SECRETARY, on=notices[-2])
    declined = await harness.press(decline, SECRETARY, on=notices[-1])
    # The notice is redrawn with the decision, in place of its buttons.
    assert [c.text for c in admitted if c.method == "editMessageText"] == [
        "Admitted: Ohrid (North Macedonia, Europe/Skopje) is a member city."
    ]
    assert [c.text for c in declined if c.method == "editMessageText"] == [
        "Declined: the application of Bitola (North Macedonia, Europe/Skopje)."
    ]
    assert harness.telegram.texts(OHRID.id)[-1].startswith("Welcome to the B40 network: Ohrid")
    assert harness.telegram.texts(BITOLA.id)[-1] == (
        "The secretariat declined the application of Bitola (North Macedonia, Europe/Skopje) "
        "for now."
    )
    async with harness.db.transaction() as session:
        rows = (
            await session.exec(
                select(MembershipApplication).order_by(col(MembershipApplication.id))
            )
        ).all()
        ohrid = (await session.exec(select(City).where(City.name == "Ohrid"))).one()
        told = (
            await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.kind).startswith("application."))
                .order_by(col(OutboxMessage.id))
            )
        ).all()
    assert [(r.city_name, r.status, r.decided_by, r.city_id) for r in rows] == [
        ("Ohrid", "admitted", SECRETARY.id, ohrid.id),
        ("Bitola", "declined", SECRETARY.id, None),
    ]
    assert all(r.decided_at is not None for r in rows)
    decided = [(m.chat_id, m.kind, m.dedupe_key) for m in told if m.chat_id != SECRETARY.id]
    assert decided == [
        (OHRID.id, "application.admitted", f"application-decided:{rows[0].id}"),
        (BITOLA.id, "application.declined", f"application-decided:{rows[1].id}"),
    ]
    # The admitted city is on record as added by the secretary who admitted it.
    assert [t for t in await _trail(harness) if t[0] == "city.add" and t[2] == "Ohrid"] == [
        ("city.add", SECRETARY.id, "Ohrid", {"country": "MK"})
    ]
    assert [t for t in await _trail(harness) if t[0].startswith("application.")] == [
        ("application.create", OHRID.id, "Ohrid", {}),
        ("application.create", BITOLA.id, "Bitola", {}),
        ("application.admit", SECRETARY.id, "Ohrid", {}),
        ("application.decline", SECRETARY.id, "Bitola", {}),
    ]
    # A decision twice says it was taken, as an alert on the button.
    again = await harness.press(admit, SECRETARY, on=notices[-2])
    [alert] = [c.params for c in again if c.method == "answerCallbackQuery"]
    assert alert["text"] == "The application of Ohrid was already decided."
    assert alert["show_alert"] is True


async def test_a_new_group_is_proposed_asked_confirmed_and_on_record(harness: BotHarness) -> None:
    president = User(id=88_000_010, first_name="Ivan", language_code="en")
    colleague = User(id=88_000_011, first_name="Maria", language_code="en")
    await harness.command("/presidency 2026 Sofia", SECRETARY)
    for person in (president, colleague):
        await make_delegate(harness, person, "Sofia", "mayor")
    await _english(harness)
    await harness.command("/newgroup water Water and Energy", SECRETARY)
    # Every delegate of the presiding city is asked, once each, with a Confirm button.
    async with harness.db.transaction() as session:
        asked = (
            await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "group.proposed")
                .order_by(col(OutboxMessage.chat_id))
            )
        ).all()
    assert [(m.chat_id, m.dedupe_key) for m in asked] == [
        (president.id, f"proposed:{asked[0].params['group_id']}:{president.id}"),
        (colleague.id, f"proposed:{asked[0].params['group_id']}:{colleague.id}"),
    ]
    notice = harness.telegram.sent(colleague.id)[-1]
    confirm = next(d for _l, d in notice.buttons() if d.startswith("ng:ok:"))
    done = await harness.press(confirm, colleague, on=notice)
    assert replies(done)[-1] == "Working group <b>Water and Energy</b> (water) is created."
    async with harness.db.transaction() as session:
        created = (
            await session.exec(select(WorkingGroup).where(WorkingGroup.slug == "water"))
        ).one()
    assert (created.status, created.proposed_by, created.confirmed_by) == (
        "active",
        SECRETARY.id,
        colleague.id,
    )
    assert [t for t in await _trail(harness) if t[0].startswith("group.")] == [
        ("group.propose", SECRETARY.id, "water", {"name": "Water and Energy"}),
        ("group.create", colleague.id, "water", {}),
    ]


async def test_an_application_for_a_member_or_waiting_city_is_refused_by_name(
    harness: BotHarness,
) -> None:
    [member] = replies(await harness.command("/apply SOFIA, BG, Europe/Sofia", OHRID), OHRID.id)
    assert member == "Sofia is already a member city of the network."
    await harness.command("/apply Ohrid, MK, Europe/Skopje", OHRID)
    [waiting] = replies(await harness.command("/apply ohrid, mk, Europe/Skopje", BITOLA), BITOLA.id)
    assert waiting == "Ohrid has already applied; the secretariat will answer soon."
    # The same name in another country is another city.
    [other] = replies(
        await harness.command("/apply Sofia, RO, Europe/Bucharest", BITOLA), BITOLA.id
    )
    assert other.startswith("Thank you!") and "Sofia (Romania, Europe/Bucharest)" in other
