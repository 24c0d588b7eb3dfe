"""The agenda in chat: /propose, /agenda, /decline, /opinion, /outcome and the request cards.

A request is answered with its card in the group's chat: who asked, who supports it,
who gave an opinion, what was decided, with the buttons that act on it (support for
delegates of other cities; accept, defer, decline for organisers). The card is redrawn
whenever the request changes, by a button or by a command. The services decide who may
do what (storage.agenda).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError

from handlers.common import (
    Usage,
    callback_parts,
    chat_of,
    command_lines,
    command_text,
    keyboard,
    parse_number,
)
from handlers.context import BotContext, edit_message, esc, esc_line
from handlers.groups import chat_group
from handlers.notices import Rendered, notice
from handlers.render import group_name_label
from handlers.sessions import OUTCOME_WORDS, agenda_lines, outcome_line, when_text
from handlers.when import time_table
from locales import _, ngettext
from storage import agenda, errors, sessions
from storage.models import AgendaItem, AgendaOutcome, AgendaStatus, WorkingGroup, WorkingSession

log = logging.getLogger(__name__)

CARD = re.compile(r"ag:(\d{1,9}):(sup|acc|def|dec)")
OUTCOME = re.compile(r"ao:(\d{1,9}):(noted|unreached)")
# "<number> <text>": what /opinion and /outcome take (the text may span lines).
NUMBERED = re.compile(r"#?(\d{1,9})(?:\s+(.*))?", re.DOTALL)
# A request is a title and a description: longer than other commands' arguments.
MAX_REQUEST = agenda.MAX_TITLE + agenda.MAX_TEXT + 20


# --- how a request reads ----------------------------------------------------------------------


def _session_words(session_id: int | None) -> str:
    if session_id is None:
        return _("for the next session, once one is planned")
    return _("for session #{number}").format(number=session_id)


def status_line(item: AgendaItem) -> str:
    if item.status == AgendaStatus.DECLINED.value:
        return "✖ " + _("Declined: {reason}").format(reason=esc(item.reason))
    if item.status == AgendaStatus.ACCEPTED.value:
        said = "✅ " + _("Accepted {where}.").format(where=_session_words(item.session_id))
        if item.position:
            said += " " + _("Item {position} on the agenda.").format(position=item.position)
        if item.minutes:
            said += " " + ngettext("{n} minute.", "{n} minutes.", item.minutes).format(
                n=item.minutes
            )
        return said
    if item.deferrals:
        return "⏭ " + _("Deferred {where}; waiting for the organisers' decision.").format(
            where=_session_words(item.session_id)
        )
    return "⏳ " + _("Waiting for the organisers' decision.")


def card_text(entry: agenda.Entry, group: WorkingGroup) -> str:
    item = entry.item
    lines = [
        "📌 "
        + _("Agenda request #{number}").format(number=item.id)
        + " · "
        + group_name_label(group.name, group.slug),
        f"<b>{esc_line(item.title)}</b>",
    ]
    if item.description:
        lines.append(esc(item.description))
    lines.append(
        _("Asked by {city} {where}.").format(
            city=esc_line(entry.city), where=_session_words(item.session_id)
        )
    )
    if item.late:
        lines.append(
            _("It came after the deadline of the next session, so it is for the one after.")
        )
    if entry.supporters:
        lines.append(
            "👍 "
            + _("Supported by: {cities}").format(
                cities=", ".join(esc_line(name) for name in entry.supporters)
            )
        )
    if entry.opinions:
        lines.append(
            "💬 "
            + _("Opinions from: {cities} (/opinion {number} shows them)").format(
                cities=", ".join(esc_line(name) for name, _text in entry.opinions),
                number=item.id,
            )
        )
    lines.append(status_line(item))
    said = outcome_line(item)
    if said:
        lines.append(said)
    if item.status != AgendaStatus.DECLINED.value and item.outcome is None:
        lines.append(
            "<i>"
            + esc(
                _(
                    "Other cities: support it with the button, or give your city's opinion "
                    "with /opinion {number} <text>. Organisers: accept or defer it with the "
                    "buttons; /decline {number} <reason> declines it."
                ).format(number=item.id)
            )
            + "</i>"
        )
    return "\n".join(lines)


def card_keyboard(entry: agenda.Entry) -> InlineKeyboardMarkup | None:
    item = entry.item
    if item.status == AgendaStatus.DECLINED.value or item.outcome is not None:
        return None
    count = len(entry.supporters)
    rows = [[("👍 " + _("Support") + (f" · {count}" if count else ""), f"ag:{item.id}:sup")]]
    if item.status == AgendaStatus.PENDING.value:
        rows.append(
            [
                ("✅ " + _("Accept"), f"ag:{item.id}:acc"),
                ("⏭ " + _("Defer"), f"ag:{item.id}:def"),
                ("✖ " + _("Decline"), f"ag:{item.id}:dec"),
            ]
        )
    else:
        rows.append([("⏭ " + _("Defer to the following session"), f"ag:{item.id}:def")])
    return keyboard(rows)


async def _card(
    ctx: BotContext, item_id: int
) -> tuple[AgendaItem, str, InlineKeyboardMarkup | None]:
    item, group = await agenda.get(ctx.session, item_id)
    [entry] = await agenda.entries(ctx.session, [item])
    return item, card_text(entry, group), card_keyboard(entry)


async def _redraw_card(ctx: BotContext, item_id: int) -> None:
    """After the commit, the request's card shows what the request now is."""
    item, text, markup = await _card(ctx, item_id)
    if item.chat_id is None or item.message_id is None:
        return
    bot, db, chat_id, message_id = ctx.bot, ctx.deps.db, item.chat_id, item.message_id

    async def redraw() -> None:
        try:
            await edit_message(bot, chat_id, message_id, text, markup)
        except BadRequest as exc:
            if "not found" not in exc.message.lower():
                raise
            # Someone deleted the card: it is not looked for again.
            async with db.transaction() as session:
                await agenda.forget_card(session, item_id=item_id, message_id=message_id)
        except TelegramError as exc:  # too old, flood control: the change stands
            log.warning("the card of agenda request %s was not redrawn: %s", item_id, exc)

    ctx.after_commit(redraw)


def _entry_line(entry: agenda.Entry, *, where: bool = False) -> str:
    item = entry.item
    line = f"#{item.id} {esc_line(item.title)} — {esc_line(entry.city)}"
    marks = []
    if entry.supporters:
        marks.append(f"👍 {len(entry.supporters)}")
    if entry.opinions:
        marks.append(f"💬 {len(entry.opinions)}")
    if marks:
        line += " (" + ", ".join(marks) + ")"
    if where:
        line += " · " + _session_words(item.session_id)
    return line


# --- commands ---------------------------------------------------------------------------------


def _request_text(update: Update) -> tuple[str, str]:
    """Title (the first line after /propose) and description (the lines after it)."""
    lines = command_lines(update, MAX_REQUEST).splitlines()
    if not lines or not lines[0].strip():
        raise Usage("propose")
    return lines[0], "\n".join(lines[1:])


async def propose(update: Update, ctx: BotContext) -> None:
    """/propose <title>, and a description on the following lines."""
    group = await chat_group(update, ctx)
    title, description = _request_text(update)
    item, goes_to = await agenda.propose(
        ctx.session,
        actor=await ctx.actor(),
        group=group,
        title=title,
        description=description,
        now=ctx.now(),
    )
    places = await sessions.places(ctx.session, group.id or 0)
    if goes_to.late and goes_to.missed is not None:
        closed = time_table(agenda.deadline(goes_to.missed, group), None, places)
        ctx.reply(
            update,
            "⚠ "
            + _(
                "Requests for session #{missed} closed {deadline}. Your request #{number} is "
                "{where}."
            ).format(
                missed=goes_to.missed.id,
                deadline=closed.replace("\n", " "),
                number=item.id,
                where=_session_words(item.session_id),
            ),
        )
    elif goes_to.meeting is not None:
        closes = time_table(agenda.deadline(goes_to.meeting, group), None, places)
        ctx.reply(
            update,
            _(
                "Noted: request #{number} is for session #{session}. The organisers decide on "
                "it; requests for that session close {deadline}."
            ).format(
                number=item.id, session=goes_to.meeting.id, deadline=closes.replace("\n", " ")
            ),
        )
    else:
        ctx.reply(
            update,
            _(
                "Noted: request #{number} waits for the next session; it goes on that "
                "session's list once one is planned."
            ).format(number=item.id),
        )
    _post_card(ctx, item.id or 0, chat_of(update).id, await _card(ctx, item.id or 0))


def _post_card(
    ctx: BotContext,
    item_id: int,
    chat_id: int,
    card: tuple[AgendaItem, str, InlineKeyboardMarkup | None],
) -> None:
    db = ctx.deps.db

    async def remember(message: Message) -> None:
        async with db.transaction() as session:
            await agenda.attach(
                session, item_id=item_id, chat_id=message.chat.id, message_id=message.message_id
            )

    _item, text, markup = card
    ctx.send(chat_id, text, markup, on_sent=remember)


async def agenda_command(update: Update, ctx: BotContext) -> None:
    """/agenda [session] | order <item> … | minutes <item> <minutes> | deadline <days>"""
    group = await chat_group(update, ctx)
    words = command_text(update).split()
    if not words:
        found = await sessions.next_session(ctx.session, group_ids=[group.id or 0], now=ctx.now())
        await _show(update, ctx, group, found[0] if found else None)
        return
    verb, rest = words[0].lower(), words[1:]
    if verb == "order":
        await _order(update, ctx, group, rest)
    elif verb == "minutes":
        if len(rest) != 2 or not rest[1].isdigit() or len(rest[1]) > 4:
            raise Usage("agenda")
        item = await agenda.set_minutes(
            ctx.session,
            actor=await ctx.actor(),
            group=group,
            item_id=parse_number(rest[0], "agenda"),
            minutes=int(rest[1]),
            now=ctx.now(),
        )
        await _redraw_card(ctx, item.id or 0)
        await _show_session_of(update, ctx, group, item.session_id)
    elif verb == "deadline":
        if len(rest) != 1 or not rest[0].isdigit() or len(rest[0]) > 3:
            raise Usage("agenda")
        await agenda.set_deadline(
            ctx.session, actor=await ctx.actor(), group=group, days=int(rest[0])
        )
        ctx.reply(
            update,
            ngettext(
                "Agenda requests for {group} now close {n} day before each session.",
                "Agenda requests for {group} now close {n} days before each session.",
                group.request_deadline_days,
            ).format(group=group_name_label(group.name, group.slug), n=group.request_deadline_days),
        )
    elif len(words) == 1:
        session_id = parse_number(words[0], "agenda")
        meeting, of = await sessions.get(ctx.session, session_id)
        if of.id != group.id:
            raise errors.UnknownSession(session=session_id)
        await _show(update, ctx, group, meeting)
    else:
        raise Usage("agenda")


async def _order(update: Update, ctx: BotContext, group: WorkingGroup, rest: list[str]) -> None:
    first = [parse_number(word, "agenda") for word in rest]
    if not first or len(set(first)) != len(first):
        raise Usage("agenda")
    found = await sessions.next_session(ctx.session, group_ids=[group.id or 0], now=ctx.now())
    if found is None:
        raise errors.NoNextSession()
    meeting = found[0]
    ordered = await agenda.order(
        ctx.session,
        actor=await ctx.actor(),
        group=group,
        meeting=meeting,
        first=first,
        now=ctx.now(),
    )
    for item, _city in ordered:  # each card says its place
        await _redraw_card(ctx, item.id or 0)
    await _show(update, ctx, group, meeting)


async def _show_session_of(
    update: Update, ctx: BotContext, group: WorkingGroup, session_id: int | None
) -> None:
    meeting = None
    if session_id is not None:
        meeting, _group = await sessions.get(ctx.session, session_id)
    await _show(update, ctx, group, meeting)


async def _show(
    update: Update, ctx: BotContext, group: WorkingGroup, meeting: WorkingSession | None
) -> None:
    seen = await agenda.view(ctx.session, group=group, meeting=meeting)
    places = await sessions.places(ctx.session, group.id or 0)
    blocks = []
    if meeting is None:
        blocks.append(
            "🗒 "
            + _("Agenda of {group}").format(group=group_name_label(group.name, group.slug))
            + "\n"
            + _("No session is planned; requests wait for the next one.")
        )
    else:
        facts = await sessions.describe(ctx.session, meeting, group)
        head = [
            "🗒 "
            + _("Agenda of session #{number} of {group}").format(
                number=meeting.id, group=group_name_label(group.name, group.slug)
            )
        ]
        if meeting.title:
            head.append(f"<b>{esc_line(meeting.title)}</b>")
        head.append(when_text(facts))
        closes = agenda.deadline(meeting, group)
        if closes > ctx.now():
            head.append(
                _("Requests for it close {deadline}.").format(
                    deadline=time_table(closes, None, places).replace("\n", " ")
                )
            )
        elif meeting.starts_at > ctx.now():
            head.append(_("Requests for it have closed; new ones go to the following session."))
        blocks.append("\n".join(head))
        items = agenda.agenda_facts([(e.item, e.city) for e in seen.accepted])
        if items:
            listed = [_("<b>Agenda</b>"), *agenda_lines(items)]
            minutes = sum(int(i["minutes"] or 0) for i in items)
            length = int((meeting.ends_at - meeting.starts_at).total_seconds() // 60)
            if minutes:
                listed.append(
                    _("Timed items take {minutes} of the session's {length} minutes.").format(
                        minutes=minutes, length=length
                    )
                )
            blocks.append("\n".join(listed))
        else:
            blocks.append(_("Nothing is on the agenda yet."))
        if seen.pending:
            blocks.append(
                "\n".join(
                    [_("<b>Requests waiting for a decision</b>")]
                    + [_entry_line(e) for e in seen.pending]
                )
            )
        if seen.declined:
            blocks.append(
                "\n".join(
                    [_("<b>Declined</b>")]
                    + [
                        f"#{e.item.id} {esc_line(e.item.title)} — {esc(e.item.reason)}"
                        for e in seen.declined
                    ]
                )
            )
    if seen.waiting:
        blocks.append(
            "\n".join(
                [_("<b>Other requests waiting</b>")]
                + [_entry_line(e, where=True) for e in seen.waiting]
            )
        )
    blocks.append(
        esc(
            _(
                "/propose <title> asks for an item for your city; "
                "/opinion <number> <text> gives your city's opinion on one."
            )
        )
    )
    ctx.reply(update, "\n\n".join(blocks))


async def decline(update: Update, ctx: BotContext) -> None:
    """/decline <item> <reason>"""
    group = await chat_group(update, ctx)
    number, _sep, reason = command_text(update).partition(" ")
    if not number or not reason.strip():
        raise Usage("decline")
    item_id = parse_number(number, "decline")
    await agenda.in_group(ctx.session, item_id, group)
    await agenda.decide(
        ctx.session,
        actor=await ctx.actor(),
        item_id=item_id,
        decision=agenda.Decision.DECLINE,
        reason=reason,
        now=ctx.now(),
    )
    await _redraw_card(ctx, item_id)
    ctx.reply(
        update, _("Request #{number} is declined; its city is told why.").format(number=item_id)
    )


def _numbered(update: Update, command: str) -> tuple[int, str]:
    """``<number> [text]``: what /opinion and /outcome take (the text may span lines)."""
    match = NUMBERED.fullmatch(command_lines(update, agenda.MAX_TEXT + 20))
    if match is None:
        raise Usage(command)
    return int(match.group(1)), match.group(2) or ""


async def opinion(update: Update, ctx: BotContext) -> None:
    """/opinion <item> <text> gives the city's opinion; /opinion <item> shows them all."""
    group = await chat_group(update, ctx)
    item_id, said = _numbered(update, "opinion")
    item = await agenda.in_group(ctx.session, item_id, group)
    if not said.strip():
        [entry] = await agenda.entries(ctx.session, [item])
        if not entry.opinions:
            ctx.reply(
                update,
                esc(
                    _("No city has given an opinion on request #{number} yet.").format(
                        number=item_id
                    )
                ),
            )
            return
        lines = [
            "💬 "
            + _("Opinions on request #{number}: {title}").format(
                number=item_id, title=f"<b>{esc_line(item.title)}</b>"
            )
        ]
        lines.extend(f"<b>{esc_line(city)}</b>: {esc(words)}" for city, words in entry.opinions)
        ctx.reply(update, "\n\n".join(lines))
        return
    _item, city = await agenda.opine(
        ctx.session, actor=await ctx.actor(), item_id=item_id, text=said, now=ctx.now()
    )
    await _redraw_card(ctx, item_id)
    ctx.reply(
        update,
        _("Noted: the opinion of {city} on request #{number}.").format(
            city=esc_line(city.name), number=item_id
        ),
    )


async def outcome(update: Update, ctx: BotContext) -> None:
    """/outcome <item> <recommendation>; /outcome <item> alone offers the other outcomes."""
    group = await chat_group(update, ctx)
    item_id, recommendation = _numbered(update, "outcome")
    item = await agenda.in_group(ctx.session, item_id, group)
    if not recommendation.strip():
        agenda.require_organiser(await ctx.actor(), group.id or 0)
        ctx.reply(
            update,
            esc(
                _(
                    "What became of item #{number}, {title}? Write the recommendation made: "
                    "/outcome {number} <recommendation>, or press a button."
                ).format(number=item_id, title=item.title)
            ),
            keyboard(
                [
                    [("📝 " + _("Noted, no recommendation"), f"ao:{item_id}:noted")],
                    [("⏸ " + _("Not reached"), f"ao:{item_id}:unreached")],
                ]
            ),
        )
        return
    await agenda.record_outcome(
        ctx.session,
        actor=await ctx.actor(),
        group=group,
        item_id=item_id,
        outcome=AgendaOutcome.RECOMMENDATION,
        recommendation=recommendation,
        now=ctx.now(),
    )
    await _redraw_card(ctx, item_id)
    ctx.reply(update, _("The outcome of item #{number} is recorded.").format(number=item_id))


# --- buttons ----------------------------------------------------------------------------------


async def card_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, CARD, where="group")
    item_id, what = int(match.group(1)), match.group(2)
    group = await chat_group(update, ctx)
    await agenda.in_group(ctx.session, item_id, group)
    actor = await ctx.actor()
    if what == "sup":
        _item, city, supports = await agenda.support(
            ctx.session, actor=actor, item_id=item_id, now=ctx.now()
        )
        said = (
            _("Noted: {city} supports request #{number}.")
            if supports
            else _("Noted: {city} no longer supports request #{number}.")
        )
        answer = said.format(city=city.name, number=item_id)
    elif what == "dec":
        agenda.require_organiser(actor, group.id or 0)
        ctx.answer(
            update,
            _("Declining needs a reason: send /decline {number} <reason>.").format(number=item_id),
            alert=True,
        )
        return
    else:
        decision = agenda.Decision.ACCEPT if what == "acc" else agenda.Decision.DEFER
        item = await agenda.decide(
            ctx.session, actor=actor, item_id=item_id, decision=decision, now=ctx.now()
        )
        answer = (
            _("Request #{number} is accepted {where}.")
            if decision is agenda.Decision.ACCEPT
            else _("Request #{number} is deferred {where}.")
        ).format(number=item_id, where=_session_words(item.session_id))
    _item, text, markup = await _card(ctx, item_id)
    ctx.edit(update, text, markup)
    ctx.answer(update, answer)


async def outcome_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, OUTCOME, where="group")
    item_id, what = int(match.group(1)), match.group(2)
    group = await chat_group(update, ctx)
    kind = AgendaOutcome.NOTED if what == "noted" else AgendaOutcome.NOT_REACHED
    item = await agenda.record_outcome(
        ctx.session,
        actor=await ctx.actor(),
        group=group,
        item_id=item_id,
        outcome=kind,
        now=ctx.now(),
    )
    await _redraw_card(ctx, item_id)
    ctx.edit(
        update,
        _("Item #{number}, {title}: {outcome}").format(
            number=item_id, title=esc_line(item.title), outcome=_(OUTCOME_WORDS[kind])
        ),
    )
    ctx.answer(update)


# --- notices ----------------------------------------------------------------------------------


@notice(agenda.DECIDED)
def _decided(params: dict[str, Any]) -> Rendered:
    number = int(params["item"])
    group = group_name_label(params["group"], params["slug"])
    title = f"<b>{esc_line(params['title'])}</b>"
    where = _session_words(params.get("session"))
    decision = agenda.Decision(params["decision"])
    if decision is agenda.Decision.ACCEPT:
        text = "✅ " + _("Your agenda request #{number} for {group}, {title}, is accepted {where}.")
    elif decision is agenda.Decision.DEFER:
        text = "⏭ " + _("Your agenda request #{number} for {group}, {title}, is deferred {where}.")
    else:
        text = "✖ " + _(
            "Your agenda request #{number} for {group}, {title}, is declined. The reason: {reason}"
        )
    return (
        text.format(
            number=number,
            group=group,
            title=title,
            where=where,
            reason=esc(params.get("reason", "")),
        ),
        None,
    )
