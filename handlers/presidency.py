"""/presidency: the current term presidency, its history, and recording a term."""

from __future__ import annotations

import re

from babel.dates import format_date
from telegram import Update

from handlers.common import Usage, command_text
from handlers.context import BotContext
from handlers.render import city_label
from locales import _, locale
from storage import presidency, roster


async def presidency_command(update: Update, ctx: BotContext) -> None:
    args = command_text(update)
    if args:
        year_text, _sep, city_name = args.partition(" ")
        if not re.fullmatch(r"\d{4}", year_text) or not city_name.strip():
            raise Usage("presidency")
        actor = await ctx.actor()
        actor.require_secretariat()
        city = await roster.find_city(ctx.session, city_name)
        term = await presidency.set_term(ctx.session, actor=actor, city=city, year=int(year_text))
        ctx.reply(
            update,
            _("Recorded: {city} holds the term presidency of {year}.").format(
                city=city_label(city), year=term.year
            ),
        )
        return
    today = ctx.deps.today()
    current = await presidency.current(ctx.session, today=today)
    lines = []
    if current is None:
        lines.append(_("No term presidency is recorded for today."))
    else:
        term, city = current
        lines.append(
            _("Term presidency {year}: {city}, {start} – {end}.").format(
                year=term.year,
                city=city_label(city),
                start=format_date(term.starts_on, "medium", locale=locale()),
                end=format_date(term.ends_on, "medium", locale=locale()),
            )
        )
    terms = await presidency.history(ctx.session)
    if terms:
        lines.append("")
        lines.append(_("<b>All terms</b>"))
        lines.extend(f"{term.year} — {city_label(city)}" for term, city in terms)
    ctx.reply(update, "\n".join(lines))
