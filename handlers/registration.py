"""/start and the guided registration (language → country → city → role), and /iam."""

from __future__ import annotations

import re

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatType

from handlers.common import (
    ROLE_WORDS,
    Forged,
    Usage,
    callback_parts,
    command_text,
    in_columns,
    keyboard,
    sender,
)
from handlers.context import BotContext, esc
from handlers.language import language_keyboard
from handlers.render import city_label, member_countries, role_name
from locales import _, country_name, normalize_language, use_language
from storage import delegates, errors, roster, users
from storage.models import City, DelegateRole

REG_LANGUAGE = re.compile(r"reg:lang:([A-Za-z-]{2,8})")
REG_COUNTRY = re.compile(r"reg:cc:([A-Z]{2})")
REG_CITY = re.compile(r"reg:city:(\d{1,9})")
REG_ROLE = re.compile(r"reg:role:(\d{1,9}):(mayor|focal_point|technical_staff)")


async def start(update: Update, ctx: BotContext) -> None:
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        ctx.reply(
            update,
            _(
                "Hello! I keep the rosters of the B40 working groups. In a working group's "
                "chat, delegates send /join to add their city and /roster to see who is in. "
                "/help lists everything."
            ),
        )
        return
    actor = await ctx.actor()
    if actor.is_approved_delegate and actor.city is not None:
        ctx.reply(
            update,
            _(
                "Welcome back! You are a delegate of {city}. Send /join in your working "
                "groups' chats; /help lists everything."
            ).format(city=city_label(actor.city)),
        )
        return
    if actor.pending is not None and actor.pending_city is not None:
        ctx.reply(
            update,
            _(
                "Your request to represent {city} as {role} is waiting for the secretariat. "
                "I will tell you when it is decided. To correct it, register again:"
            ).format(city=city_label(actor.pending_city), role=role_name(actor.pending.role)),
            language_keyboard("reg:lang:"),
        )
        return
    ctx.reply(
        update,
        _(
            "Welcome to the B40 Balkan Cities Network bot. Let's register you as a delegate "
            "of your city.\n\nFirst, choose your language:"
        ),
        language_keyboard("reg:lang:"),
    )


async def _country_keyboard(ctx: BotContext) -> InlineKeyboardMarkup:
    countries = await member_countries(ctx.session)
    return keyboard(in_columns([(name, f"reg:cc:{code}") for name, code in countries], 2))


async def registration_language(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, REG_LANGUAGE)
    language = normalize_language(match.group(1))
    if language is None or language != match.group(1):
        raise Forged()
    user = sender(update)
    await users.set_user_language(ctx.session, telegram_id=user.id, language=language)
    with use_language(language):
        markup = await _country_keyboard(ctx)
        text = (
            _("In which country is your city?")
            if markup.inline_keyboard
            else _("No member cities are registered yet. Please ask the secretariat.")
        )
        ctx.edit(update, text, markup)
        ctx.answer(update)


async def registration_country(update: Update, ctx: BotContext) -> None:
    code = callback_parts(update, REG_COUNTRY).group(1)
    cities = [c for c in await roster.list_cities(ctx.session) if c.country_code == code]
    if not cities:
        raise Forged()
    buttons = [(c.name, f"reg:city:{c.id}") for c in cities]
    ctx.edit(
        update,
        _("Which city do you represent in {country}?").format(country=esc(country_name(code))),
        keyboard(in_columns(buttons, 2)),
    )
    ctx.answer(update)


async def registration_city(update: Update, ctx: BotContext) -> None:
    city_id = int(callback_parts(update, REG_CITY).group(1))
    city = await _city_or_forged(ctx, city_id)
    buttons = [(role_name(role), f"reg:role:{city.id}:{role.value}") for role in DelegateRole]
    ctx.edit(
        update,
        _("What is your role for {city}?").format(city=city_label(city)),
        keyboard([[b] for b in buttons]),
    )
    ctx.answer(update)


async def registration_role(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, REG_ROLE)
    city = await _city_or_forged(ctx, int(match.group(1)))
    text = await _claim(ctx, city, DelegateRole(match.group(2)))
    ctx.edit(update, text)
    ctx.answer(update)


async def _city_or_forged(ctx: BotContext, city_id: int) -> City:
    try:
        return await roster.get_city(ctx.session, city_id)
    except errors.UnknownCity:
        raise Forged() from None


async def iam(update: Update, ctx: BotContext) -> None:
    text = command_text(update)
    if not text:
        raise Usage("iam")
    role = DelegateRole.FOCAL_POINT
    name, _sep, last = text.rpartition(" ")
    if name and last.lower() in ROLE_WORDS:
        text, role = name, ROLE_WORDS[last.lower()]
    city = await roster.find_city(ctx.session, text)
    ctx.reply(update, await _claim(ctx, city, role))


async def _claim(ctx: BotContext, city: City, role: DelegateRole) -> str:
    actor = await ctx.actor()
    _claim_row, new = await delegates.claim_city(
        ctx.session,
        actor=actor,
        city=city,
        role=role,
        bootstrap=ctx.deps.bootstrap_secretariat,
        now=ctx.now(),
    )
    labels = {"city": city_label(city), "role": role_name(role)}
    if not new:
        return _(
            "Your request to represent {city} as {role} is already waiting for the "
            "secretariat. I will tell you when it is decided."
        ).format(**labels)
    if actor.is_approved_delegate:
        return _(
            "Thank you! Your request to represent {city} as {role} from now on is waiting "
            "for the secretariat; until then you remain {current}."
        ).format(current=role_name(actor.delegate.role if actor.delegate else role), **labels)
    return _(
        "Thank you! Your request to represent {city} as {role} is waiting for the "
        "secretariat. I will tell you when it is decided."
    ).format(**labels)
