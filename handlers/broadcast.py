"""/broadcast and /broadcasts: the secretariat speaks to the whole network.

The author writes the text (or replies /broadcast to a message, whose text and
formatting are kept), sees it exactly as recipients will, picks the audience with
buttons, is shown the exact number of recipients and confirms. From then on the
control message shows the delivery's progress, redrawn at most every few seconds,
and a final report names whoever was not reached and why.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from babel.dates import format_datetime
from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from handlers.common import (
    Forged,
    WrongChat,
    callback_parts,
    chat_of,
    command_text,
    in_columns,
    keyboard,
    parse_number,
)
from handlers.context import BotContext, edit_message, esc, esc_line
from handlers.html import UncleanCut, split_html
from handlers.notices import Rendered, notice
from handlers.render import member_countries
from locales import N_, _, country_name, locale, ngettext, normalize_language, use_language
from storage import broadcasts, chats, errors, groups
from storage.db import Database
from storage.models import Audience, Broadcast, BroadcastState
from storage.types import utcnow

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 3.0  # seconds between two redraws of a broadcast's progress

AUDIENCES = {
    Audience.GROUP_CHATS: N_("all working-group chats"),
    Audience.SOME_GROUPS: N_("the chats of chosen working groups"),
    Audience.DELEGATES: N_("all approved delegates, in private"),
    Audience.COUNTRIES: N_("the delegates of chosen countries, in private"),
}

REASONS = {
    broadcasts.BLOCKED: N_("blocked the bot"),
    broadcasts.REMOVED: N_("the bot is no longer in this chat"),
    broadcasts.NOT_STARTED: N_("never started a chat with the bot"),
    broadcasts.DEACTIVATED: N_("the account was deleted"),
    broadcasts.NOT_FOUND: N_("Telegram knows no such chat"),
    broadcasts.REFUSED: N_("Telegram refused the message"),
    broadcasts.GAVE_UP: N_("Telegram kept failing; given up after every retry"),
    broadcasts.STOPPED: N_("you stopped the broadcast before it was sent"),
    broadcasts.UNREACHABLE: N_(
        "not sent: refused the bot's last message (blocked it, or left Telegram)"
    ),
}

STATES = {
    BroadcastState.DRAFT: N_("draft"),
    BroadcastState.SENDING: N_("sending"),
    BroadcastState.DONE: N_("finished"),
    BroadcastState.CANCELLED: N_("cancelled"),
}

# bc:<id>:a:<audience> | bc:<id>:t:<audience>:<target> | bc:<id>:ok:<count> | bc:<id>:x
BUTTON = re.compile(
    r"bc:(\d{1,9}):(?:(a|t):(\w{1,12})(?::([\w-]{1,40}))?|ok:(\d{1,7})|(x|back|stop))"
)
_COMMAND = re.compile(r"^\s*/broadcast(?:@\w+)?\s*", re.IGNORECASE)
# Custom emoji are for bots with a paid username; their ordinary emoji stays.
_CUSTOM_EMOJI = re.compile(r"</?tg-emoji[^>]*>")


# --- writing ------------------------------------------------------------------------------------


def _text_of(message: Message) -> str:
    """The broadcast's HTML: after the command, or else the replied-to message's text."""
    own = _COMMAND.sub("", message.text_html or "", count=1).strip()
    if not own and message.reply_to_message is not None:
        replied = message.reply_to_message
        own = (replied.text_html if replied.text else replied.caption_html) or ""
    return _CUSTOM_EMOJI.sub("", own).strip()


async def broadcast_command(update: Update, ctx: BotContext) -> None:
    """/broadcast <text>, or /broadcast in reply to a message: in private, by the secretariat."""
    message = update.effective_message
    chat = chat_of(update)
    if chat.type != ChatType.PRIVATE:
        raise WrongChat("private")
    if message is None:
        return
    actor = await ctx.actor()
    text = _text_of(message)
    try:
        parts = split_html(text, strict=True)
    except UncleanCut:
        raise errors.BroadcastTooLong(parts=broadcasts.MAX_PARTS) from None
    draft = await broadcasts.draft(
        ctx.session, actor=actor, text=text, parts=len(parts), chat_id=chat.id, now=ctx.now()
    )
    for part in parts:  # exactly what each recipient will see
        ctx.send(chat.id, part)
    ctx.send(chat.id, _control_text(draft, None), _audience_keyboard(draft))


# --- choosing the audience ------------------------------------------------------------------------


def _audience_keyboard(draft: Broadcast) -> InlineKeyboardMarkup:
    number = draft.id
    rows = [
        [(_(label), f"bc:{number}:a:{audience.value}")] for audience, label in AUDIENCES.items()
    ]
    return keyboard([*rows, [(_("✖ Cancel"), f"bc:{number}:x")]])


async def _targets(ctx: BotContext, audience: Audience) -> list[tuple[str, str]]:
    """(label, key) of what can be chosen for this audience: groups or countries."""
    if audience == Audience.SOME_GROUPS:
        return [(group.name, group.slug) for group in await groups.active(ctx.session)]
    if audience == Audience.COUNTRIES:
        return await member_countries(ctx.session)
    return []


async def _chosen_keyboard(ctx: BotContext, draft: Broadcast, count: int) -> InlineKeyboardMarkup:
    number = draft.id
    audience = Audience(draft.audience or Audience.DELEGATES.value)
    rows: list[list[tuple[str, str]]] = []
    options = await _targets(ctx, audience)
    if options:
        toggles = [
            (
                ("✅ " if key in draft.targets else "") + label[:40],
                f"bc:{number}:t:{audience.value}:{key}",
            )
            for label, key in options
        ]
        rows.extend(in_columns(toggles, 2))
    if count:
        send = ngettext("📣 Send to {count} recipient", "📣 Send to {count} recipients", count)
        rows.append([(send.format(count=count), f"bc:{number}:ok:{count}")])
    rows.append([(_("↩ Change audience"), f"bc:{number}:back"), (_("✖ Cancel"), f"bc:{number}:x")])
    return keyboard(rows)


def _audience_line(draft: Broadcast) -> str:
    if draft.audience is None:
        return ""
    audience = Audience(draft.audience)
    line = _("Audience: {audience}").format(audience=esc(_(AUDIENCES[audience])))
    if draft.targets:
        shown = (
            [esc(country_name(code)) for code in draft.targets]
            if audience == Audience.COUNTRIES
            else [esc(slug) for slug in draft.targets]
        )
        line += " — " + ", ".join(shown)
    return line


def _control_text(draft: Broadcast, found: broadcasts.Recipients | None) -> str:
    """The draft's control message: what it is, its audience and its exact reach."""
    lines = [
        ngettext(
            "📣 <b>Broadcast #{number}</b>: the message above, {parts} message long.",
            "📣 <b>Broadcast #{number}</b>: the messages above, {parts} messages long.",
            draft.parts,
        ).format(number=draft.id, parts=draft.parts)
    ]
    if draft.audience is None:
        lines.append(_("Who should receive it?"))
        return "\n".join(lines)
    lines.append(_audience_line(draft))
    if found is None or found.total == 0:
        audience = Audience(draft.audience)
        if audience in (Audience.SOME_GROUPS, Audience.COUNTRIES) and not draft.targets:
            lines.append(_("Choose at least one below."))
        else:
            lines.append(_("Nobody is in this audience yet."))
        return "\n".join(lines)
    lines.append(
        ngettext("Recipients: <b>{count}</b>.", "Recipients: <b>{count}</b>.", found.total).format(
            count=found.total
        )
    )
    if found.unreachable:
        lines.append(
            ngettext(
                "{count} of them is known to be unreachable (blocked the bot, or removed it "
                "from the chat): nothing is sent there, and the report names them.",
                "{count} of them are known to be unreachable (blocked the bot, or removed it "
                "from the chat): nothing is sent there, and the report names them.",
                len(found.unreachable),
            ).format(count=len(found.unreachable))
        )
    lines.append(_("Nothing is sent until you press Send."))
    return "\n".join(lines)


async def broadcast_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, BUTTON, where="private")
    number = int(match.group(1))
    kind, audience_key, target, count, other = (match.group(i) for i in range(2, 7))
    actor = await ctx.actor()
    session = ctx.session
    if other == "x":
        await broadcasts.cancel(session, actor=actor, broadcast_id=number, now=ctx.now())
        ctx.answer(update)
        ctx.edit(
            update,
            _("📣 Broadcast #{number} was cancelled; nothing was sent.").format(number=number),
        )
        return
    if other == "stop":
        stopped = await broadcasts.stop(session, actor=actor, broadcast_id=number, now=ctx.now())
        changed = ctx.deps.broadcast_stopped

        async def tell_the_worker() -> None:
            changed(number)

        ctx.after_commit(tell_the_worker)
        ctx.answer(
            update,
            ngettext(
                "Broadcast #{number} stopped: {count} recipient will not get it.",
                "Broadcast #{number} stopped: {count} recipients will not get it.",
                stopped,
            ).format(number=number, count=stopped),
            alert=True,
        )
        return
    if other == "back":
        draft = await broadcasts.choose(session, actor=actor, broadcast_id=number, audience=None)
        ctx.answer(update)
        ctx.edit(update, _control_text(draft, None), _audience_keyboard(draft))
        return
    if count is not None:
        await _confirm(update, ctx, number, int(count))
        return
    try:
        audience = Audience(audience_key)
    except ValueError:
        raise Forged() from None
    draft = await broadcasts.choose(
        session,
        actor=actor,
        broadcast_id=number,
        audience=audience,
        toggle=target if kind == "t" else None,
    )
    ctx.answer(update)
    found = await broadcasts.recipients(session, draft)
    ctx.edit(update, _control_text(draft, found), await _chosen_keyboard(ctx, draft, found.total))


async def _confirm(update: Update, ctx: BotContext, number: int, expected: int) -> None:
    actor = await ctx.actor()
    session = ctx.session
    try:
        draft, found = await broadcasts.confirm(
            session, actor=actor, broadcast_id=number, expected=expected, now=ctx.now()
        )
    except errors.AudienceChanged:
        # Nothing was written; the preview shows the audience as it is now.
        draft = await broadcasts.get(session, number)
        now_found = await broadcasts.recipients(session, draft)
        count = now_found.total
        ctx.answer(
            update,
            ngettext(
                "The audience changed since this was shown: it is now {count} recipient. "
                "Check, then press Send again.",
                "The audience changed since this was shown: it is now {count} recipients. "
                "Check, then press Send again.",
                count,
            ).format(count=count),
            alert=True,
        )
        ctx.edit(update, _control_text(draft, now_found), await _chosen_keyboard(ctx, draft, count))
        return
    query = update.callback_query
    if query is not None and isinstance(query.message, Message):
        await broadcasts.set_control(
            session, broadcast_id=number, message_id=query.message.message_id
        )
    ctx.answer(update, _("Sending broadcast #{number}.").format(number=number))
    ctx.edit(
        update, progress_text(draft, broadcasts.Counts(left=found.total)), progress_keyboard(draft)
    )


# --- progress and the report ----------------------------------------------------------------------


def progress_text(draft: Broadcast, counts: broadcasts.Counts) -> str:
    """The control message while (and once) the broadcast is delivered."""
    lines = [_("📣 <b>Broadcast #{number}</b>").format(number=draft.id), _audience_line(draft)]
    lines.append(
        _("Sent {sent} · not reached {failed} · left {left} (of {total})").format(
            sent=counts.sent, failed=counts.failed, left=counts.left, total=counts.total
        )
    )
    if draft.state == BroadcastState.DONE:
        lines.append(_("Finished. The report follows."))
    else:
        lines.append(_("Sending, within Telegram's limits…"))
    return "\n".join(line for line in lines if line)


def progress_keyboard(draft: Broadcast) -> InlineKeyboardMarkup | None:
    """While a broadcast is being delivered, its author can stop it."""
    if draft.state != BroadcastState.SENDING:
        return None
    return keyboard([[(_("⏹ Stop sending"), f"bc:{draft.id}:stop")]])


def _reason(code: str) -> str:
    return _(REASONS.get(code, REASONS[broadcasts.GAVE_UP]))


@notice(broadcasts.KIND)
def _broadcast(params: dict[str, Any]) -> Rendered:
    text = params.get("text")
    if not isinstance(text, str):
        raise LookupError(f"broadcast {params.get('broadcast')} has no text")
    return text, None


@notice(broadcasts.REPORT)
def _report(params: dict[str, Any]) -> Rendered:
    sent, total = int(params["sent"]), int(params["total"])
    missed = list(params.get("missed", []))
    lines = [
        ngettext(
            "📣 <b>Broadcast #{number}</b> is finished: {sent} of {total} recipient reached.",
            "📣 <b>Broadcast #{number}</b> is finished: {sent} of {total} recipients reached.",
            total,
        ).format(number=params["number"], sent=sent, total=total)
    ]
    stopped = int(params.get("stopped", 0))
    if stopped:
        lines.append(
            ngettext(
                "You stopped it: {count} recipient was not sent it.",
                "You stopped it: {count} recipients were not sent it.",
                stopped,
            ).format(count=stopped)
        )
    if not missed:
        if not stopped:
            lines.append(_("Everyone was reached, once."))
        return "\n".join(lines), None
    lines.append(_("Not reached ({count}):").format(count=len(missed)))
    for entry in missed:
        where = f" ({esc_line(entry['city'])})" if entry.get("city") else ""
        lines.append(f"• {esc_line(entry['name'])}{where} — {esc(_reason(str(entry['reason'])))}")
    return "\n".join(lines), None


async def broadcasts_command(update: Update, ctx: BotContext) -> None:
    """/broadcasts: the latest broadcasts and their state; /broadcasts <n>: one's report."""
    actor = await ctx.actor()
    argument = command_text(update)
    if argument:
        number = parse_number(argument, "broadcasts")
        report = await broadcasts.report_of(ctx.session, actor=actor, broadcast_id=number)
        text, _markup = _report(broadcasts.report_params(report))
        if report.broadcast.state != BroadcastState.DONE:
            text = progress_text(report.broadcast, report.counts)
        ctx.reply(update, text)
        return
    found = await broadcasts.recent(ctx.session, actor=actor)
    if not found:
        ctx.reply(update, esc(_("No broadcast yet. /broadcast <text> writes one.")))
        return
    lines = [_("📣 <b>Latest broadcasts</b>")]
    for draft, counts in found:
        when = format_datetime(
            draft.confirmed_at or draft.created_at, "d MMM HH:mm", locale=locale()
        )
        state = _(STATES[BroadcastState(draft.state)])
        audience = _(AUDIENCES[Audience(draft.audience)]) if draft.audience else "—"
        line = f"#{draft.id} · {esc(when)} UTC · {esc(audience)} · {esc(state)}"
        if counts.total:
            line += " · " + _("sent {sent}, not reached {failed}, left {left}").format(
                sent=counts.sent, failed=counts.failed, left=counts.left
            )
        lines.append(line)
    lines.append(esc(_("/broadcasts <number> shows one broadcast's report.")))
    ctx.reply(update, "\n".join(lines))


@dataclass
class BroadcastProgress:
    """Redraws each broadcast's control message as its delivery moves, at most every
    ``interval`` seconds, and closes a broadcast once nobody is left (writing its report)."""

    bot: Any
    db: Database
    default_language: str = "en"
    interval: float = PROGRESS_INTERVAL
    wake_outbox: Callable[[], None] = lambda: None
    automatic: bool = True  # False: only settle() and sweep() redraw (tests drive it)
    _dirty: set[int] = field(default_factory=set)
    _timer: asyncio.TimerHandle | None = None
    _task: asyncio.Task[bool] | None = None
    _last: float = 0.0  # monotonic time of the last redraw
    # Monotonic time each broadcast was first heard of here: its confirmation drew the
    # message just then, so its first redraw comes an interval later.
    _first: dict[int, float] = field(default_factory=dict)

    def touch(self, broadcast_id: int) -> None:
        """A recipient's outcome was recorded (called by the outbox worker)."""
        self._dirty.add(broadcast_id)
        self._first.setdefault(broadcast_id, time.monotonic())
        running = self._task is not None and not self._task.done()
        if not self.automatic or self._timer is not None or running:
            return
        self._timer = asyncio.get_running_loop().call_later(self._wait(), self._start)

    def _wait(self) -> float:
        """How long until a redraw keeps every message's redraws an interval apart."""
        now = time.monotonic()
        first = min((self._first.get(b, now) for b in self._dirty), default=now)
        return max(0.0, self._last + self.interval - now, first + self.interval - now)

    def _start(self) -> None:
        self._timer = None
        wait = self._wait()
        if wait > 0:  # a sweep redrew meanwhile
            self._timer = asyncio.get_running_loop().call_later(wait, self._start)
            return
        self._task = asyncio.get_running_loop().create_task(self.flush())

    async def sweep(self) -> None:
        """Every broadcast being delivered gets looked at (after a restart, say)."""
        async with self.db.transaction() as session:
            found = await broadcasts.sending(session)
        if not self.automatic:
            self._dirty.update(found)
            await self.flush()
            return
        for broadcast_id in found:
            self.touch(broadcast_id)

    async def settle(self) -> bool:
        """Redraw what is pending now (tests, and stopping); True if a broadcast finished."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            await asyncio.shield(self._task)
        return await self.flush() if self._dirty else False

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def flush(self) -> bool:
        dirty, self._dirty = sorted(self._dirty), set()
        finished = False
        for broadcast_id in dirty:
            try:
                if await self._redraw(broadcast_id):
                    finished = True
                    self._first.pop(broadcast_id, None)
            except Exception:
                log.exception("broadcast %s: progress could not be shown", broadcast_id)
        self._last = time.monotonic()  # after the edits: the next is an interval later
        if finished:
            self.wake_outbox()
        if self._dirty and self.automatic and self._timer is None:
            # Touched while this ran: the next redraw, an interval after this one.
            self._timer = asyncio.get_running_loop().call_later(self._wait(), self._start)
        return finished

    async def _redraw(self, broadcast_id: int) -> bool:
        now = utcnow()
        async with self.db.transaction() as session:
            delivery = await broadcasts.finish(session, broadcast_id=broadcast_id, now=now)
            draft = delivery.broadcast
            languages = await chats.languages(session, [draft.chat_id or draft.author_id])
        if draft.chat_id is None or draft.message_id is None:
            return delivery.finished
        language = normalize_language(languages.get(draft.chat_id)) or self.default_language
        with use_language(language):
            text = progress_text(draft, delivery.counts)
        try:
            markup = progress_keyboard(draft)
            await edit_message(self.bot, draft.chat_id, draft.message_id, text, markup)
        except TelegramError as exc:
            # The author deleted it, or Telegram is busy: the report still comes.
            log.info("broadcast %s: progress not redrawn: %s", broadcast_id, exc)
        return delivery.finished
