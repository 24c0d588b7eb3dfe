"""/language: the language the bot speaks with a person, or in a group."""

from __future__ import annotations

import re

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatType

from handlers.common import (
    Forged,
    callback_parts,
    chat_of,
    command_text,
    in_columns,
    keyboard,
    sender,
)
from handlers.context import BotContext
from locales import SUPPORTED_LANGUAGES, _, language_name, normalize_language, use_language
from storage import chats, errors, users

LANGUAGE_BUTTON = re.compile(r"lang:([A-Za-z-]{2,8})")


def language_keyboard(prefix: str) -> InlineKeyboardMarkup:
    buttons = [(language_name(code), f"{prefix}{code}") for code in SUPPORTED_LANGUAGES]
    return keyboard(in_columns(buttons, 3))


def _supported() -> str:
    return ", ".join(SUPPORTED_LANGUAGES)


async def language_command(update: Update, ctx: BotContext) -> None:
    code = command_text(update)
    if not code:
        ctx.reply(update, _("Choose your language:"), language_keyboard("lang:"))
        return
    language = normalize_language(code)
    if language is None:
        raise errors.UnsupportedLanguage(code=code[:16], languages=_supported())
    await _set_language(update, ctx, language)


async def language_button(update: Update, ctx: BotContext) -> None:
    code = callback_parts(update, LANGUAGE_BUTTON, where="any").group(1)
    language = normalize_language(code)
    if language is None or language != code:
        raise Forged()
    await _set_language(update, ctx, language)
    ctx.answer(update)


async def _set_language(update: Update, ctx: BotContext, language: str) -> None:
    chat, user = chat_of(update), sender(update)
    if chat.type == ChatType.PRIVATE:
        await users.set_user_language(ctx.session, telegram_id=user.id, language=language)
        with use_language(language):
            ctx.reply(
                update,
                _("I will speak {language} with you.").format(language=language_name(language)),
            )
        return
    # Asked before anything is written: SQLite takes its write lock at the first write,
    # and a network round trip must not happen while the bot holds it.
    member = await ctx.bot.get_chat_member(chat.id, user.id)
    is_admin = member.status in ("creator", "administrator")
    actor = await ctx.actor()
    await chats.set_chat_language(
        ctx.session,
        actor=actor,
        is_chat_admin=is_admin,
        chat_id=chat.id,
        chat_type=chat.type,
        title=chat.title or "",
        language=language,
    )
    with use_language(language):
        ctx.reply(
            update,
            _("I will speak {language} in this chat.").format(language=language_name(language)),
        )
