"""/plan in chat: the best times as an availability poll the cities answer, then one is fixed."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, Update

from handlers.common import Usage, callback_parts, chat_of, command_text, keyboard
from handlers.context import BotContext, esc_line
from handlers.groups import chat_group
from handlers.notices import Rendered, notice
from handlers.render import group_name_label
from handlers.sessions import card, rsvp_keyboard, session_ref
from handlers.when import parse_date, time_table
from locales import N_, _, ngettext
from storage import plans, polls, sessions
from storage.models import PollStatus

BUTTON = re.compile(r"pl:(\d{1,9}):(\d{1,2}):(yes|maybe|no|ok)")
MARKS = {"yes": "✅", "maybe": "❔", "no": "❌"}
ANSWER_WORDS = {"yes": N_("yes"), "maybe": N_("if need be"), "no": N_("no")}
REASONS = {
    "outside_hours": N_("outside working hours"),
    "not_working_day": N_("not a working day"),
    "busy": N_("another session"),
}


def _instant(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def _places(facts: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(name), str(zone)) for name, zone in facts.get("places") or []]


def _reason(code: str) -> str:
    if code.startswith("holiday:"):
        return _("holiday: {name}").format(name=esc_line(code.removeprefix("holiday:")))
    return _(REASONS[code])


def _option_block(facts: dict[str, Any], option: dict[str, Any]) -> str:
    lines = [
        f"<b>{int(option['position'])}.</b> "
        + time_table(_instant(option["starts_at"]), _instant(option["ends_at"]), _places(facts))
    ]
    answers = option.get("answers") or {}
    counted = []
    for value, mark in MARKS.items():
        names = answers.get(value) or []
        counted.append(f"{mark} {', '.join(esc_line(n) for n in names) if names else '—'}")
    lines.append(" · ".join(counted))
    notes = option.get("notes") or {}
    outside = notes.get("outside") or []
    if outside:
        said = "; ".join(
            f"{esc_line(name)} ({', '.join(_reason(code) for code in codes)})"
            for name, codes in outside
        )
        lines.append(_("Left out: {cities}").format(cities=said))
    edge = notes.get("edge") or []
    if edge:
        lines.append(
            _("At the start or end of their working day: {cities}").format(
                cities=", ".join(esc_line(n) for n in edge)
            )
        )
    return "\n".join(lines)


def poll_text(facts: dict[str, Any]) -> str:
    group = group_name_label(facts["group"], facts["slug"])
    minutes = int(facts["length_minutes"] or 0)
    lines = ["🗳 " + _("When shall {group} meet?").format(group=group)]
    if facts.get("title"):
        lines.append(f"<b>{esc_line(facts['title'])}</b>")
    status = facts["status"]
    if status == PollStatus.OPEN.value:
        deadline = time_table(_instant(facts["closes_at"]), None, _places(facts)).replace("\n", " ")
        lines.append(
            ngettext("A session of {n} minute.", "A session of {n} minutes.", minutes).format(
                n=minutes
            )
            + " "
            + _(
                "Delegates: answer each time for your city (✅ yes, ❔ if need be, ❌ no); "
                "the last answer from your city counts. Organisers: 📌 fixes a time. "
                "Otherwise the best answered time is fixed on {deadline}."
            ).format(deadline=deadline)
        )
    elif status == PollStatus.SUPERSEDED.value:
        lines.append(_("This poll was replaced by a newer one."))
    elif facts.get("outcome") is not None:
        lines.append(
            _("Closed: time {number} is fixed as session #{session}.").format(
                number=int(facts["outcome"]), session=int(facts["session"] or 0)
            )
        )
    else:
        lines.append(_("Closed: no proposed time suited any city. An organiser can /plan again."))
    lines.extend("\n" + _option_block(facts, option) for option in facts["options"])
    return "\n".join(lines)


def poll_keyboard(facts: dict[str, Any]) -> InlineKeyboardMarkup | None:
    if facts["status"] != PollStatus.OPEN.value:
        return None
    poll = int(facts["poll"])
    rows = []
    for option in facts["options"]:
        position = int(option["position"])
        rows.append(
            [
                (f"{position} {mark}", f"pl:{poll}:{position}:{value}")
                for value, mark in MARKS.items()
            ]
            + [(f"📌 {position}", f"pl:{poll}:{position}:ok")]
        )
    return keyboard(rows)


def _parse(text: str) -> tuple[tuple[date, date] | None, int | None, str]:
    """``[YYYY-MM-DD YYYY-MM-DD] [minutes] [| title]``"""
    arguments, _sep, title = text.partition("|")
    words = arguments.split()
    minutes = None
    if words and words[-1].isdigit() and len(words[-1]) <= 4:
        minutes = int(words.pop())
    if len(words) not in (0, 2):
        raise Usage("plan")
    window = (parse_date(words[0]), parse_date(words[1])) if words else None
    return window, minutes, title.strip()


async def plan(update: Update, ctx: BotContext) -> None:
    """/plan [YYYY-MM-DD YYYY-MM-DD] [minutes] [| title]"""
    group = await chat_group(update, ctx)
    window, minutes, title = _parse(command_text(update))
    first, last = window if window is not None else plans.default_window(ctx.deps.today())
    length = timedelta(minutes=minutes) if minutes is not None else plans.DEFAULT_LENGTH
    poll = await plans.open_plan(
        ctx.session,
        actor=await ctx.actor(),
        group=group,
        first_day=first,
        last_day=last,
        length=length,
        now=ctx.now(),
        reference_zone=ctx.deps.reference_zone,
        title=title,
    )
    facts = await plans.describe(ctx.session, poll)
    ctx.reply(update, poll_text(facts), poll_keyboard(facts))


async def poll_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, BUTTON, where="group")
    poll_id, position, value = int(match.group(1)), int(match.group(2)), match.group(3)
    actor = await ctx.actor()
    if value == "ok":
        meeting = await plans.confirm(
            ctx.session,
            actor=actor,
            poll_id=poll_id,
            position=position,
            now=ctx.now(),
            meeting_url_template=ctx.deps.meeting_url,
            origin_chat=chat_of(update).id,
        )
        poll = await polls.get(ctx.session, poll_id)
        facts = await plans.describe(ctx.session, poll)
        ctx.edit(update, poll_text(facts), None)
        _meeting, group = await sessions.get(ctx.session, meeting.id or 0)
        described = await sessions.describe(ctx.session, meeting, group)
        heading = "📅 " + _("{session} is fixed.").format(session=session_ref(described))
        ctx.reply(update, card(described, heading), rsvp_keyboard(meeting.id or 0))
        ctx.answer(update)
        return
    poll, city = await plans.answer(
        ctx.session, actor=actor, poll_id=poll_id, position=position, value=value, now=ctx.now()
    )
    facts = await plans.describe(ctx.session, poll)
    ctx.edit(update, poll_text(facts), poll_keyboard(facts))
    ctx.answer(
        update,
        _("Noted for {city}: time {number}, {answer}.").format(
            city=city.name, number=position, answer=_(ANSWER_WORDS[value])
        ),
    )


# Notices -------------------------------------------------------------------------------------


@notice(plans.OPENED)
def _opened(params: dict[str, Any]) -> Rendered:
    return poll_text(params), poll_keyboard(params)


@notice(plans.UNDECIDED)
def _undecided(params: dict[str, Any]) -> Rendered:
    return poll_text(params), None


async def request_session(update: Update, ctx: BotContext) -> None:
    """/request_session [reason]: the city asks for an extra session."""
    group = await chat_group(update, ctx)
    outcome = await plans.request_session(
        ctx.session,
        actor=await ctx.actor(),
        group=group,
        reason=command_text(update),
        now=ctx.now(),
        today=ctx.deps.today(),
        reference_zone=ctx.deps.reference_zone,
    )
    asked = ", ".join(esc_line(name) for name in outcome.asked)
    if outcome.poll is None:
        ctx.reply(
            update,
            ngettext(
                "Noted. Cities asking for an extra session: {cities}. "
                "Planning opens when {n} city has asked.",
                "Noted. Cities asking for an extra session: {cities}. "
                "Planning opens when {n} cities have asked.",
                outcome.needed,
            ).format(cities=asked, n=outcome.needed),
        )
        return
    facts = await plans.describe(ctx.session, outcome.poll)
    ctx.reply(
        update,
        _("Enough cities asked for an extra session ({cities}): planning is open.").format(
            cities=asked
        )
        + "\n\n"
        + poll_text(facts),
        poll_keyboard(facts),
    )


async def cadence(update: Update, ctx: BotContext) -> None:
    """/cadence [weeks|off]: when planning opens by itself before each quarter."""
    group = await chat_group(update, ctx)
    text = command_text(update).lower()
    if text:
        if text in ("off", "0"):
            weeks = 0
        elif text.isdigit() and len(text) <= 3:
            weeks = int(text)
        else:
            raise Usage("cadence")
        group = await plans.set_cadence(
            ctx.session, actor=await ctx.actor(), group=group, weeks=weeks
        )
    if group.cadence_weeks:
        said = ngettext(
            "Planning for {group} opens by itself {n} week before each quarter.",
            "Planning for {group} opens by itself {n} weeks before each quarter.",
            group.cadence_weeks,
        ).format(group=group_name_label(group.name, group.slug), n=group.cadence_weeks)
    else:
        said = _("Planning for {group} does not open by itself; organisers use /plan.").format(
            group=group_name_label(group.name, group.slug)
        )
    ctx.reply(update, said)
