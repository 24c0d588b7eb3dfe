"""/summit: the network's annual summits; the secretariat records one."""

from __future__ import annotations

import re
from datetime import date

from babel.dates import format_date
from telegram import Update

from handlers.common import Usage, command_text
from handlers.context import BotContext
from handlers.render import city_label
from locales import _, locale
from storage import roster, summits

RECORD = re.compile(r"(\d{4}-\d{2}-\d{2})(?:\s+(\d{4}-\d{2}-\d{2}))?\s+(\S.*)")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Usage("summit") from None


async def summit_command(update: Update, ctx: BotContext) -> None:
    """/summit, or (secretariat) /summit YYYY-MM-DD [YYYY-MM-DD] <host city>"""
    text = command_text(update)
    if text:
        match = RECORD.fullmatch(text)
        if match is None:
            raise Usage("summit")
        starts_on = _day(match.group(1))
        ends_on = _day(match.group(2)) if match.group(2) else starts_on
        actor = await ctx.actor()
        actor.require_secretariat()
        city = await roster.find_city(ctx.session, match.group(3))
        summit = await summits.record(
            ctx.session,
            actor=actor,
            city=city,
            starts_on=starts_on,
            ends_on=ends_on,
            now=ctx.now(),
        )
        ctx.reply(
            update,
            _("Recorded: the B40 Summit {year} in {city}, {start} – {end}.").format(
                year=summit.year,
                city=city_label(city),
                start=format_date(starts_on, "medium", locale=locale()),
                end=format_date(ends_on, "medium", locale=locale()),
            )
            + "\n"
            + _("It is in the network's calendar (/calendar)."),
        )
        return
    found = await summits.listed(ctx.session, since=ctx.deps.today())
    if not found:
        ctx.reply(update, _("No summit is recorded yet."))
        return
    lines = [
        _("B40 Summit {year}: {city}, {start} – {end}.").format(
            year=summit.year,
            city=city_label(city),
            start=format_date(summit.starts_on, "medium", locale=locale()),
            end=format_date(summit.ends_on, "medium", locale=locale()),
        )
        for summit, city in found
    ]
    ctx.reply(update, "\n".join(lines))
