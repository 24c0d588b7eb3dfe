"""/cities: the member cities by country, with each city's local time now."""

from __future__ import annotations

from itertools import groupby

from telegram import Update

from handlers.context import BotContext, esc
from locales import _, country_name, local_time, ngettext
from storage import roster


async def cities(update: Update, ctx: BotContext) -> None:
    members = await roster.list_cities(ctx.session)
    if not members:
        ctx.reply(update, _("No member cities are registered yet."))
        return
    now = ctx.deps.clock()
    lines = [
        ngettext(
            "<b>{n} member city</b>, local time now:",
            "<b>{n} member cities</b>, local time now:",
            len(members),
        ).format(n=len(members))
    ]
    by_country = sorted(members, key=lambda c: (country_name(c.country_code), c.search_key))
    for code, group in groupby(by_country, key=lambda c: c.country_code):
        lines.append("")
        lines.append(f"<b>{esc(country_name(code))}</b>")
        for city in group:
            founding = " ★" if city.founding else ""
            lines.append(f"• {esc(city.name)}{founding} — {local_time(now, city.timezone)}")
    lines.append("")
    lines.append(_("★ founding city (Istanbul, 2021)"))
    ctx.reply(update, "\n".join(lines))
