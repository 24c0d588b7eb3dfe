"""/cities: the member cities by country, with each city's local time now."""

from __future__ import annotations

from itertools import groupby

from telegram import Update

from handlers.common import Usage, command_text
from handlers.context import BotContext, esc
from handlers.render import city_label
from handlers.when import looks_like_time, parse_span, parse_weekdays, weekdays_text
from locales import _, country_name, local_time, ngettext
from scheduler.planning import WorkingHours
from storage import plans, roster
from storage.models import City


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


# /hours: a city's working hours, which planning respects --------------------------------------


def hours_text(city: City) -> str:
    hours = plans.working_hours(city)
    return _("{city}: {start}–{end}, {days} (local time in {zone})").format(
        city=city_label(city),
        start=hours.start.strftime("%H:%M"),
        end=hours.end.strftime("%H:%M"),
        days=weekdays_text(hours.weekdays),
        zone=esc(city.timezone),
    )


async def hours(update: Update, ctx: BotContext) -> None:
    """/hours [city] HH:MM-HH:MM [days]; alone, the hours of one's own city."""
    words = command_text(update).split()
    actor = await ctx.actor()
    at = next((i for i, word in enumerate(words) if looks_like_time(word)), None)
    if at is None:
        if words:
            raise Usage("hours")
        city = actor.approved_city()
        ctx.reply(
            update,
            _("Working hours for planning: {hours}").format(hours=hours_text(city))
            + "\n"
            + esc(_("To change them: /hours HH:MM-HH:MM [days], e.g. /hours 08:30-16:30 Mon-Fri.")),
        )
        return
    start, end = parse_span(words[at])
    if end is None:
        raise Usage("hours")
    named = " ".join(words[:at])
    city = await roster.find_city(ctx.session, named) if named else actor.approved_city()
    days = (
        parse_weekdays(" ".join(words[at + 1 :]))
        if words[at + 1 :]
        else plans.working_hours(city).weekdays
    )
    city = await roster.set_working_hours(
        ctx.session, actor=actor, city=city, hours=WorkingHours(start=start, end=end, weekdays=days)
    )
    ctx.reply(
        update,
        _("Working hours for planning are now: {hours}").format(hours=hours_text(city)),
    )
