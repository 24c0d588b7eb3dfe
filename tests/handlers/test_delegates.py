"""Claims and decisions through the real bot: each decision names the claim it decides."""

from __future__ import annotations

import pytest
from sqlmodel import select

from playground.updates import User
from storage.models import Delegate, OutboxMessage
from tests.conftest import SECRETARY, BotHarness, approve_button, replies, snapshot

EVE = User(id=88_000_001, first_name="Eve", language_code="en")
ANA = User(id=88_000_002, first_name="Ana\nApprove with /approve 910001", language_code="en")


@pytest.fixture(autouse=True)
async def english_secretary(harness: BotHarness) -> None:
    """The secretary's app speaks Turkish; these tests read English."""
    await harness.command("/language en", SECRETARY)


async def _claims(harness: BotHarness) -> dict[int, tuple[str, str]]:
    async with harness.db.transaction() as session:
        rows = (await session.exec(select(Delegate))).all()
        return {row.id or 0: (row.status, row.role) for row in rows}


async def test_approve_on_an_old_notice_does_not_approve_a_newer_claim(
    harness: BotHarness,
) -> None:
    """Finding 13: Eve claims Zagreb, re-claims Sofia, the secretariat presses Approve on
    the Zagreb notice: before, Eve became a delegate of Sofia."""
    await harness.command("/iam Zagreb", EVE)
    zagreb_notice, zagreb_approve = approve_button(harness, EVE.id)
    assert "Zagreb" in zagreb_notice.text
    await harness.command("/iam Sofia", EVE)
    before = await snapshot(harness.db)
    pressed = await harness.press(zagreb_approve, SECRETARY, on=zagreb_notice)
    [answer] = [c for c in pressed if c.method == "answerCallbackQuery"]
    assert "no longer waiting" in answer.params["text"]
    assert await snapshot(harness.db) == before
    assert sorted(status for status, _role in (await _claims(harness)).values()) == [
        "pending",
        "withdrawn",
    ]


async def test_reject_rejects_and_tells_the_person(harness: BotHarness) -> None:
    await harness.command("/iam Varna", EVE)
    [claim] = await _claims(harness)
    done = await harness.command(f"/reject {claim}", SECRETARY)
    assert replies(done, SECRETARY.id) == [
        f"Rejected request #{claim}: Eve is not a delegate of Varna (Bulgaria)."
    ]
    assert (await _claims(harness))[claim] == ("rejected", "focal_point")
    assert harness.telegram.texts(EVE.id)[-1] == (
        "The secretariat did not approve your request to represent Varna (Bulgaria). "
        "If this is a mistake, please contact the secretariat."
    )
    # A rejected user who re-claims at once is told to talk to the secretariat (finding 14),
    # and the secretariat is not notified again.
    notices = len(harness.telegram.sent(SECRETARY.id))
    again = replies(await harness.command("/iam Varna", EVE), EVE.id)
    assert len(again) == 1 and "contact the secretariat before you ask again" in again[0]
    assert len(harness.telegram.sent(SECRETARY.id)) == notices


async def test_a_repeated_claim_notifies_the_secretariat_once(harness: BotHarness) -> None:
    """Finding 7: every repeated /iam notified every secretariat member again."""
    await harness.command("/iam Varna", EVE)
    again = replies(await harness.command("/iam Varna", EVE), EVE.id)
    assert "already waiting" in again[0]
    notices = [c for c in harness.telegram.sent(SECRETARY.id) if "Varna" in c.text]
    assert len(notices) == 1


async def test_a_focal_point_becomes_mayor_only_when_approved(harness: BotHarness) -> None:
    """Finding 14: `/iam Belgrade mayor` made an approved focal point mayor at once."""
    await harness.command("/iam Belgrade", EVE)
    notice, approve = approve_button(harness, EVE.id)
    await harness.press(approve, SECRETARY, on=notice)
    asked = replies(await harness.command("/iam Belgrade mayor", EVE), EVE.id)
    assert "until then you remain focal point" in asked[0]
    roles = dict((await _claims(harness)).values())
    assert roles == {"approved": "focal_point", "pending": "mayor"}
    change, approve_change = approve_button(harness, EVE.id)
    assert change.text.startswith("Role change request #")
    await harness.press(approve_change, SECRETARY, on=change)
    roles = dict((await _claims(harness)).values())
    assert roles == {"superseded": "focal_point", "approved": "mayor"}


async def test_a_newline_in_a_name_cannot_forge_a_line(harness: BotHarness) -> None:
    """Finding 16: a newline in a Telegram name started a fake line in the notice."""
    await harness.command("/iam Varna", ANA)
    notice = harness.telegram.sent(SECRETARY.id)[-1].text
    lines = notice.splitlines()
    assert len(lines) == 1
    assert "Ana Approve with /approve 910001, user id 88000002" in notice


async def test_approve_takes_a_request_number(harness: BotHarness) -> None:
    await harness.command("/iam Varna", EVE)
    [claim] = await _claims(harness)
    for bad in ("/approve 88000001", "/approve 999"):
        text = replies(await harness.command(bad, SECRETARY), SECRETARY.id)[0]
        assert "no delegate request #" in text and "/secretariat" in text
    done = replies(await harness.command(f"/approve #{claim}", SECRETARY), SECRETARY.id)
    assert done == [
        f"Approved request #{claim}: Eve is a delegate of Varna (Bulgaria) as focal point."
    ]
    async with harness.db.transaction() as session:
        kinds = [m.kind for m in (await session.exec(select(OutboxMessage))).all()]
    assert kinds == ["delegate.claimed", "delegate.approved"]


async def test_the_secretariat_sees_the_requests_waiting_oldest_first(harness: BotHarness) -> None:
    bojan = User(id=88_000_003, first_name="Bojan", username="bojan_sk", language_code="mk")
    await harness.command("/iam Varna", EVE)
    await harness.command("/iam Skopje mayor", bojan)
    claims = sorted(await _claims(harness))
    listing = replies(await harness.command("/secretariat", SECRETARY), SECRETARY.id)[0]
    waiting = listing.split("<b>Waiting for approval</b>\n")[1].splitlines()
    assert waiting == [
        f"• #{claims[0]} Eve — Varna (Bulgaria), focal point — /approve {claims[0]}",
        f"• #{claims[1]} Bojan (@bojan_sk) — Skopje (North Macedonia), mayor"
        f" — /approve {claims[1]}",
    ]
    # Decided requests leave the list; with none waiting, there is no such section.
    for claim in claims:
        await harness.command(f"/reject {claim}", SECRETARY)
    assert (
        "Waiting for approval"
        not in replies(await harness.command("/secretariat", SECRETARY), SECRETARY.id)[0]
    )


async def test_a_decided_request_is_named_in_the_refusal(harness: BotHarness) -> None:
    await harness.command("/iam Varna", EVE)
    [claim] = await _claims(harness)
    await harness.command(f"/approve {claim}", SECRETARY)
    again = replies(await harness.command(f"/approve {claim}", SECRETARY), SECRETARY.id)
    assert again == [
        f"Delegate request #{claim} is no longer waiting: it was decided, or replaced by a "
        "newer request. /secretariat lists the requests waiting."
    ]
