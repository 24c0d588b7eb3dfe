"""The secretariat decides delegate claims: /approve, /reject, the notice's buttons."""

from __future__ import annotations

import re
from typing import Any

from telegram import Update

from handlers.common import callback_parts, command_text, keyboard, parse_number
from handlers.context import BotContext
from handlers.notices import Rendered, notice
from handlers.render import city_label, city_name_label, display_person, display_user, role_name
from locales import _
from storage import delegates
from storage.models import User

DECIDE = re.compile(r"dlg:(ok|no):(\d{1,9})")


async def approve(update: Update, ctx: BotContext) -> None:
    claim_id = parse_number(command_text(update), "approve")
    ctx.reply(update, await _decide(ctx, claim_id, approve=True))


async def reject(update: Update, ctx: BotContext) -> None:
    claim_id = parse_number(command_text(update), "reject")
    ctx.reply(update, await _decide(ctx, claim_id, approve=False))


async def decide_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, DECIDE)
    text = await _decide(ctx, int(match.group(2)), approve=match.group(1) == "ok")
    ctx.edit(update, text)
    ctx.answer(update)


async def _decide(ctx: BotContext, claim_id: int, *, approve: bool) -> str:
    claim, city = await delegates.decide(
        ctx.session, actor=await ctx.actor(), claim_id=claim_id, approve=approve, now=ctx.now()
    )
    who = display_user(await ctx.session.get(User, claim.user_id), claim.user_id)
    labels = {"who": who, "city": city_label(city), "role": role_name(claim.role), "n": claim_id}
    if approve:
        return _("Approved request #{n}: {who} is a delegate of {city} as {role}.").format(**labels)
    return _("Rejected request #{n}: {who} is not a delegate of {city}.").format(**labels)


# Notices ----------------------------------------------------------------------------------


@notice(delegates.CLAIMED)
def _claimed(params: dict[str, Any]) -> Rendered:
    n = int(params["claim"])
    labels = {
        "n": n,
        "who": display_person(params),
        "user_id": int(params["user_id"]),
        "city": city_name_label(params["city"], params["country"]),
        "role": role_name(params["role"]),
    }
    if params.get("changes_role"):
        text = _(
            "Role change request #{n}: {who}, user id {user_id}, asks to represent {city} "
            "as {role}. Approve with /approve {n} or reject with /reject {n}."
        )
    else:
        text = _(
            "New delegate request #{n}: {who}, user id {user_id}, for {city} as {role}. "
            "Approve with /approve {n} or reject with /reject {n}."
        )
    buttons = keyboard([[(_("Approve"), f"dlg:ok:{n}"), (_("Reject"), f"dlg:no:{n}")]])
    return text.format(**labels), buttons


@notice(delegates.APPROVED)
def _approved(params: dict[str, Any]) -> Rendered:
    return (
        _(
            "Welcome! The secretariat approved you as a delegate of {city} ({role}). In your "
            "working groups' chats, send /join to add your city and /roster to see who is in."
        ).format(
            city=city_name_label(params["city"], params["country"]),
            role=role_name(params["role"]),
        ),
        None,
    )


@notice(delegates.REJECTED)
def _rejected(params: dict[str, Any]) -> Rendered:
    return (
        _(
            "The secretariat did not approve your request to represent {city}. "
            "If this is a mistake, please contact the secretariat."
        ).format(city=city_name_label(params["city"], params["country"])),
        None,
    )
