"""/help, and the command menu Telegram shows: what the bot can do, by role."""

from __future__ import annotations

from telegram import Update

from handlers.context import BotContext, esc
from locales import N_, _

HELP_EVERYONE = [
    ("start", N_("register as a delegate of your city")),
    ("iam", N_("<city> — claim to be a delegate of a member city")),
    ("cities", N_("member cities by country, with their local time")),
    ("groups", N_("working groups, their cities and chats")),
    ("join", N_("in a working group's chat: your city joins the group")),
    ("leave", N_("in a working group's chat: your city leaves the group")),
    ("roster", N_("in a working group's chat: its cities and delegates")),
    ("presidency", N_("the term presidency and its history")),
    ("apply", N_("<city>, <country code>, <zone> — a new city asks to join")),
    ("next", N_("the next session: local times, link, who is coming")),
    ("sessions", N_("upcoming sessions of your working groups")),
    ("hours", N_("HH:MM-HH:MM [days] — your city's working hours for planning")),
    ("request_session", N_("[reason] — your city asks for an extra session")),
    ("propose", N_("<title> — in a working group's chat: ask for an agenda item for your city")),
    ("agenda", N_("[session] — the next session's agenda and the requests waiting")),
    ("opinion", N_("<number> [text] — your city's opinion on a request; alone: all opinions")),
    ("calendar", N_("[reset] — calendar links: yours in private, the group's in its chat")),
    ("summit", N_("the network's annual summit")),
    ("election", N_("the presidency election: candidates, the ballot")),
    ("candidacy", N_("your city stands for the next term presidency")),
    ("language", N_("<code> — the language I speak with you")),
]
HELP_ORGANISERS = [
    ("plan", N_("[from to] [minutes] — best times for a session, as a poll per city")),
    ("schedule", N_("YYYY-MM-DD HH:MM [zone] [minutes] — fix a session")),
    ("move", N_("<session> YYYY-MM-DD HH:MM [zone] — move a session")),
    ("cancel", N_("<session> — cancel a session")),
    ("cadence", N_("[weeks|off] — when planning opens by itself before each quarter")),
    ("poll", N_("<question> | <option> | <option> — a poll, one vote per city; alone: guided")),
    ("closepoll", N_("[number] — close a poll now and post its result")),
    ("decline", N_("<number> <reason> — decline an agenda request")),
    ("agenda", N_("order <number> … | minutes <number> <minutes> | deadline <days>")),
    ("outcome", N_("<number> [recommendation] — what became of an agenda item")),
]
HELP_SECRETARIAT = [
    ("approve", N_("<number> — approve a delegate request")),
    ("reject", N_("<number> — reject a delegate request")),
    ("link", N_("<group> — in a group chat: make it that working group's chat")),
    ("coordinator", N_("<user id> — make a delegate a coordinator of this chat's group")),
    ("newgroup", N_("<short-name> <name> — propose or confirm a new working group")),
    ("presidency", N_("<year> <city> — record a term presidency")),
    ("secretariat", N_("list staff and pending requests; add or remove <user id>")),
    ("election", N_("open | vote | close — run the presidency election")),
    ("summit", N_("YYYY-MM-DD [YYYY-MM-DD] <city> — record the annual summit")),
    ("report", N_("<year> — the annual report: HTML, CSV figures and a chart")),
    ("broadcast", N_("<text> (or in reply to a message) — send it to the whole network")),
    ("broadcasts", N_("[number] — the latest broadcasts, or one's report")),
]


async def help_command(update: Update, ctx: BotContext) -> None:
    lines = [_("<b>What I can do</b>")]
    lines.extend(f"/{name} {esc(_(text))}" for name, text in HELP_EVERYONE)
    actor = await ctx.actor()
    if actor.is_secretariat or actor.is_presidency or actor.coordinates:
        lines.append("")
        lines.append(_("<b>For organisers</b>"))
        lines.extend(f"/{name} {esc(_(text))}" for name, text in HELP_ORGANISERS)
    if actor.is_presidency and not actor.is_secretariat:
        lines.append("")
        lines.append("/newgroup " + esc(_(HELP_SECRETARIAT[4][1])))
    if actor.is_secretariat:
        lines.append("")
        lines.append(_("<b>For the secretariat</b>"))
        lines.extend(f"/{name} {esc(_(text))}" for name, text in HELP_SECRETARIAT)
    ctx.reply(update, "\n".join(lines))
