"""Sessions in chat: fixing, moving and cancelling them, RSVPs, what comes next, reminders.

Every time is shown as one table of the member cities' local times (handlers.when);
the services decide who may do what (storage.sessions).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatType

from handlers.common import Usage, callback_parts, chat_of, command_text, keyboard
from handlers.context import BotContext, esc, esc_line
from handlers.groups import chat_group
from handlers.notices import Rendered, notice
from handlers.render import group_name_label
from handlers.when import looks_like_time, parse_when, time_table
from locales import N_, _, ngettext
from storage import sessions
from storage.models import AgendaItem, AgendaOutcome, SessionStatus, WorkingGroup, WorkingSession

DEFAULT_LENGTH = timedelta(minutes=90)
RSVP = re.compile(r"rsvp:(\d{1,9}):(yes|maybe|no)")
CANCEL = re.compile(r"ses:cancel:(\d{1,9})")

OUTCOME_WORDS = {
    AgendaOutcome.NOTED: N_("Noted; no recommendation."),
    AgendaOutcome.NOT_REACHED: N_("Not reached at the session."),
}

ANSWER_WORDS = {
    sessions.Answer.YES: N_("coming"),
    sessions.Answer.MAYBE: N_("maybe"),
    sessions.Answer.NO: N_("not coming"),
}


# How a session is shown --------------------------------------------------------------------


def _instant(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def _places(facts: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(name), str(zone)) for name, zone in facts.get("places") or []]


def when_text(facts: dict[str, Any]) -> str:
    return time_table(
        _instant(facts["starts_at"]),
        _instant(facts["ends_at"]),
        _places(facts),
    )


def session_ref(facts: dict[str, Any]) -> str:
    """#12 · Climate Action (climate)"""
    return _("Session #{number} of {group}").format(
        number=int(facts["session"]), group=group_name_label(facts["group"], facts["slug"])
    )


def attendance_text(found: dict[str, list[str]]) -> str:
    yes, maybe, no = (found.get(answer.value, []) for answer in sessions.Answer)
    if not (yes or maybe or no):
        return _("No city has answered yet.")
    lines = []
    if yes:
        lines.append(
            ngettext("{n} city coming: {names}", "{n} cities coming: {names}", len(yes)).format(
                n=len(yes), names=", ".join(esc_line(name) for name in yes)
            )
        )
    if maybe:
        lines.append(_("Maybe: {names}").format(names=", ".join(esc_line(n) for n in maybe)))
    if no:
        lines.append(_("Not coming: {names}").format(names=", ".join(esc_line(n) for n in no)))
    return "\n".join(lines)


def outcome_line(item: AgendaItem | dict[str, Any]) -> str | None:
    facts = (
        item
        if isinstance(item, dict)
        else {"outcome": item.outcome, "recommendation": item.recommendation}
    )
    if not facts.get("outcome"):
        return None
    outcome = AgendaOutcome(str(facts["outcome"]))
    if outcome is AgendaOutcome.RECOMMENDATION:
        return "➡ " + _("Recommendation: {text}").format(text=esc(facts["recommendation"]))
    return "➡ " + _(OUTCOME_WORDS[outcome])


def agenda_lines(items: list[dict[str, Any]], *, with_numbers: bool = True) -> list[str]:
    """The accepted items in order: ``1. Title — City · 20 min`` and any outcome."""
    lines = []
    for index, item in enumerate(items, start=1):
        line = f"{index}. "
        if with_numbers:
            line += f"#{int(item['item'])} "
        line += f"{esc_line(item['title'])} — {esc_line(item['city'])}"
        if item.get("minutes"):
            line += " · " + ngettext("{n} min", "{n} min", int(item["minutes"])).format(
                n=int(item["minutes"])
            )
        lines.append(line)
        said = outcome_line(item)
        if said:
            lines.append("    " + said)
    return lines


def card(facts: dict[str, Any], heading: str) -> str:
    """A session as a message: heading, title, the local-time table, the link, who comes."""
    lines = [heading]
    if facts.get("title"):
        lines.append(f"<b>{esc_line(facts['title'])}</b>")
    lines.append(when_text(facts))
    if facts.get("status") == SessionStatus.CANCELLED.value:
        lines.append(_("This session is cancelled."))
    else:
        lines.append(_("Join: {url}").format(url=esc(facts["join_url"])))
    if facts.get("agenda"):
        lines.append(_("<b>Agenda</b>"))
        lines.extend(agenda_lines(facts["agenda"], with_numbers=False))
    if "attendance" in facts:
        lines.append(attendance_text(facts["attendance"]))
    return "\n".join(lines)


def rsvp_keyboard(session_id: int, *, calendar: bool = False) -> InlineKeyboardMarkup:
    """The RSVP buttons; with ``calendar``, one for the session's .ics file too (/next and
    the reminders)."""
    rows = [
        [
            ("✅ " + _("Coming"), f"rsvp:{session_id}:yes"),
            ("❔ " + _("Maybe"), f"rsvp:{session_id}:maybe"),
            ("❌ " + _("Not coming"), f"rsvp:{session_id}:no"),
        ]
    ]
    if calendar:
        rows.append([("📅 " + _("Add to my calendar (.ics)"), f"ics:{session_id}")])
    return keyboard(rows)


async def _describe(
    ctx: BotContext, meeting: WorkingSession, group: WorkingGroup
) -> dict[str, Any]:
    return await sessions.describe(ctx.session, meeting, group, with_attendance=True)


def _in_group_chat(update: Update) -> bool:
    return chat_of(update).type in (ChatType.GROUP, ChatType.SUPERGROUP)


# Commands ------------------------------------------------------------------------------------


def _split_schedule(text: str) -> tuple[list[str], str]:
    """Arguments, and the title after ``|`` (the title may hold any words)."""
    arguments, _sep, title = text.partition("|")
    return arguments.split(), title.strip()


async def schedule(update: Update, ctx: BotContext) -> None:
    """/schedule YYYY-MM-DD HH:MM[-HH:MM] [zone] [minutes] [| title]"""
    group = await chat_group(update, ctx)
    words, title = _split_schedule(command_text(update))
    if len(words) < 2 or not looks_like_time(words[1]):
        raise Usage("schedule")
    rest = words[2:]
    zone = None
    minutes = None
    if rest and not rest[0].isdigit():
        zone = rest.pop(0)
    if rest and rest[0].isdigit() and len(rest[0]) <= 4:
        minutes = int(rest.pop(0))
    if rest:
        raise Usage("schedule")
    when = parse_when(words[0], words[1], zone, default_zone=ctx.deps.reference_zone)
    if when.length is not None and minutes is not None:
        raise Usage("schedule")  # an end and a length: which one?
    length = when.length or (timedelta(minutes=minutes) if minutes is not None else DEFAULT_LENGTH)
    meeting = await sessions.schedule(
        ctx.session,
        actor=await ctx.actor(),
        group=group,
        starts_at=when.starts_at,
        length=length,
        title=title,
        meeting_url_template=ctx.deps.meeting_url,
        now=ctx.now(),
        origin_chat=chat_of(update).id,
    )
    facts = await sessions.describe(ctx.session, meeting, group)
    heading = "📅 " + _("{session} is fixed.").format(session=session_ref(facts))
    ctx.reply(
        update,
        card(facts, heading),
        rsvp_keyboard(meeting.id or 0),
    )


async def next_command(update: Update, ctx: BotContext) -> None:
    """/next: in a group's chat that group's next session; in private, of the person's groups."""
    if _in_group_chat(update):
        group = await chat_group(update, ctx)
        group_ids = [group.id or 0]
    else:
        group_ids = await sessions.groups_of(ctx.session, await ctx.actor())
    found = await sessions.next_session(ctx.session, group_ids=group_ids, now=ctx.now())
    if found is None:
        ctx.reply(
            update,
            _(
                "No session is planned yet. Organisers: /plan finds a time that suits the "
                "member cities, /schedule fixes one."
            ),
        )
        return
    meeting, group = found
    facts = await _describe(ctx, meeting, group)
    heading = "📅 " + _("Next: {session}").format(session=session_ref(facts))
    ctx.reply(
        update,
        card(facts, heading),
        rsvp_keyboard(meeting.id or 0, calendar=True),
    )


async def sessions_command(update: Update, ctx: BotContext) -> None:
    """/sessions: the upcoming sessions (of this group, or in private of the person's groups)."""
    if _in_group_chat(update):
        group = await chat_group(update, ctx)
        group_ids = [group.id or 0]
    else:
        group_ids = await sessions.groups_of(ctx.session, await ctx.actor())
    found = await sessions.upcoming(ctx.session, group_ids=group_ids, now=ctx.now())
    if not found:
        ctx.reply(update, _("No upcoming sessions."))
        return
    blocks = [_("<b>Upcoming sessions</b>")]
    for meeting, group in found:
        facts = await sessions.describe(ctx.session, meeting, group)
        title = f" — {esc_line(meeting.title)}" if meeting.title else ""
        block = [f"<b>#{meeting.id}</b> {group_name_label(group.name, group.slug)}{title}"]
        block.append(when_text(facts))
        if meeting.status == SessionStatus.CANCELLED.value:
            block.append(_("This session is cancelled."))
        blocks.append("\n".join(block))
    blocks.append(_("/next shows the next one with its link and who is coming."))
    ctx.reply(update, "\n\n".join(blocks))


def _session_number(text: str, command: str) -> tuple[int, list[str]]:
    words = text.split()
    if not words:
        raise Usage(command)
    number = words[0].removeprefix("#")
    if not re.fullmatch(r"\d{1,9}", number):
        raise Usage(command)
    return int(number), words[1:]


async def move(update: Update, ctx: BotContext) -> None:
    """/move <session> YYYY-MM-DD HH:MM [zone]"""
    text = command_text(update)
    if not text:
        await _list_to_choose(update, ctx, "move")
        return
    session_id, words = _session_number(text, "move")
    if len(words) not in (2, 3) or not looks_like_time(words[1]):
        raise Usage("move")
    when = parse_when(
        words[0],
        words[1],
        words[2] if len(words) == 3 else None,
        default_zone=ctx.deps.reference_zone,
    )
    if when.length is not None:
        raise Usage("move")  # a move keeps the session's length
    meeting = await sessions.move(
        ctx.session,
        actor=await ctx.actor(),
        session_id=session_id,
        starts_at=when.starts_at,
        now=ctx.now(),
        origin_chat=chat_of(update).id,
    )
    _meeting, group = await sessions.get(ctx.session, session_id)
    facts = await _describe(ctx, meeting, group)
    heading = "🔁 " + _("{session} is moved.").format(session=session_ref(facts))
    ctx.reply(
        update,
        card(facts, heading),
        rsvp_keyboard(session_id),
    )


async def cancel(update: Update, ctx: BotContext) -> None:
    """/cancel <session>; without a number, the group's upcoming sessions to choose from."""
    text = command_text(update)
    if not text:
        await _list_to_choose(update, ctx, "cancel")
        return
    session_id, words = _session_number(text, "cancel")
    if words:
        raise Usage("cancel")
    ctx.reply(update, await _cancel(update, ctx, session_id))


async def _cancel(update: Update, ctx: BotContext, session_id: int) -> str:
    meeting = await sessions.cancel(
        ctx.session,
        actor=await ctx.actor(),
        session_id=session_id,
        now=ctx.now(),
        origin_chat=chat_of(update).id,
    )
    _meeting, group = await sessions.get(ctx.session, session_id)
    facts = await sessions.describe(ctx.session, meeting, group)
    heading = "🚫 " + _("{session} is cancelled.").format(session=session_ref(facts))
    return card(facts, heading)


async def _list_to_choose(update: Update, ctx: BotContext, command: str) -> None:
    """The guided form of /cancel (buttons) and /move (the numbers to type)."""
    group = await chat_group(update, ctx)
    sessions.require_organiser(await ctx.actor(), group.id or 0)
    found = [
        (meeting, g)
        for meeting, g in await sessions.upcoming(
            ctx.session, group_ids=[group.id or 0], now=ctx.now()
        )
        if meeting.status == SessionStatus.SCHEDULED.value
    ]
    if not found:
        ctx.reply(update, _("No upcoming sessions."))
        return
    lines = []
    buttons = []
    for meeting, g in found:
        facts = await sessions.describe(ctx.session, meeting, g)
        lines.append(f"<b>#{meeting.id}</b> {when_text(facts)}")
        buttons.append([(f"🚫 #{meeting.id}", f"ses:cancel:{meeting.id}")])
    if command == "cancel":
        ctx.reply(
            update,
            _("Which session do you want to cancel?") + "\n\n" + "\n\n".join(lines),
            keyboard(buttons),
        )
    else:
        ctx.reply(
            update,
            esc(_("Give the session's number and its new time, e.g. /move 12 2027-01-14 10:00."))
            + "\n\n"
            + "\n\n".join(lines),
        )


# Buttons -------------------------------------------------------------------------------------


async def rsvp_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, RSVP, where="any")
    session_id, reply = int(match.group(1)), sessions.Answer(match.group(2))
    meeting, city = await sessions.answer(
        ctx.session, actor=await ctx.actor(), session_id=session_id, reply=reply, now=ctx.now()
    )
    _meeting, group = await sessions.get(ctx.session, session_id)
    facts = await _describe(ctx, meeting, group)
    heading = "📅 " + session_ref(facts)
    ctx.edit(update, card(facts, heading), rsvp_keyboard(session_id))
    ctx.answer(
        update,
        _("Noted for {city}: {answer}.").format(city=city.name, answer=_(ANSWER_WORDS[reply])),
    )


async def cancel_button(update: Update, ctx: BotContext) -> None:
    session_id = int(callback_parts(update, CANCEL, where="group").group(1))
    ctx.edit(update, await _cancel(update, ctx, session_id))
    ctx.answer(update)


# Notices -------------------------------------------------------------------------------------


def _notice_card(
    params: dict[str, Any], heading: str, *, buttons: bool = True, calendar: bool = False
) -> Rendered:
    text = card(params, heading)
    markup = rsvp_keyboard(int(params["session"]), calendar=calendar) if buttons else None
    return text, markup


@notice(sessions.SCHEDULED)
def _scheduled(params: dict[str, Any]) -> Rendered:
    return _notice_card(
        params, "📅 " + _("{session} is fixed.").format(session=session_ref(params))
    )


@notice(sessions.MOVED)
def _moved(params: dict[str, Any]) -> Rendered:
    heading = "🔁 " + _("{session} is moved.").format(session=session_ref(params))
    text, markup = _notice_card(params, heading)
    was = time_table(_instant(params["was"]), None, _places(params))
    return text + "\n" + _("It was: {when}").format(when=was.replace("\n", " ")), markup


@notice(sessions.CANCELLED)
def _cancelled(params: dict[str, Any]) -> Rendered:
    heading = "🚫 " + _("{session} is cancelled.").format(session=session_ref(params))
    return _notice_card(params, heading, buttons=False)


def in_how_long(minutes: int) -> str:
    """In days from a day on, in hours from an hour on, else in minutes; rounded."""
    if minutes >= 24 * 60:
        days = round(minutes / (24 * 60))
        return ngettext("in {n} day", "in {n} days", days).format(n=days)
    if minutes >= 60:
        hours = round(minutes / 60)
        return ngettext("in {n} hour", "in {n} hours", hours).format(n=hours)
    minutes = max(minutes, 1)
    return ngettext("in {n} minute", "in {n} minutes", minutes).format(n=minutes)


@notice(sessions.REMINDER)
def _reminder(params: dict[str, Any]) -> Rendered:
    heading = "⏰ " + _("Reminder: {session} starts {when}.").format(
        session=session_ref(params),
        when=in_how_long(int(params.get("starts_in_minutes", params["before_minutes"]))),
    )
    return _notice_card(params, heading, calendar=True)
