"""/poll and /closepoll: questions to a working group's cities, one city, one vote.

The one-line form opens a poll at once with the defaults of ``polls.Rules``; ``/poll``
alone starts the guided form in the organiser's private chat (question and options
as a message, then the rules by buttons, then Open), so the group sees only the poll.
The tally message is redrawn by ``TallyDrawer``, at most once a second per poll.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, RetryAfter, TelegramError

from handlers.common import Usage, callback_parts, chat_of, command_text, keyboard, parse_number
from handlers.context import BotContext, edit_message, esc_line, retry_after_seconds
from handlers.groups import chat_group
from handlers.notices import Rendered, notice
from handlers.render import group_name_label
from handlers.when import time_table
from locales import N_, _, current_language, ngettext, normalize_language, use_language
from storage import errors, polls
from storage.db import Database
from storage.models import PollKind, PollStatus, Quorum, Threshold

log = logging.getLogger(__name__)

VOTE = re.compile(r"po:(\d{1,9}):(\d{1,2})")
DRAFT = re.compile(r"pd:(\d{1,9}):(multi|hidden|anon|runs|quorum|threshold|open|drop)")
RUNS_FOR = (1, 3, 7, 14)  # days, as the guided form offers them
BUTTON_LABEL = 40  # characters of an option shown on its button; the message has it whole

QUORUM_WORDS = {
    Quorum.NONE: N_("no quorum"),
    Quorum.THIRD: N_("a third of the cities must vote"),
    Quorum.HALF: N_("half of the cities must vote"),
    Quorum.TWO_THIRDS: N_("two thirds of the cities must vote"),
}
THRESHOLD_WORDS = {
    Threshold.MAJORITY: N_("carried by more than half of the votes"),
    Threshold.TWO_THIRDS: N_("carried by two thirds of the votes"),
}
THRESHOLD_SHORT = {
    Threshold.MAJORITY: N_("more than half of the votes"),
    Threshold.TWO_THIRDS: N_("two thirds of the votes"),
}


# --- what a poll says -------------------------------------------------------------------------


def _places(facts: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(name), str(zone)) for name, zone in facts.get("places") or []]


def rules_line(facts: dict[str, Any]) -> str:
    return " · ".join(
        [
            _("several choices per city") if facts["multiple"] else _("one choice per city"),
            _("results when it closes") if facts["hidden"] else _("results live"),
            _("anonymous: counts only") if facts["anonymous"] else _("open: cities are named"),
            _(QUORUM_WORDS[Quorum(facts["quorum"])]),
            _(THRESHOLD_WORDS[Threshold(facts["threshold"])]),
        ]
    )


def turnout(facts: dict[str, Any]) -> str:
    voted, entitled = int(facts["voted"]), int(facts["entitled"])
    return ngettext(
        "{voted} of {entitled} city voted.", "{voted} of {entitled} cities voted.", entitled
    ).format(voted=voted, entitled=entitled)


def option_lines(facts: dict[str, Any], *, counts: bool) -> list[str]:
    lines = []
    for option in facts["options"]:
        line = f"<b>{int(option['position'])}.</b> {esc_line(option['label'])}"
        if counts:
            line += f" — <b>{int(option['count'])}</b>"
            if option.get("cities"):
                line += " (" + ", ".join(esc_line(name) for name in option["cities"]) + ")"
        lines.append(line)
    return lines


def verdict(facts: dict[str, Any]) -> str:
    """The result in words: turnout against quorum, then what carried."""
    labels = {int(o["position"]): str(o["label"]) for o in facts["options"]}
    counts = {int(o["position"]): int(o["count"]) for o in facts["options"]}
    voted = int(facts["voted"])
    if voted == 0:
        return _("No city voted, so there is no result.")
    if not facts["quorum_met"]:
        return ngettext(
            "Quorum not reached: {needed} city had to vote. No result.",
            "Quorum not reached: {needed} cities had to vote. No result.",
            int(facts["quorum_needed"]),
        ).format(needed=int(facts["quorum_needed"]))
    carried = [int(p) for p in facts["carried"]]
    if carried:
        return "\n".join(
            ngettext(
                "Carried: {option}, chosen by {count} of {voted} city that voted.",
                "Carried: {option}, chosen by {count} of {voted} cities that voted.",
                voted,
            ).format(option=esc_line(labels[p]), count=counts[p], voted=voted)
            for p in carried
        )
    said = _("Nothing carried: no option was chosen by {threshold}.").format(
        threshold=_(THRESHOLD_SHORT[Threshold(facts["threshold"])])
    )
    leading = [int(p) for p in facts["leading"]]
    if len(leading) > 1:
        said += " " + _("Tied: {options}.").format(
            options=", ".join(esc_line(labels[p]) for p in leading)
        )
    return said


def poll_text(facts: dict[str, Any]) -> str:
    status = facts["status"]
    closed = status == PollStatus.CLOSED.value
    head = "📊 " + _("Poll #{number}").format(number=int(facts["poll"]))
    if facts.get("group"):
        head += " · " + group_name_label(facts["group"], facts["slug"])
    lines = [head, f"<b>{esc_line(facts['question'])}</b>", ""]
    lines.extend(option_lines(facts, counts=closed or not facts["hidden"]))
    lines.append("")
    lines.append(turnout(facts))
    if closed:
        lines.append(_("Closed.") + " " + verdict(facts))
        lines.append("<i>" + rules_line(facts) + "</i>")
        return "\n".join(lines)
    lines.append("<i>" + rules_line(facts) + "</i>")
    deadline = time_table(datetime.fromisoformat(facts["closes_at"]), None, _places(facts))
    lines.append(_("Closes {deadline}.").format(deadline=deadline.replace("\n", " ")))
    how = (
        _("Delegates: press to choose or unchoose options for your city.")
        if facts["multiple"]
        else _("Delegates: press an option to vote for your city.")
    )
    lines.append(
        how
        + " "
        + _(
            "The last vote from your city counts. Organisers close it with /closepoll {number}."
        ).format(number=int(facts["poll"]))
    )
    return "\n".join(lines)


def vote_keyboard(facts: dict[str, Any]) -> InlineKeyboardMarkup | None:
    if facts["status"] != PollStatus.OPEN.value:
        return None
    poll = int(facts["poll"])
    rows = []
    for option in facts["options"]:
        label = " ".join(str(option["label"]).split())
        if len(label) > BUTTON_LABEL:
            label = label[: BUTTON_LABEL - 1].rstrip() + "…"
        rows.append([(f"{int(option['position'])}. {label}", f"po:{poll}:{option['position']}")])
    return keyboard(rows)


def draft_text(facts: dict[str, Any]) -> str:
    lines = [
        "📝 "
        + _("Draft poll #{number} for {group}").format(
            number=int(facts["poll"]), group=group_name_label(facts["group"], facts["slug"])
        ),
        f"<b>{esc_line(facts['question'])}</b>",
        "",
        *option_lines(facts, counts=False),
        "",
        "<i>" + rules_line(facts) + "</i>",
        _("Runs for {days}.").format(days=_days(facts)),
        _("Change the rules with the buttons, then press Open to post it in the group."),
    ]
    return "\n".join(lines)


def _days(facts: dict[str, Any]) -> str:
    days = _runs_for_days(facts)
    return ngettext("{n} day", "{n} days", days).format(n=days)


def _runs_for_days(facts: dict[str, Any]) -> int:
    runs = datetime.fromisoformat(facts["closes_at"]) - datetime.fromisoformat(facts["created_at"])
    return max(1, round(runs / timedelta(days=1)))


def draft_keyboard(facts: dict[str, Any]) -> InlineKeyboardMarkup:
    poll = int(facts["poll"])

    def on(flag: bool) -> str:
        return "☑" if flag else "☐"

    return keyboard(
        [
            [
                (f"{on(facts['multiple'])} " + _("Several choices"), f"pd:{poll}:multi"),
                (f"{on(facts['hidden'])} " + _("Results at the end"), f"pd:{poll}:hidden"),
            ],
            [
                (f"{on(facts['anonymous'])} " + _("Anonymous"), f"pd:{poll}:anon"),
                ("⏳ " + _days(facts), f"pd:{poll}:runs"),
            ],
            [
                ("👥 " + _(QUORUM_WORDS[Quorum(facts["quorum"])]), f"pd:{poll}:quorum"),
                ("⚖ " + _(THRESHOLD_SHORT[Threshold(facts["threshold"])]), f"pd:{poll}:threshold"),
            ],
            [("▶ " + _("Open"), f"pd:{poll}:open"), ("✖ " + _("Discard"), f"pd:{poll}:drop")],
        ]
    )


async def _facts(ctx: BotContext, poll_id: int) -> dict[str, Any]:
    poll = await polls.get(ctx.session, poll_id)
    facts = await polls.describe_choice(ctx.session, poll)
    facts["created_at"] = poll.created_at.isoformat()
    return facts


# --- commands ---------------------------------------------------------------------------------


def parse_poll(text: str) -> tuple[str, list[str]]:
    """``question | option | option [| …]``"""
    question, *options = (part.strip() for part in text.split("|"))
    if not question or not options:
        raise Usage("poll")
    return question, options


async def poll_command(update: Update, ctx: BotContext) -> None:
    """/poll <question> | <option> | <option> [| …], or /poll alone for the guided form."""
    group = await chat_group(update, ctx)
    text = command_text(update)
    actor = await ctx.actor()
    if not text:
        draft = await polls.start_draft(
            ctx.session,
            actor=actor,
            group=group,
            chat_id=chat_of(update).id,
            now=ctx.now(),
            language=current_language.get(),
        )
        ctx.reply(
            update,
            _(
                "I have written to you privately: set up the poll there, and I will post it "
                "here. Nothing came? Open a private chat with me, press Start, then send /poll "
                "here again."
            ),
        )
        ctx.send(
            actor.user_id,
            _(
                "A new poll for {group} (draft #{number}). Send me the question on the first "
                "line and each option on a line of its own, e.g.\n"
                "Which theme for the spring session?\nHeat action plans\nFlood defence"
            ).format(group=group_name_label(group.name, group.slug), number=draft.id),
        )
        return
    question, options = parse_poll(text)
    poll = await polls.open_choice(
        ctx.session,
        actor=actor,
        group=group,
        question=question,
        options=options,
        rules=polls.Rules(),
        now=ctx.now(),
        language=current_language.get(),
    )
    await _post(ctx, poll.id or 0, chat_of(update).id)


async def _post(ctx: BotContext, poll_id: int, chat_id: int) -> None:
    facts = await _facts(ctx, poll_id)
    post_tally(ctx, poll_id, chat_id, _tally(facts))


def post_tally(ctx: BotContext, poll_id: int, chat_id: int, rendered: Rendered) -> None:
    """Post a poll's tally message; once sent, the poll knows the message to redraw."""
    db = ctx.deps.db

    async def remember(message: Message) -> None:
        async with db.transaction() as session:
            await polls.attach(
                session, poll_id=poll_id, chat_id=message.chat.id, message_id=message.message_id
            )

    text, markup = rendered
    ctx.send(chat_id, text, markup, on_sent=remember)


async def draft_message(update: Update, ctx: BotContext) -> bool:
    """Plain text in private chat that answers a draft's prompt; False if there is none."""
    actor = await ctx.actor()
    draft = await polls.waiting_draft_of(ctx.session, user_id=actor.user_id)
    if draft is None:
        return False
    message = update.effective_message
    lines = [line for line in (message.text or "").splitlines() if line.strip()] if message else []
    if not lines:
        return False
    await polls.fill_draft(
        ctx.session, actor=actor, poll=draft, question=lines[0], options=lines[1:]
    )
    facts = await _facts(ctx, draft.id or 0)
    ctx.reply(update, draft_text(facts), draft_keyboard(facts))
    return True


def _next_rules(rules: polls.Rules, what: str) -> polls.Rules:
    """The rules after pressing one button of the guided form."""
    if what == "multi":
        return replace(rules, multiple=not rules.multiple)
    if what == "hidden":
        return replace(rules, hidden=not rules.hidden)
    if what == "anon":
        return replace(rules, anonymous=not rules.anonymous)
    if what == "quorum":
        quorums = list(Quorum)
        return replace(rules, quorum=quorums[(quorums.index(rules.quorum) + 1) % len(quorums)])
    if what == "threshold":
        thresholds = list(Threshold)
        following = thresholds[(thresholds.index(rules.threshold) + 1) % len(thresholds)]
        return replace(rules, threshold=following)
    days = round(rules.runs_for / timedelta(days=1))
    later = [d for d in RUNS_FOR if d > days]
    return replace(rules, runs_for=timedelta(days=later[0] if later else RUNS_FOR[0]))


async def draft_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, DRAFT, where="private")
    poll_id, what = int(match.group(1)), match.group(2)
    actor = await ctx.actor()
    if what == "drop":
        await polls.discard(ctx.session, actor=actor, poll_id=poll_id)
        ctx.edit(update, _("Draft poll #{number} discarded.").format(number=poll_id))
        ctx.answer(update)
        return
    if what == "open":
        poll = await polls.publish(ctx.session, actor=actor, poll_id=poll_id, now=ctx.now())
        await _post(ctx, poll_id, poll.chat_id or 0)
        ctx.edit(update, _("Poll #{number} is open in the group's chat.").format(number=poll_id))
        ctx.answer(update)
        return
    poll = await polls.get(ctx.session, poll_id)
    await polls.configure(
        ctx.session, actor=actor, poll_id=poll_id, rules=_next_rules(polls.Rules.of(poll), what)
    )
    facts = await _facts(ctx, poll_id)
    ctx.edit(update, draft_text(facts), draft_keyboard(facts))
    ctx.answer(update)


async def vote_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, VOTE, where="any")
    poll_id, position = int(match.group(1)), int(match.group(2))
    cast = await polls.cast(
        ctx.session, actor=await ctx.actor(), poll_id=poll_id, position=position, now=ctx.now()
    )
    query = update.callback_query
    message = query.message if query is not None else None
    if cast.poll.kind == PollKind.CHOICE.value and cast.poll.message_id is None and message:
        # The message's id was not recorded when it was sent (a fault in between): it is this.
        await polls.attach(
            ctx.session, poll_id=poll_id, chat_id=message.chat.id, message_id=message.message_id
        )
    if not cast.chosen:
        said = _("Noted: {city} now chooses nothing in poll #{number}.")
    elif cast.changed:
        said = _("Noted for {city}: {options}.")
    else:
        said = _("{city} already chose {options}; nothing changed.")
    ctx.answer(
        update,
        said.format(
            city=cast.city.name,
            number=poll_id,
            options=", ".join(str(p) for p in cast.chosen),
        ),
    )
    if cast.changed:
        ctx.redraw(poll_id)


async def closepoll(update: Update, ctx: BotContext) -> None:
    """/closepoll [number]: close one of this group's polls now; the result is posted."""
    group = await chat_group(update, ctx)
    text = command_text(update)
    if text:
        poll_id = parse_number(text, "closepoll")
    else:
        open_now = await polls.open_choices(ctx.session, group.id or 0)
        if not open_now:
            raise errors.NoOpenPoll()
        if len(open_now) > 1:
            raise errors.SeveralOpenPolls(polls=", ".join(f"#{p.id}" for p in open_now))
        poll_id = open_now[0].id or 0
    poll = await polls.get(ctx.session, poll_id)
    if poll.group_id != group.id:
        raise errors.UnknownPoll(poll=poll_id)
    await polls.close_choice(ctx.session, actor=await ctx.actor(), poll_id=poll_id, now=ctx.now())
    ctx.redraw(poll_id)


# --- notices ----------------------------------------------------------------------------------


@notice(polls.RESULT)
def _result(params: dict[str, Any]) -> Rendered:
    return "🏁 " + _("Poll #{number} has closed.").format(number=int(params["poll"])) + "\n\n" + (
        poll_text(params)
    ), None


# --- the tally message ------------------------------------------------------------------------


@dataclass
class _Drawing:
    last: float = float("-inf")  # monotonic time of the last edit
    task: asyncio.Task[None] | None = None
    again: bool = False


@dataclass
class TallyDrawer:
    """Redraws a poll's tally message after votes, at most once per ``interval`` per poll.

    A burst of votes becomes one edit a second, and the edit after the last vote reads
    the database after that vote's commit, so once a burst is over the message shows
    the exact count. What each edit showed is recorded (``Poll.drawn``): the sweep
    redraws any poll whose message fell behind, after a restart too.
    """

    bot: Bot
    db: Database
    default_language: str = "en"
    interval: float = 1.0
    _drawing: dict[int, _Drawing] = field(default_factory=dict)

    def request(self, poll_id: int) -> None:
        state = self._drawing.setdefault(poll_id, _Drawing())
        if state.task is not None and not state.task.done():
            state.again = True
            return
        state.task = asyncio.get_running_loop().create_task(self._run(poll_id, state))

    async def settle(self) -> None:
        """Wait until every requested redraw is done (tests, shutdown)."""
        while pending := [s.task for s in self._drawing.values() if s.task and not s.task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self, poll_id: int, state: _Drawing) -> None:
        while True:
            wait = state.last + self.interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            state.again = False
            try:
                await self.draw(poll_id)
            except RetryAfter as exc:
                state.again = True
                state.last = time.monotonic() + retry_after_seconds(exc) - self.interval
                continue
            except Exception:
                log.exception("the tally of poll %s could not be redrawn", poll_id)
            state.last = time.monotonic()
            if not state.again:
                return

    async def draw(self, poll_id: int) -> None:
        """Edit the poll's message to what the database holds now (if it shows less)."""
        async with self.db.transaction() as session:
            poll = await polls.get(session, poll_id)
            state = await polls.drawn_state(session, poll)
            if poll.message_id is None or poll.chat_id is None or poll.drawn == state:
                return
            facts = await polls.describe_choice(session, poll)
            language = await polls.chat_language(session, poll) or self.default_language
        render = TALLIES[poll.kind]
        with use_language(normalize_language(language) or self.default_language):
            text, markup = render(facts)
        try:
            await edit_message(self.bot, poll.chat_id, poll.message_id, text, markup)
        except BadRequest as exc:
            log.warning("the tally of poll %s cannot be shown: %s", poll_id, exc)
        except RetryAfter:
            raise
        except TelegramError as exc:
            log.warning("the tally of poll %s was not redrawn: %s", poll_id, exc)
            return  # left stale: the sweep tries again
        async with self.db.transaction() as session:
            await polls.mark_drawn(session, poll_id=poll_id, state=state)


# How each kind of poll's tally message reads; handlers.elections adds the ballot's.
TALLIES: dict[str, Callable[[dict[str, Any]], Rendered]] = {}


def tally(kind: PollKind) -> Callable[[Callable[[dict[str, Any]], Rendered]], Any]:
    def register(render: Callable[[dict[str, Any]], Rendered]) -> Any:
        TALLIES[kind.value] = render
        return render

    return register


@tally(PollKind.CHOICE)
def _tally(facts: dict[str, Any]) -> Rendered:
    return poll_text(facts), vote_keyboard(facts)
