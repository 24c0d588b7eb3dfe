"""A city that is not yet a member applies; the secretariat admits or declines."""

from __future__ import annotations

import re
from typing import Any

from telegram import Update

from handlers.common import Usage, callback_parts, command_text, keyboard, sender
from handlers.context import BotContext, esc, esc_line
from handlers.notices import Rendered, notice
from handlers.render import display_person
from locales import _, country_name
from storage import applications

DECIDE = re.compile(r"app:(ok|no):(\d{1,9})")


def _describe(params: dict[str, Any]) -> str:
    return _("{city} ({country}, {zone})").format(
        city=esc_line(params["city"]),
        country=esc(country_name(params["country"])),
        zone=esc(params["zone"]),
    )


async def apply(update: Update, ctx: BotContext) -> None:
    parts = [part.strip() for part in command_text(update).split(",")]
    if len(parts) != 3 or not all(parts):
        raise Usage("apply")
    user = sender(update)
    application = await applications.apply(
        ctx.session,
        applicant=ctx.scope.user,
        applicant_id=user.id,
        name=parts[0],
        country_code=parts[1],
        timezone=parts[2],
        bootstrap=ctx.deps.bootstrap_secretariat,
    )
    ctx.reply(
        update,
        _("Thank you! The secretariat will consider the application of {city}.").format(
            city=_describe(applications.facts(application))
        ),
    )


async def decide_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, DECIDE)
    admit = match.group(1) == "ok"
    application, _city = await applications.decide(
        ctx.session,
        actor=await ctx.actor(),
        application_id=int(match.group(2)),
        admit=admit,
        today=ctx.deps.today(),
    )
    city = _describe(applications.facts(application))
    if admit:
        text = _("Admitted: {city} is a member city.").format(city=city)
    else:
        text = _("Declined: the application of {city}.").format(city=city)
    ctx.edit(update, text)
    ctx.answer(update)


# Notices ----------------------------------------------------------------------------------


@notice(applications.CREATED)
def _created(params: dict[str, Any]) -> Rendered:
    n = int(params["application"])
    return (
        _("{who} asks for {city} to join the network.").format(
            who=display_person(params), city=_describe(params)
        ),
        keyboard([[(_("Admit"), f"app:ok:{n}"), (_("Decline"), f"app:no:{n}")]]),
    )


@notice(applications.ADMITTED)
def _admitted(params: dict[str, Any]) -> Rendered:
    return (
        _(
            "Welcome to the B40 network: {city} is now a member city. Send /start to "
            "register as its delegate."
        ).format(city=_describe(params)),
        None,
    )


@notice(applications.DECLINED)
def _declined(params: dict[str, Any]) -> Rendered:
    return (
        _("The secretariat declined the application of {city} for now.").format(
            city=_describe(params)
        ),
        None,
    )
