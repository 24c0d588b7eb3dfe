"""The one place where the bot is wired: every handler the bot has is registered here."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (
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
from handlers import (
    agenda,
    broadcast,
    calendar,
    chats,
    cities,
    delegates,
    elections,
    errors,
    groups,
    language,
    membership,
    menu,
    plans,
    polls,
    presidency,
    registration,
    report,
    secretariat,
    sessions,
    summit,
)
from handlers.common import Forged
from handlers.context import BotContext, Deps, Progress, run_update
from handlers.limiter import TelegramLimiter
from handlers.outbox import OutboxWorker
from locales import SUPPORTED_LANGUAGES, _, use_language
from scheduler.clock import Clock, utcnow
from storage import plans as plans_store
from storage import polls as polls_store
from storage import sessions as sessions_store
from storage import updates
from storage.db import Database
from storage.errors import DomainError
from storage.models import PollKind

log = logging.getLogger(__name__)

OUTBOX_INTERVAL_SECONDS = 10
# Reminders are due to the minute; the sweep only reads what the database says is owed.
SESSIONS_INTERVAL_SECONDS = 60
# Polls close at their deadline within this; a tally left stale by a restart is redrawn.
POLLS_INTERVAL_SECONDS = 30


class B40Application(Application[Any, BotContext, Any, Any, Any, Any]):
    """PTB's Application, with every update processed inside one unit of work."""

    deps: Deps
    outbox: OutboxWorker
    tallies: polls.TallyDrawer
    progress: Progress
    broadcasts: broadcast.BroadcastProgress

    async def process_update(self, update: object) -> None:
        if isinstance(update, Update) and not self.takes(update):
            return  # chatter no handler takes opens no transaction at all

        async def process() -> None:
            await super(B40Application, self).process_update(update)

        await run_update(self.deps, update, process, self.progress)

    def takes(self, update: Update) -> bool:
        """Whether any handler would take this update."""
        return any(
            handler.check_update(update) not in (None, False)
            for group in self.handlers.values()
            for handler in group
        )

    async def initialize(self) -> None:
        await super().initialize()
        # Here and not in post_init, which only run_polling/run_webhook call: every way
        # of starting the bot publishes its menu.
        await publish_commands(self)

    def stopped(self, broadcast_id: int) -> None:
        """A broadcast was stopped: the worker drops what it holds of it, and its author
        gets the progress's last redraw and the report."""
        self.outbox.stop_batch(broadcast_id)
        self.broadcasts.touch(broadcast_id)

    async def stop(self) -> None:
        self.outbox.stop()
        self.broadcasts.stop()
        await self.tallies.settle()
        await super().stop()


# New messages only: an edited "/join" must not join twice.
NEW = filters.UpdateType.MESSAGE

# (command, handler): the bot's whole vocabulary.
COMMANDS = [
    ("start", registration.start),
    ("help", menu.help_command),
    ("iam", registration.iam),
    ("approve", delegates.approve),
    ("reject", delegates.reject),
    ("cities", cities.cities),
    ("presidency", presidency.presidency_command),
    ("language", language.language_command),
    ("secretariat", secretariat.secretariat_command),
    ("groups", groups.groups_command),
    ("link", groups.link),
    ("join", groups.join),
    ("leave", groups.leave),
    ("roster", groups.roster),
    ("coordinator", groups.coordinator),
    ("newgroup", groups.newgroup),
    ("apply", membership.apply),
    ("schedule", sessions.schedule),
    ("next", sessions.next_command),
    ("sessions", sessions.sessions_command),
    ("move", sessions.move),
    ("cancel", sessions.cancel),
    ("plan", plans.plan),
    ("hours", cities.hours),
    ("request_session", plans.request_session),
    ("cadence", plans.cadence),
    ("poll", polls.poll_command),
    ("closepoll", polls.closepoll),
    ("election", elections.election_command),
    ("candidacy", elections.candidacy),
    ("propose", agenda.propose),
    ("agenda", agenda.agenda_command),
    ("decline", agenda.decline),
    ("opinion", agenda.opinion),
    ("outcome", agenda.outcome),
    ("calendar", calendar.calendar_command),
    ("summit", summit.summit_command),
    ("report", report.report_command),
    ("broadcast", broadcast.broadcast_command),
    ("broadcasts", broadcast.broadcasts_command),
]

# (pattern prefix, handler): every button the bot draws; anything else is forged.
BUTTONS = [
    (r"^reg:lang:", registration.registration_language),
    (r"^reg:cc:", registration.registration_country),
    (r"^reg:city:", registration.registration_city),
    (r"^reg:role:", registration.registration_role),
    (r"^dlg:", delegates.decide_button),
    (r"^lang:", language.language_button),
    (r"^ng:", groups.confirm_button),
    (r"^app:", membership.decide_button),
    (r"^rsvp:", sessions.rsvp_button),
    (r"^ses:cancel:", sessions.cancel_button),
    (r"^pl:", plans.poll_button),
    (r"^po:", polls.vote_button),
    (r"^pd:", polls.draft_button),
    (r"^ag:", agenda.card_button),
    (r"^ao:", agenda.outcome_button),
    (r"^ics:", calendar.ics_button),
    (r"^bc:", broadcast.broadcast_button),
]


async def _forged(update: Update, context: BotContext) -> None:
    raise Forged()


def build_application(
    settings: Settings,
    db: Database,
    *,
    token: str | None = None,
    request: BaseRequest | None = None,
    clock: Clock | None = None,
    rate_limiter: bool | TelegramLimiter = True,
    jobs: bool = True,
) -> B40Application:
    """Build the bot. ``request`` replaces the HTTP layer (tests); ``clock`` the time (tests)."""
    builder = (
        ApplicationBuilder()
        .application_class(B40Application)
        .token(token or settings.require_token())
        .base_url(settings.telegram_api_url)
        .context_types(ContextTypes(context=BotContext))
    )
    if settings.telegram_api_url != "https://api.telegram.org/bot":
        builder = builder.base_file_url(
            settings.telegram_api_url.removesuffix("/bot") + "/file/bot"
        )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    if rate_limiter:
        # The limiter paces sending (30/s overall, 20/min per group, 1/s per chat); it never
        # sleeps out a 429 itself: a reply that meets one goes to the outbox, which waits for
        # that chat only.
        limiter: Any = TelegramLimiter() if rate_limiter is True else rate_limiter
        builder = builder.rate_limiter(limiter)  # PTB types the builder for no limiter
    if not jobs:
        builder = builder.job_queue(None)  # type: ignore[arg-type]  # None disables, as documented
    application = builder.build()
    if not isinstance(application, B40Application):  # the builder was given the class above
        raise TypeError(f"expected a B40Application, got {type(application).__name__}")

    application.outbox = OutboxWorker(
        application.bot, db, default_language=settings.default_language
    )
    application.tallies = polls.TallyDrawer(
        application.bot, db, default_language=settings.default_language
    )
    application.progress = Progress()
    application.broadcasts = broadcast.BroadcastProgress(
        application.bot,
        db,
        default_language=settings.default_language,
        wake_outbox=application.outbox.kick,
    )
    application.outbox.on_progress = application.broadcasts.touch
    application.deps = Deps(
        db=db,
        bootstrap_secretariat=settings.secretariat,
        default_language=settings.default_language,
        reference_zone=settings.timezone,
        meeting_url=settings.meeting_url,
        calendar_key=settings.calendar_key(token),
        base_url=settings.base_url,
        clock=clock or utcnow,
        outbox_written=application.outbox.kick,
        tally_changed=application.tallies.request,
        broadcast_stopped=application.stopped,
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
        # The jobs keep no state of their own: each reads what the database says is due. So
        # they are rebuilt the same at every start (stable ids, replacing any of the same
        # id); runs missed while the loop was busy are coalesced into one, and a run late by
        # up to a minute still runs. What the bot owed while it was down is found by the
        # first run after the start, which comes within seconds.
        for job, name, interval, first in (
            (_deliver_outbox, "outbox", OUTBOX_INTERVAL_SECONDS, 1),
            (_sweep_sessions, "sessions", SESSIONS_INTERVAL_SECONDS, 2),
            (_sweep_polls, "polls", POLLS_INTERVAL_SECONDS, 3),
            (_forget_updates, "forget-updates", 3600, 60),
        ):
            application.job_queue.run_repeating(
                job,
                interval=interval,
                first=first,
                name=name,
                job_kwargs={
                    "id": name,
                    "replace_existing": True,
                    "misfire_grace_time": 60,
                    "coalesce": True,
                    "max_instances": 1,
                },
            )
    return application


async def _deliver_outbox(context: BotContext) -> None:
    application = context.application
    if isinstance(application, B40Application):
        # In the background: a broadcast takes longer than the job's interval, and the
        # next run must not find this one still going (it only asks for another round).
        application.outbox.kick()
        # A broadcast whose last recipient was dealt with before a restart is closed here.
        await application.broadcasts.sweep()


async def _sweep_sessions(context: BotContext) -> None:
    application = context.application
    if isinstance(application, B40Application):
        await sweep_sessions(application)


async def sweep_sessions(application: B40Application) -> int:
    """Do what the sessions owe now, from the database alone: decide the planning polls
    whose deadline has passed, open the quarterly planning that is due, then write the
    reminders that are due; returns how many reminders were new. Safe to run any number
    of times: each poll is decided or opened once, each reminder has its dedupe key."""
    deps = application.deps
    now = deps.clock()
    async with deps.db.transaction() as session:
        decided = await plans_store.close_due(
            session, now=now, meeting_url_template=deps.meeting_url
        )
    async with deps.db.transaction() as session:
        opened = await plans_store.open_due_quarters(
            session, now=now, today=deps.today(), reference_zone=deps.reference_zone
        )
    async with deps.db.transaction() as session:
        written = await sessions_store.enqueue_due_reminders(session, now=now)
    if written or decided or opened:
        deps.outbox_written()
    return written


async def _sweep_polls(context: BotContext) -> None:
    application = context.application
    if isinstance(application, B40Application):
        await sweep_polls(application)


async def sweep_polls(application: B40Application) -> int:
    """Close the choice polls whose deadline has passed (each posts its result once) and
    redraw every tally message that shows less than the database holds; returns how
    many polls were closed. Safe to run any number of times, in any process."""
    deps = application.deps
    now = deps.clock()
    closed = 0
    async with deps.db.transaction() as session:
        due = [
            poll.id or 0
            for poll in await polls_store.due(session, now=now, kind=PollKind.CHOICE.value)
        ]
    for poll_id in due:
        try:
            async with deps.db.transaction() as session:
                await polls_store.close_choice(session, actor=None, poll_id=poll_id, now=now)
            closed += 1
        except DomainError as exc:  # closed meanwhile by someone else
            log.info("poll %s was not closed by the sweep: %r", poll_id, exc)
    async with deps.db.transaction() as session:
        stale = await polls_store.stale_tallies(session, now=now)
    for poll_id in stale:
        application.tallies.request(poll_id)
    if closed:
        deps.outbox_written()
    return closed


async def _forget_updates(context: BotContext) -> None:
    application = context.application
    if isinstance(application, B40Application):
        async with application.deps.db.transaction() as session:
            await updates.forget_old(session)


HELP_COMMANDS = [name for name, _text in menu.HELP_EVERYONE]


async def publish_commands(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Telegram's command menu, in every language Telegram can tell apart."""
    descriptions = dict(menu.HELP_EVERYONE)
    try:
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
    except TelegramError as exc:
        # The menu is a convenience; a bot that cannot set it still answers commands.
        log.warning("could not publish the command menu: %s", exc)
