"""Following the bot's chats: added, removed, upgraded to a supergroup, blocked; and strays."""

from __future__ import annotations

from telegram import ChatMember, Update
from telegram.constants import ChatType

from handlers import polls
from handlers.context import BotContext, esc
from locales import _
from storage import chats, users

_PRESENT = (ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED)


async def my_chat_member(update: Update, ctx: BotContext) -> None:
    change = update.my_chat_member
    if change is None:
        return
    chat = change.chat
    present = change.new_chat_member.status in _PRESENT
    was_present = change.old_chat_member.status in _PRESENT
    if chat.type == ChatType.PRIVATE:
        # Telegram tells a bot when a user blocks or unblocks it.
        await users.set_blocked(ctx.session, telegram_id=chat.id, blocked=not present)
        return
    await chats.upsert_chat(
        ctx.session,
        chat_id=chat.id,
        chat_type=chat.type,
        title=chat.title or "",
        bot_is_member=present,
    )
    if present and not was_present:
        ctx.reply(
            update,
            esc(
                _(
                    "Hello! I am the B40 working-group bot. The secretariat can make this chat a "
                    "working group's chat with /link <group>; /groups lists the groups."
                )
            ),
        )


async def migrated(update: Update, ctx: BotContext) -> None:
    message = update.effective_message
    if message is None or message.migrate_to_chat_id is None:
        return
    await chats.migrate_chat(ctx.session, old_id=message.chat.id, new_id=message.migrate_to_chat_id)


async def unknown_command(update: Update, ctx: BotContext) -> None:
    ctx.reply(update, _("I don't know that command. /help lists what I can do."))


async def plain_text(update: Update, ctx: BotContext) -> None:
    if await polls.draft_message(update, ctx):
        return  # the question and options of a poll being set up
    ctx.reply(update, _("I work with commands. /help lists what I can do."))
