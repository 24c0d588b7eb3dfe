"""/election and /candidacy: the secretariat runs the presidency election; cities stand and vote.

Votes are pressed on the ballot (``po:`` buttons, counted by ``polls.cast`` like every
poll). The ballot is secret: a message shows how many cities voted, and the counts only
once the secretariat closes the vote.
"""

from __future__ import annotations

from typing import Any

from telegram import Update

from handlers.common import Usage, chat_of, command_text
from handlers.context import BotContext, esc_line
from handlers.notices import Rendered, notice
from handlers.polls import post_tally, tally, turnout, vote_keyboard
from locales import _, current_language
from storage import elections, polls
from storage.models import PollKind, PollStatus


def _year(facts: dict[str, Any]) -> int:
    return int(facts.get("purpose") or 0)


def ballot_text(facts: dict[str, Any]) -> str:
    year = _year(facts)
    head = "🗳 " + _("Election of the term presidency {year}").format(year=year)
    if facts.get("question") == "runoff":
        head += " — " + _("runoff")
    lines = [head, ""]
    closed = facts["status"] == PollStatus.CLOSED.value
    for option in facts["options"]:
        line = f"<b>{int(option['position'])}.</b> {esc_line(option['label'])}"
        if closed:
            line += f" — <b>{int(option['count'])}</b>"
        lines.append(line)
    lines.append("")
    lines.append(turnout(facts))
    if not closed:
        lines.append(
            _(
                "Every member city has one vote, cast by any of its delegates; the last one "
                "counts. The ballot is secret: the counts are shown when the secretariat "
                "closes the vote."
            )
        )
        return "\n".join(lines)
    labels = {int(o["position"]): str(o["label"]) for o in facts["options"]}
    leading = [int(p) for p in facts["leading"]]
    if len(leading) == 1:
        lines.append(
            _("Elected: {city} holds the term presidency of {year}.").format(
                city=esc_line(labels[leading[0]]), year=year
            )
        )
    else:
        lines.append(
            _("Tied: {cities}. A runoff between them is open.").format(
                cities=", ".join(esc_line(labels[p]) for p in leading)
            )
        )
    return "\n".join(lines)


@tally(PollKind.ELECTION)
def _ballot(facts: dict[str, Any]) -> Rendered:
    return ballot_text(facts), vote_keyboard(facts)


def candidates_text(facts: dict[str, Any]) -> str:
    year = _year(facts)
    lines = [
        "🗳 " + _("Election of the term presidency {year}: candidacies are open.").format(year=year),
        _(
            "Delegates: /candidacy puts your city forward (the city holding the term before "
            "or after cannot stand). The secretariat opens the vote with /election vote."
        ),
    ]
    names = [esc_line(o["label"]) for o in facts["options"]]
    lines.append(
        _("Candidates: {cities}.").format(cities=", ".join(names))
        if names
        else _("No candidates yet.")
    )
    return "\n".join(lines)


async def election_command(update: Update, ctx: BotContext) -> None:
    """/election [open | vote | close]"""
    word = command_text(update).lower()
    actor = await ctx.actor()
    if word == "open":
        election = await elections.open_election(
            ctx.session,
            actor=actor,
            today=ctx.deps.today(),
            now=ctx.now(),
            language=current_language.get(),
        )
        ctx.reply(update, candidates_text(await polls.describe_choice(ctx.session, election)))
        return
    if word == "vote":
        election = await elections.open_vote(ctx.session, actor=actor, now=ctx.now())
        await _post_ballot(ctx, election.id or 0, chat_of(update).id)
        return
    if word == "close":
        decision = await elections.close(ctx.session, actor=actor, now=ctx.now())
        ctx.redraw(decision.election.id or 0)
        facts = await polls.describe_choice(ctx.session, decision.election)
        ctx.reply(update, ballot_text(facts))
        if decision.runoff is not None:
            await _post_ballot(ctx, decision.runoff.id or 0, chat_of(update).id)
        return
    if word:
        raise Usage("election")
    running = await elections.current(ctx.session)
    if running is None:
        ctx.reply(
            update,
            _(
                "No presidency election is under way. The secretariat opens one with "
                "/election open; /presidency shows the terms."
            ),
        )
        return
    facts = await polls.describe_choice(ctx.session, running)
    if running.status == PollStatus.DRAFT.value:
        ctx.reply(update, candidates_text(facts))
    else:
        ctx.reply(update, ballot_text(facts), vote_keyboard(facts))


async def _post_ballot(ctx: BotContext, poll_id: int, chat_id: int) -> None:
    """The ballot whose count the bot keeps up to date (the tally message)."""
    facts = await polls.describe_choice(ctx.session, await polls.get(ctx.session, poll_id))
    post_tally(ctx, poll_id, chat_id, _ballot(facts))


async def candidacy(update: Update, ctx: BotContext) -> None:
    """/candidacy: the delegate's city stands for the next term presidency."""
    election, city = await elections.stand(ctx.session, actor=await ctx.actor())
    facts: dict[str, Any] = await polls.describe_choice(ctx.session, election)
    ctx.reply(
        update,
        _("{city} stands for the term presidency of {year}.").format(
            city=esc_line(city.name), year=_year(facts)
        )
        + "\n"
        + _("Candidates: {cities}.").format(
            cities=", ".join(esc_line(o["label"]) for o in facts["options"])
        ),
    )


@notice(elections.OPENED)
def _opened(params: dict[str, Any]) -> Rendered:
    return ballot_text(params), vote_keyboard(params)


@notice(elections.DECIDED)
def _decided(params: dict[str, Any]) -> Rendered:
    return ballot_text(params), None
