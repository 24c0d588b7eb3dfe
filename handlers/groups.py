"""Working groups in chat: linking chats, joining and leaving, rosters, coordinators, new groups."""

from __future__ import annotations

import re
from itertools import groupby
from typing import Any

from telegram import Update

from handlers.common import (
    Usage,
    callback_parts,
    chat_of,
    command_text,
    keyboard,
    parse_user_id,
    require_group,
)
from handlers.context import BotContext, esc, esc_line
from handlers.notices import Rendered, notice
from handlers.render import city_label, display_user, group_label, group_name_label, role_name
from locales import _, country_name, local_time, ngettext
from storage import errors, groups
from storage.models import WorkingGroup


async def groups_command(update: Update, ctx: BotContext) -> None:
    lines = [_("<b>Working groups</b>")]
    for entry in await groups.overview(ctx.session):
        lines.append("")
        lines.append(group_label(entry.group))
        if entry.cities:
            names = ", ".join(esc(c.name) for c in entry.cities)
            lines.append(
                ngettext("{n} city: {names}", "{n} cities: {names}", len(entry.cities)).format(
                    n=len(entry.cities), names=names
                )
            )
        else:
            lines.append(_("No member cities yet."))
        if entry.chats:
            titles = ", ".join(esc_line(chat.title or str(chat.chat_id)) for chat in entry.chats)
            lines.append(_("Chat: {titles}").format(titles=titles))
        else:
            lines.append(_("No chat linked yet."))
    ctx.reply(update, "\n".join(lines))


async def link(update: Update, ctx: BotContext) -> None:
    require_group(update)
    slug = command_text(update)
    if not slug or " " in slug:
        raise Usage("link")
    chat = chat_of(update)
    group = await groups.link_chat(
        ctx.session,
        actor=await ctx.actor(),
        chat_id=chat.id,
        chat_type=chat.type,
        title=chat.title or "",
        slug=slug,
    )
    ctx.reply(
        update,
        _(
            "This chat is now the chat of {group}. Delegates: send /join to add your city, "
            "/roster to see who is in."
        ).format(group=group_label(group)),
    )


async def chat_group(update: Update, ctx: BotContext) -> WorkingGroup:
    """The working group of this chat, as read when the update arrived."""
    require_group(update)
    if ctx.scope.group is None:
        raise errors.ChatNotLinked()
    return ctx.scope.group


async def join(update: Update, ctx: BotContext) -> None:
    group = await chat_group(update, ctx)
    city = await groups.join(ctx.session, actor=await ctx.actor(), group=group, now=ctx.now())
    ctx.reply(
        update, _("{city} joined {group}.").format(city=city_label(city), group=group_label(group))
    )


async def leave(update: Update, ctx: BotContext) -> None:
    group = await chat_group(update, ctx)
    city = await groups.leave(ctx.session, actor=await ctx.actor(), group=group)
    ctx.reply(
        update, _("{city} left {group}.").format(city=city_label(city), group=group_label(group))
    )


async def roster(update: Update, ctx: BotContext) -> None:
    group = await chat_group(update, ctx)
    entries = await groups.roster(ctx.session, group)
    if not entries:
        ctx.reply(
            update,
            _("{group} has no member cities yet. Delegates can send /join.").format(
                group=group_label(group)
            ),
        )
        return
    now = ctx.deps.clock()
    lines = [
        group_label(group),
        ngettext(
            "{n} member city, local time now:", "{n} member cities, local time now:", len(entries)
        ).format(n=len(entries)),
    ]
    by_country = sorted(
        entries, key=lambda e: (country_name(e.city.country_code), e.city.search_key)
    )
    for code, in_country in groupby(by_country, key=lambda e: e.city.country_code):
        lines.append("")
        lines.append(f"<b>{esc(country_name(code))}</b>")
        for entry in in_country:
            lines.append(f"• {esc(entry.city.name)} — {local_time(now, entry.city.timezone)}")
            for delegate, user, coordinates in entry.delegates:
                who = display_user(user, delegate.user_id)
                mark = " — " + _("coordinator") if coordinates else ""
                lines.append(f"    ◦ {who}, {role_name(delegate.role)}{mark}")
    ctx.reply(update, "\n".join(lines))


async def coordinator(update: Update, ctx: BotContext) -> None:
    group = await chat_group(update, ctx)
    user_id = parse_user_id(command_text(update), "coordinator")
    _delegate, city = await groups.appoint_coordinator(
        ctx.session, actor=await ctx.actor(), group=group, user_id=user_id
    )
    ctx.reply(
        update,
        _("User {user_id} ({city}) now coordinates {group}.").format(
            user_id=user_id, city=city_label(city), group=group_label(group)
        ),
    )


# /newgroup: the term presidency and the secretariat must both agree ---------------------------

CONFIRM_GROUP = re.compile(r"ng:ok:(\d{1,9})")


async def newgroup(update: Update, ctx: BotContext) -> None:
    slug, _sep, name = command_text(update).partition(" ")
    if not slug:
        raise Usage("newgroup")
    actor = await ctx.actor()
    group, active = await groups.propose_group(
        ctx.session,
        actor=actor,
        slug=slug,
        name=name,
        bootstrap=ctx.deps.bootstrap_secretariat,
        today=ctx.deps.today(),
    )
    if active:
        ctx.reply(update, _("Working group {group} is created.").format(group=group_label(group)))
        return
    other = _("secretariat") if group.proposed_as == "presidency" else _("term presidency")
    ctx.reply(
        update,
        _("Working group {group} is proposed. It is created when the {other} confirms.").format(
            group=group_label(group), other=other
        ),
    )


async def confirm_button(update: Update, ctx: BotContext) -> None:
    group_id = int(callback_parts(update, CONFIRM_GROUP).group(1))
    group = await groups.confirm_group(ctx.session, actor=await ctx.actor(), group_id=group_id)
    ctx.edit(update, _("Working group {group} is created.").format(group=group_label(group)))
    ctx.answer(update)


# Notices ----------------------------------------------------------------------------------


@notice(groups.COORDINATOR_APPOINTED)
def _appointed(params: dict[str, Any]) -> Rendered:
    group = group_name_label(params["name"], params["slug"])
    return _("You are now a coordinator of {group}.").format(group=group), None


@notice(groups.PROPOSED)
def _proposed(params: dict[str, Any]) -> Rendered:
    group = group_name_label(params["name"], params["slug"])
    return (
        _("A new working group is proposed: {group}. Confirm to create it.").format(group=group),
        keyboard([[(_("Confirm"), f"ng:ok:{int(params['group_id'])}")]]),
    )
