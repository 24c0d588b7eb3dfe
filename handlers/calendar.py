"""/calendar: the addresses of calendar subscriptions; a session's one-off .ics file.

In private, a person's own feed (every session of their groups, with their answers) and
the network's (every group's), each theirs alone; in a working group's chat, the group's
feed. The links are text: Telegram refuses ``webcal://`` buttons. ``/calendar reset``
stops the old address at once and gives a new one (a group's: organisers only).
"""

from __future__ import annotations

import re

from telegram import InputFile, Update
from telegram.constants import ChatType
from telegram.error import Forbidden

from handlers.common import Usage, callback_parts, chat_of, command_text
from handlers.context import BotContext, esc
from handlers.groups import chat_group
from handlers.ics import feed_url, one_off, webcal_url
from handlers.render import group_name_label
from locales import N_, _
from storage import calendars
from storage.models import FeedKind

ICS = re.compile(r"ics:(\d{1,9})")


def _links(ctx: BotContext, token: str) -> str:
    url = feed_url(ctx.deps.base_url, token)
    return f"{esc(url)}\n{esc(webcal_url(url))}"


HOW = N_(
    "Subscribe in your calendar app: Google Calendar, Other calendars → From URL (the https "
    "link); Outlook, Add calendar → Subscribe from web; Apple Calendar and Thunderbird open "
    "the webcal link. Anyone with a link sees that calendar: keep it to yourself. "
    "/calendar reset stops the old links and gives new ones."
)


async def calendar_command(update: Update, ctx: BotContext) -> None:
    """/calendar [reset]"""
    words = command_text(update).split()
    if words not in ([], ["reset"]):
        raise Usage("calendar")
    reset = words == ["reset"]
    actor = await ctx.actor()
    key, now = ctx.deps.calendar_key, ctx.now()

    async def token(
        kind: FeedKind, *, user_id: int | None = None, group_id: int | None = None
    ) -> str:
        """The feed's address: a new one on reset, else the one it has (made if none)."""
        if reset:
            _feed, made = await calendars.reset(
                ctx.session, key, kind, actor=actor, user_id=user_id, group_id=group_id, now=now
            )
        else:
            _feed, made = await calendars.address(
                ctx.session, key, kind, user_id=user_id, group_id=group_id, now=now
            )
        return made

    if chat_of(update).type in (ChatType.GROUP, ChatType.SUPERGROUP):
        group = await chat_group(update, ctx)
        lines = [
            "📅 "
            + _("The calendar of {group}: its sessions, with their agendas and join links.").format(
                group=group_name_label(group.name, group.slug)
            ),
            _links(ctx, await token(FeedKind.GROUP, group_id=group.id)),
        ]
    else:
        if not (actor.is_secretariat or actor.is_presidency):
            actor.approved_city()  # a delegate's calendar is of their city's groups
        lines = [
            "📅 " + _("Your calendar: every session of your working groups, with your answers."),
            _links(ctx, await token(FeedKind.PERSON, user_id=actor.user_id)),
            "",
            _("Every working group's sessions:"),
            _links(ctx, await token(FeedKind.NETWORK, user_id=actor.user_id)),
        ]
    if reset:
        lines.insert(0, _("New links: the old ones no longer work."))
    lines += ["", esc(_(HOW))]
    ctx.reply(update, "\n".join(lines))


async def ics_button(update: Update, ctx: BotContext) -> None:
    """A session's .ics file, sent to whoever pressed, in private."""
    session_id = int(callback_parts(update, ICS, where="any").group(1))
    shown = await calendars.one(ctx.session, session_id)
    body = one_off(shown, now=ctx.now())
    query = update.callback_query
    if query is None:
        return
    bot, user_id = ctx.bot, query.from_user.id
    in_private = chat_of(update).id == user_id
    sent_text = _("The session's calendar file is in our private chat.")
    refused_text = _(
        "I cannot write to you privately yet: open a private chat with me, press Start, "
        "then press the button again."
    )
    caption = _("Open it to add the session to your calendar.")

    async def send() -> None:
        try:
            await bot.send_document(
                user_id,
                InputFile(body, filename=f"b40-session-{session_id}.ics"),
                caption=caption,
            )
        except Forbidden:
            await bot.answer_callback_query(query.id, text=refused_text, show_alert=True)
            return
        await bot.answer_callback_query(query.id, text=None if in_private else sent_text)

    ctx.after_commit(send)
