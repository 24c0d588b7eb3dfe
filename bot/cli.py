"""``b40-bot``: run the bot, migrate the database, import member cities."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from pydantic import ValidationError
from telegram import Update

from bot.application import build_application
from bot.http import WEBHOOK_PATH, create_http_app, webhook_secret
from bot.settings import MissingTokenError, Settings
from storage import errors, roster
from storage.db import Database
from storage.types import utcnow

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="b40-bot", description="The B40 working-group bot.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot (polling, or webhook with B40_WEBHOOK=true)")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply all migrations")
    load = commands.add_parser("import-cities", help="load member cities from a CSV file")
    load.add_argument("file", type=Path, help="CSV with name,country,timezone[,founding]")
    return parser


async def _upgrade(settings: Settings) -> Database:
    db = Database(settings.database_url)
    await db.upgrade()
    return db


async def db_upgrade(settings: Settings) -> int:
    db = await _upgrade(settings)
    await db.dispose()
    print(f"database is up to date: {settings.database_url}")
    return 0


async def import_cities(settings: Settings, path: Path) -> int:
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
    db = await _upgrade(settings)
    try:
        async with db.transaction() as session:
            result = await roster.import_cities(session, rows, today=utcnow().date())
    finally:
        await db.dispose()
    print(f"{path}: {result.added} added, {result.updated} updated, {result.unchanged} unchanged")
    return 0


class PortInUse(RuntimeError):
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


async def run(settings: Settings) -> int:
    token = settings.require_token()
    listening = _bind(settings.http_host, settings.http_port)
    db = await _upgrade(settings)
    application = build_application(settings, db, token=token)
    http = create_http_app(application, webhook_token=token if settings.webhook else None)
    server = uvicorn.Server(
        uvicorn.Config(http, host=settings.http_host, port=settings.http_port, log_level="warning")
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with application:
        await application.start()
        if settings.webhook:
            await application.bot.set_webhook(
                url=settings.base_url + WEBHOOK_PATH,
                secret_token=webhook_secret(token),
                allowed_updates=Update.ALL_TYPES,
            )
        elif application.updater is not None:
            await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
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
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        await application.stop()
        await serving
    await db.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = Settings()
    except ValidationError as exc:
        for problem in exc.errors():
            field = "B40_" + str(problem["loc"][0]).upper() if problem["loc"] else "configuration"
            print(f"{field}: {problem['msg']}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            return asyncio.run(run(settings))
        if args.command == "db":
            return asyncio.run(db_upgrade(settings))
        return asyncio.run(import_cities(settings, args.file))
    except (MissingTokenError, PortInUse) as exc:
        print(exc, file=sys.stderr)
        return 2
