"""A city that is not yet a member applies; the secretariat admits or declines."""

from __future__ import annotations

import re

from telegram import Update

from handlers.common import (
    Usage,
    callback_parts,
    command_text,
    display_name,
    keyboard,
    notify,
    notify_secretariat,
    sender,
)
from handlers.context import BotContext, esc
from locales import _, country_name
from storage import applications
from storage.models import MembershipApplication

DECIDE = re.compile(r"app:(ok|no):(\d{1,9})")


def _describe(application: MembershipApplication) -> str:
    return _("{city} ({country}, {zone})").format(
        city=esc(application.city_name),
        country=esc(country_name(application.country_code)),
        zone=esc(application.timezone),
    )


async def apply(update: Update, ctx: BotContext) -> None:
    parts = [part.strip() for part in command_text(update).split(",")]
    if len(parts) != 3 or not all(parts):
        raise Usage("apply")
    user = sender(update)
    application = await applications.apply(
        ctx.session, applicant_id=user.id, name=parts[0], country_code=parts[1], timezone=parts[2]
    )
    who = display_name(user.full_name, user.username, user.id)
    await notify_secretariat(
        ctx,
        lambda: _("{who} asks for {city} to join the network.").format(
            who=who, city=_describe(application)
        ),
        lambda: keyboard(
            [[(_("Admit"), f"app:ok:{application.id}"), (_("Decline"), f"app:no:{application.id}")]]
        ),
    )
    ctx.reply(
        update,
        _("Thank you! The secretariat will consider the application of {city}.").format(
            city=_describe(application)
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
    if admit:
        await notify(
            ctx,
            application.applicant_id,
            lambda: _(
                "Welcome to the B40 network: {city} is now a member city. Send /start to "
                "register as its delegate."
            ).format(city=_describe(application)),
        )
        text = _("Admitted: {city} is a member city.").format(city=_describe(application))
    else:
        await notify(
            ctx,
            application.applicant_id,
            lambda: _("The secretariat declined the application of {city} for now.").format(
                city=_describe(application)
            ),
        )
        text = _("Declined: the application of {city}.").format(city=_describe(application))
    ctx.edit(update, text)
    ctx.answer(update)
