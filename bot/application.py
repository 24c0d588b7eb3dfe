"""The one place where the bot is wired: every handler the bot has is registered here."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.settings import Settings
from handlers import chats, errors, groups, membership, network
from handlers.common import Forged
from handlers.context import BotContext, Deps, run_update
from handlers.outbox import OutboxWorker
from locales import SUPPORTED_LANGUAGES, _, use_language
from storage import updates
from storage.db import Database
from storage.types import utcnow

log = logging.getLogger(__name__)

OUTBOX_INTERVAL_SECONDS = 10


class B40Application(Application[Any, BotContext, Any, Any, Any, Any]):
    """PTB's Application, with every update processed inside one unit of work."""

    deps: Deps
    outbox: OutboxWorker

    async def process_update(self, update: object) -> None:
        async def process() -> None:
            await super(B40Application, self).process_update(update)

        await run_update(self.deps, update, process)


# New messages only: an edited "/join" must not join twice.
NEW = filters.UpdateType.MESSAGE

# (command, handler): the bot's whole vocabulary.
COMMANDS = [
    ("start", network.start),
    ("help", network.help_command),
    ("iam", network.iam),
    ("approve", network.approve),
    ("reject", network.reject),
    ("cities", network.cities),
    ("presidency", network.presidency_command),
    ("language", network.language_command),
    ("secretariat", network.secretariat_command),
    ("groups", groups.groups_command),
    ("link", groups.link),
    ("join", groups.join),
    ("leave", groups.leave),
    ("roster", groups.roster),
    ("coordinator", groups.coordinator),
    ("newgroup", groups.newgroup),
    ("apply", membership.apply),
]

# (pattern prefix, handler): every button the bot draws; anything else is forged.
BUTTONS = [
    (r"^reg:lang:", network.registration_language),
    (r"^reg:cc:", network.registration_country),
    (r"^reg:city:", network.registration_city),
    (r"^reg:role:", network.registration_role),
    (r"^dlg:", network.decide_button),
    (r"^lang:", network.language_button),
    (r"^ng:", groups.confirm_button),
    (r"^app:", membership.decide_button),
]


async def _forged(update: Update, context: BotContext) -> None:
    raise Forged()


def build_application(
    settings: Settings,
    db: Database,
    *,
    token: str | None = None,
    request: BaseRequest | None = None,
    clock: Any = None,
    rate_limiter: bool = True,
    jobs: bool = True,
) -> B40Application:
    """Build the bot. ``request`` replaces the HTTP layer (tests); ``clock`` the time (tests)."""
    builder = (
        ApplicationBuilder()
        .application_class(B40Application)
        .token(token or settings.require_token())
        .base_url(settings.telegram_api_url)
        .context_types(ContextTypes(context=BotContext))
        .post_init(_post_init)
    )
    if settings.telegram_api_url != "https://api.telegram.org/bot":
        builder = builder.base_file_url(
            settings.telegram_api_url.removesuffix("/bot") + "/file/bot"
        )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    if rate_limiter:
        # Replies retry a 429 twice; the outbox worker handles what is left.
        limiter: Any = AIORateLimiter(max_retries=2)  # PTB types the builder for no limiter
        builder = builder.rate_limiter(limiter)
    if not jobs:
        builder = builder.job_queue(None)  # type: ignore[arg-type]  # None disables, as documented
    application = builder.build()
    if not isinstance(application, B40Application):  # the builder was given the class above
        raise TypeError(f"expected a B40Application, got {type(application).__name__}")

    application.outbox = OutboxWorker(application.bot, db)
    application.deps = Deps(
        db=db,
        bootstrap_secretariat=settings.secretariat,
        default_language=settings.default_language,
        reference_zone=settings.timezone,
        clock=clock or utcnow,
        outbox_written=application.outbox.kick,
    )

    # Group -1: the bot follows its chats before anything else looks at an update.
    application.add_handler(
        ChatMemberHandler(chats.my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER), -1
    )
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, chats.migrated), -1)

    # Group 0: commands and buttons; the fallbacks come last so they only catch strays.
    for name, callback in COMMANDS:
        application.add_handler(CommandHandler(name, callback, filters=NEW))
    for pattern, button in BUTTONS:
        application.add_handler(CallbackQueryHandler(button, pattern=pattern))
    application.add_handler(CallbackQueryHandler(_forged))
    application.add_handler(
        MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE & NEW, chats.unknown_command)
    )
    application.add_handler(
        MessageHandler(
            filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE & NEW, chats.plain_text
        )
    )

    application.add_error_handler(errors.on_error)

    if jobs and application.job_queue is not None:
        job_kwargs = {"misfire_grace_time": 60, "coalesce": True, "max_instances": 1}
        application.job_queue.run_repeating(
            _deliver_outbox,
            interval=OUTBOX_INTERVAL_SECONDS,
            first=1,
            name="outbox",
            job_kwargs=job_kwargs,
        )
        application.job_queue.run_repeating(
            _forget_updates, interval=3600, first=60, name="forget-updates", job_kwargs=job_kwargs
        )
    return application


async def _deliver_outbox(context: BotContext) -> None:
    application = context.application
    if isinstance(application, B40Application):
        await application.outbox.deliver_due()


async def _forget_updates(context: BotContext) -> None:
    application = context.application
    if isinstance(application, B40Application):
        async with application.deps.db.transaction() as session:
            await updates.forget_old(session)


HELP_COMMANDS = [name for name, _text in network.HELP_EVERYONE]


async def _post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Telegram's command menu, in every language Telegram can tell apart."""
    descriptions = dict(network.HELP_EVERYONE)
    for code in SUPPORTED_LANGUAGES:
        if code == "sr-Latn":
            continue  # Telegram knows only "sr"; the Cyrillic menu serves it
        with use_language(code):
            commands = [
                BotCommand(name, _(descriptions[name]).split(" — ")[-1][:256])
                for name in HELP_COMMANDS
            ]
        language_code = "sr" if code == "sr-Cyrl" else code
        await application.bot.set_my_commands(
            commands, language_code=None if code == "en" else language_code
        )
