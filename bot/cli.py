"""``b40-bot``: run the bot, migrate the database, import member cities.

Exit codes, the same for every command:

- 0: done.
- 1: a bad input file (``import-cities``: unreadable, not CSV, or a bad row); nothing was stored.
- 2: the bot cannot start as configured: a setting, the token, Telegram, the database or the
  HTTP port. One or two lines on stderr say what is wrong and what to do; the traceback is
  logged at DEBUG level only (``b40-bot --debug ...``), and the token is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import uvicorn
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError, TimedOut

from bot.application import B40Application, build_application
from bot.http import WEBHOOK_PATH, create_http_app, webhook_secret
from bot.settings import TELEGRAM_API_URL, MissingTokenError, Settings
from storage import errors, roster
from storage.db import Database
from storage.types import utcnow

log = logging.getLogger("bot")

# While polling fails, how often the bot checks whether Telegram is back: longer than PTB's longest
# pause between two failed polls (30 s), so a spell without a failure means polling works again.
RECOVERY_CHECK_SECONDS = 45.0


class StartupFault(Exception):
    """The bot cannot start as configured; the message, for a person, says what to do."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="b40-bot", description="The B40 working-group bot.")
    parser.add_argument(
        "--debug", action="store_true", help="log everything, tracebacks of start-up faults too"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot (polling, or webhook with B40_WEBHOOK=true)")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply all migrations")
    load = commands.add_parser("import-cities", help="load member cities from a CSV file")
    load.add_argument("file", type=Path, help="CSV with name,country,timezone[,founding]")
    annual = commands.add_parser(
        "report", help="write the annual report (HTML, CSV figures, a chart) of a year"
    )
    annual.add_argument("year", type=int, help="the year, e.g. 2027")
    annual.add_argument("--out", type=Path, default=Path(), help="folder to write it to")
    play = commands.add_parser(
        "playground",
        help="try the bot in the browser: no token, no Telegram, a sample network",
        description="Runs the real bot against a Bot API emulator in this process and serves "
        "a page where you can be the secretariat, a delegate or a newcomer.",
    )
    play.add_argument(
        "--db", type=Path, default=Path("playground.db"), help="its SQLite file, kept between runs"
    )
    play.add_argument("--fresh", action="store_true", help="start over with the sample network")
    play.add_argument("--host", default="127.0.0.1", help="address to serve the page on")
    play.add_argument("--port", type=int, default=8080, help="port to serve the page on")
    play.add_argument("--open", action="store_true", help="open the page in a web browser")
    return parser


def shown_url(url: str) -> str:
    """The database URL as it may be printed: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


# What opening and migrating a database raises: SQLAlchemy wraps the drivers' errors, except
# asyncpg's failures to connect (OSError, TimeoutError among them).
_DATABASE_ERRORS = (SQLAlchemyError, OSError, sqlite3.Error)


def database_fault(url: str, exc: BaseException) -> StartupFault:
    """Why the database at ``url`` cannot be used, and what to do about it."""
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_fault(url, reason) or StartupFault(
            f"cannot open the database {shown}: {reason}\n"
            "  check that the file is a writable SQLite database, or set B40_DATABASE_URL"
        )
    if isinstance(exc, OSError):
        why = "connection refused" if isinstance(exc, ConnectionRefusedError) else reason
        return StartupFault(
            f"cannot connect to PostgreSQL at {shown}: {why}\n"
            "  start the server, or correct the host and port in B40_DATABASE_URL"
        )
    return StartupFault(
        f"PostgreSQL at {shown} refused: {reason}\n"
        "  check the user, password and database name in B40_DATABASE_URL"
    )


def _sqlite_fault(url: str, reason: str | None) -> StartupFault | None:
    """What is wrong with an SQLite file, seen from the file system and SQLite's ``reason``."""
    parsed = make_url(url)
    if not parsed.database:
        return None  # in memory
    shown = parsed.render_as_string(hide_password=True)
    database = parsed.database
    if parsed.query.get("uri") == "true":
        database = database.removeprefix("file:")
    path = Path(database).absolute()
    folder = path.parent
    if reason is not None and "file is not a database" in reason:
        return StartupFault(
            f"{path} is not an SQLite database (B40_DATABASE_URL={shown})\n"
            "  restore it from a backup, or set B40_DATABASE_URL to another file"
        )
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        return StartupFault(
            f"cannot open the database {shown}: the folder {folder} {what}\n"
            "  create the folder, or set B40_DATABASE_URL to a file in an existing one"
        )
    if path.is_dir():
        return StartupFault(
            f"cannot open the database {shown}: {path} is a folder, not a file\n"
            f"  set B40_DATABASE_URL to a file, e.g. sqlite:///{path / 'b40.db'}"
        )
    if not os.access(folder, os.W_OK):
        return StartupFault(
            f"cannot write the database {shown}: the folder {folder} is read-only "
            "(SQLite writes its journal next to the file)\n"
            "  make the folder writable for this user, or set B40_DATABASE_URL to another folder"
        )
    if (path.exists() and not os.access(path, os.W_OK)) or (reason and "readonly" in reason):
        return StartupFault(
            f"cannot write the database {shown}: the file is read-only\n"
            "  make it writable for this user, or set B40_DATABASE_URL to another file"
        )
    return None


async def _open_database(settings: Settings) -> Database:
    """The database, migrated; any reason it cannot be is a StartupFault."""
    url = settings.database_url
    # What the file system already tells is said before SQLite tries (and fails) to connect.
    if make_url(url).get_backend_name() == "sqlite" and (fault := _sqlite_fault(url, None)):
        raise fault
    try:
        db = Database(url)
    except ValueError as exc:  # the URL parses, but the driver refuses one of its options
        raise StartupFault(f"B40_DATABASE_URL ({shown_url(url)}) cannot be used: {exc}") from exc
    try:
        await db.upgrade()
    except _DATABASE_ERRORS as exc:
        await db.dispose()
        await _let_sqlite_threads_finish()
        raise database_fault(url, exc) from exc
    return db


async def _let_sqlite_threads_finish() -> None:
    # After a failed connect aiosqlite stops its worker thread without waiting for it; if the
    # event loop closes first, that thread prints a traceback of its own ("Event loop is closed").
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            await asyncio.to_thread(thread.join, 2.0)


async def db_upgrade(settings: Settings) -> int:
    db = await _open_database(settings)
    await db.dispose()
    print(f"database is up to date: {shown_url(settings.database_url)}")
    return 0


async def import_cities(
    settings: Settings, path: Path, *, now: Callable[[], datetime] = utcnow
) -> int:
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return 1
    try:
        rows = roster.parse_cities_csv(text)
    except errors.InvalidImport as exc:
        print(
            f"{path}: line {exc.params['line']}: {exc.params['reason']}; nothing was imported",
            file=sys.stderr,
        )
        return 1
    # A city joins on the network's date, which is not UTC's for hours of every day.
    today = now().astimezone(ZoneInfo(settings.timezone)).date()
    db = await _open_database(settings)
    try:
        async with db.transaction() as session:
            result = await roster.import_cities(session, rows, today=today)
    finally:
        await db.dispose()
    print(f"{path}: {result.added} added, {result.updated} updated, {result.unchanged} unchanged")
    return 0


async def write_report(
    settings: Settings, year: int, out: Path, *, now: Callable[[], datetime] = utcnow
) -> int:
    """The files /report sends, in the default language, written to ``out``."""
    from handlers import report as annual
    from locales import use_language
    from storage import report as figures

    if not annual.FIRST_YEAR <= year <= annual.LAST_YEAR:
        print(f"{year} is not a year the network could report on", file=sys.stderr)
        return 2
    db = await _open_database(settings)
    try:
        async with db.transaction() as session:
            found = await figures.build(session, year=year, zone=settings.timezone, now=now())
    finally:
        await db.dispose()
    if found.empty:
        print(f"nothing to report for {year}: no session, poll, new member or term recorded")
        return 1
    with use_language(settings.default_language):
        files = annual.render(found, settings.default_language)
    written = {
        out / f"b40-report-{year}.html": files.html,
        out / f"b40-figures-{year}.csv": files.csv,
        out / f"b40-attendance-{year}.png": files.png,
    }
    try:
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        for path, data in written.items():
            await asyncio.to_thread(path.write_bytes, data)
    except OSError as exc:
        print(f"cannot write to {out}: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


class PortInUse(StartupFault):
    pass


def _bind(host: str, port: int) -> socket.socket:
    """Bind the HTTP port before anything starts, so a taken port is a clear error."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as exc:
        raise PortInUse(
            f"cannot listen on {host}:{port} ({exc.strerror}); "
            "set B40_HTTP_HOST / B40_HTTP_PORT to a free address"
        ) from exc
    return sock


def telegram_fault(settings: Settings, exc: TelegramError) -> StartupFault:
    """Why Telegram would not let the bot start, and what to do about it."""
    custom_api = settings.telegram_api_url != TELEGRAM_API_URL
    where = f"the Bot API at {settings.telegram_api_url}" if custom_api else "Telegram"
    if isinstance(exc, InvalidToken):
        hint = (
            f" (or B40_TELEGRAM_API_URL is not a Bot API: {settings.telegram_api_url})"
            if custom_api
            else ""
        )
        return StartupFault(
            f"Telegram rejected B40_BOT_TOKEN: it is wrong or was revoked{hint}\n"
            "  ask @BotFather on Telegram for the current token (/mybots → API Token)"
        )
    # PTB counts Telegram's "400 Bad Request" as a NetworkError: it is an answer, though.
    if isinstance(exc, NetworkError) and not isinstance(exc, BadRequest):
        reason = "timed out" if isinstance(exc, TimedOut) else exc.message.removeprefix("httpx.")
        if custom_api:
            return StartupFault(
                f"cannot reach the Bot API at {settings.telegram_api_url}: {reason}\n"
                "  start that server, or correct B40_TELEGRAM_API_URL (unset, it means Telegram)"
            )
        return StartupFault(
            f"cannot reach Telegram: {reason}\n"
            "  check this machine's internet connection (and proxy), then start the bot again"
        )
    return StartupFault(
        f"{where} refused to start the bot: {exc.message}\n"
        "  correct what it names (`b40-bot --debug run` logs every request and answer)"
    )


class PollingHealth:
    """Polling's error callback: an outage is logged once when it starts and once when it ends.

    PTB retries a failed getUpdates forever and by default logs every failure with a traceback.
    Here the first failure of an outage is a WARNING (a network error) or an ERROR (anything
    else Telegram says, e.g. another instance polling); ``watch`` logs the recovery at INFO
    once a whole ``interval`` passed without a failure and ``probe`` (getMe) succeeds.
    """

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        interval: float = RECOVERY_CHECK_SECONDS,
        secrets: Iterable[str] = (),
    ) -> None:
        self.probe = probe
        self.interval = interval
        self.secrets = tuple(secrets)
        self.failures = 0
        self.lost = asyncio.Event()

    def failed(self, error: TelegramError) -> None:
        self.failures += 1
        message = redact(error.message, self.secrets)
        if self.lost.is_set():
            log.debug("polling failed again: %s", message)
            return
        self.lost.set()
        if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
            log.warning("lost Telegram (%s); retrying quietly until it is back", message)
        else:
            log.error("Telegram refused getUpdates (%s); retrying quietly", message)

    async def watch(self) -> None:
        while True:
            await self.lost.wait()
            failures = self.failures
            await asyncio.sleep(self.interval)
            await self.check(failures)

    async def check(self, failures_before: int) -> None:
        """The outage is over if polling did not fail since ``failures_before`` and getMe works."""
        if not self.lost.is_set() or self.failures != failures_before:
            return
        try:
            await self.probe()
        except TelegramError:
            return
        self.lost.clear()
        log.info("Telegram is reachable again; polling works")


async def run(settings: Settings) -> int:
    token = settings.require_token()
    listening = _bind(settings.http_host, settings.http_port)
    try:
        db = await _open_database(settings)
        try:
            await _serve(settings, db, token, listening)
        finally:
            await db.dispose()
    finally:
        listening.close()
    return 0


async def _serve(settings: Settings, db: Database, token: str, listening: socket.socket) -> None:
    application = build_application(settings, db, token=token)
    health = PollingHealth(application.bot.get_me, secrets=[token])
    try:
        await application.initialize()
        await application.start()
        if settings.webhook:
            await application.bot.set_webhook(
                url=settings.base_url + WEBHOOK_PATH,
                secret_token=webhook_secret(token),
                allowed_updates=Update.ALL_TYPES,
            )
        elif application.updater is not None:
            await application.updater.start_polling(
                allowed_updates=Update.ALL_TYPES, error_callback=health.failed
            )
    except TelegramError as exc:
        await _stop(application)
        raise telegram_fault(settings, exc) from exc

    http = create_http_app(application, webhook_token=token if settings.webhook else None)
    server = uvicorn.Server(
        uvicorn.Config(http, host=settings.http_host, port=settings.http_port, log_level="warning")
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    watching = asyncio.create_task(health.watch())
    try:
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        log.info(
            "bot @%s is running (%s); HTTP on %s",
            application.bot.username,
            "webhook" if settings.webhook else "polling",
            settings.base_url,
        )
        await asyncio.wait(
            [asyncio.ensure_future(stop.wait()), serving], return_when=asyncio.FIRST_COMPLETED
        )
        server.should_exit = True
        await serving
    finally:
        watching.cancel()
        await _stop(application)


async def playground(
    settings: Settings, database: Path, *, fresh: bool, host: str, port: int, open_page: bool
) -> int:
    from playground.web import PREFIX, create_app
    from playground.world import Playground, playground_settings

    if not log.isEnabledFor(logging.DEBUG):
        # The page is the playground's output; the jobs' and migrations' chatter is noise.
        for chatty in ("apscheduler", "alembic", "telegram.ext"):
            logging.getLogger(chatty).setLevel(logging.WARNING)

    try:
        listening = _bind(host, port)
    except PortInUse as exc:
        reason = exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else exc
        raise StartupFault(
            f"cannot listen on {host}:{port} ({reason}); choose another with --port"
        ) from exc
    try:
        state = _playground_files(database, fresh=fresh)
    except StartupFault:
        listening.close()
        raise
    own = playground_settings(database, like=settings)
    # Calendar links point at this server, wherever it listens.
    link_host = f"[{host}]" if ":" in host else host
    own = own.model_copy(update={"public_url": f"http://{link_host}:{listening.getsockname()[1]}"})
    try:
        db = await _open_database(own)
        try:
            world = Playground(own, db, state)
            async with world.running():
                http = create_app(
                    world, health=create_http_app(world.application, webhook_token=None)
                )
                server = uvicorn.Server(
                    uvicorn.Config(
                        http, log_level="warning", timeout_graceful_shutdown=2, lifespan="off"
                    )
                )
                shown_host = f"[{host}]" if ":" in host else host
                url = f"http://{shown_host}:{listening.getsockname()[1]}{PREFIX}"
                print(f"The playground is at {url} (Ctrl+C stops it; {database} keeps its state)")
                if open_page:
                    import webbrowser

                    webbrowser.open(url)
                # uvicorn stops on SIGINT/SIGTERM, then raises the signal again for whoever
                # handled it before: here, this loop, so that the process exits cleanly (0).
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError):
                        loop.add_signal_handler(
                            signum, lambda: setattr(server, "should_exit", True)
                        )
                await server.serve(sockets=[listening])
        finally:
            await db.dispose()
    finally:
        listening.close()
    return 0


def _playground_files(database: Path, *, fresh: bool) -> Path:
    """The playground's state file beside its database; ``fresh`` deletes both. A database
    the playground did not make is never seeded nor deleted: a disaster if it were the bot's."""
    from playground.world import STATE_SUFFIX

    state = database.with_name(database.name + STATE_SUFFIX)
    if database.exists() and not state.exists():
        raise StartupFault(
            f"{database} was not made by the playground (no {state.name} beside it); "
            "give --db a new file, the playground never touches the bot's own database"
        )
    unfinished = False
    if state.exists() and not fresh:
        try:
            unfinished = not json.loads(state.read_text(encoding="utf-8")).get("seeded")
        except (ValueError, AttributeError, OSError) as exc:
            raise StartupFault(f"{state} cannot be read ({exc}); start over with --fresh") from exc
    if fresh or unfinished:  # a start cut short while seeding is started over, too
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), state):
            path.unlink(missing_ok=True)
    if not state.exists():
        # Written before the database, so that the database is always known as ours.
        state.write_text(json.dumps({"seeded": False}), encoding="utf-8")
    return state


async def _stop(application: B40Application) -> None:
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await application.shutdown()
    # After a failed initialize the application skips this, and the bot's HTTP client stays open.
    await application.bot.shutdown()


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<hidden>")
    return text


class _Redact(logging.Filter):
    """Hides secrets in log lines: PTB logs its URLs, token included, at DEBUG level."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(
                "".join(traceback.format_exception(*record.exc_info)), self.secrets
            ).rstrip()
        return True


def _settings_problems(exc: ValidationError) -> list[str]:
    lines = []
    for problem in exc.errors():
        error = (problem.get("ctx") or {}).get("error")
        text = str(error) if isinstance(error, ValueError) else problem["msg"]
        if problem["loc"]:
            text = f"B40_{str(problem['loc'][0]).upper()}: {text}"
        lines.append(text)
    return lines


def main(argv: Sequence[str] | None = None, *, now: Callable[[], datetime] = utcnow) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL, and the URL holds the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in _settings_problems(exc):
            print(line, file=sys.stderr)
        return 2
    secrets = [settings.bot_token.get_secret_value()] if settings.bot_token else []
    password = make_url(settings.database_url).password
    if password:
        secrets.append(str(password))
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Redact(secrets))
    try:
        if args.command == "run":
            return asyncio.run(run(settings))
        if args.command == "db":
            return asyncio.run(db_upgrade(settings))
        if args.command == "playground":
            return asyncio.run(
                playground(
                    settings,
                    args.db,
                    fresh=args.fresh,
                    host=args.host,
                    port=args.port,
                    open_page=args.open,
                )
            )
        if args.command == "report":
            return asyncio.run(write_report(settings, args.year, args.out, now=now))
        return asyncio.run(import_cities(settings, args.file, now=now))
    except (MissingTokenError, StartupFault) as exc:
        log.debug("%s", redact("".join(traceback.format_exception(exc)), secrets))
        print(redact(str(exc), secrets), file=sys.stderr)
        return 2
