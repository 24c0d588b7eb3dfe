"""The HTTP server: the health check, the webhook and the calendar feeds."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot import feeds

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
# An update in the works longer than this, or waiting while nothing finishes, means stuck.
STALLED_AFTER = 120.0
DATABASE_TIMEOUT = 3.0


def webhook_secret(token: str) -> str:
    """A secret Telegram echoes back on every webhook call; stable across restarts and processes."""
    return hashlib.sha256(f"b40-webhook:{token}".encode()).hexdigest()


async def health_problems(application: Application[Any, Any, Any, Any, Any, Any]) -> list[str]:
    """What keeps the bot from serving people right now; empty when all is well."""
    problems = []
    deps = getattr(application, "deps", None)
    if deps is not None:
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT):
                async with deps.db.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception as exc:
            problems.append(f"database does not answer: {type(exc).__name__}")
    if not application.running:
        problems.append("update processing is not running")
    progress = getattr(application, "progress", None)
    if progress is not None:
        now = time.monotonic()
        if progress.started is not None and now - progress.started > STALLED_AFTER:
            problems.append(f"an update has been in processing for {now - progress.started:.0f} s")
        elif application.update_queue.qsize() and now - progress.last_done > STALLED_AFTER:
            problems.append("updates are waiting but none has been processed for a while")
    return problems


def create_http_app(
    application: Application[Any, Any, Any, Any, Any, Any], *, webhook_token: str | None
) -> Starlette:
    # Updates are processed one at a time, as in polling: Telegram may call the webhook
    # concurrently, and one chat's updates must not overtake each other.
    processing = asyncio.Lock()

    async def health(_request: Request) -> Response:
        problems = await health_problems(application)
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def webhook(request: Request) -> Response:
        if webhook_token is None:
            return Response(status_code=404)
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given, webhook_secret(webhook_token)):
            return Response(status_code=403)
        try:
            payload = json.loads(await request.body())
            update = Update.de_json(payload, application.bot)
        except (ValueError, TypeError, KeyError):
            return Response(status_code=400)
        # Answered only once the update is processed and committed: if the process dies
        # before, Telegram gets no 200 and delivers the update again.
        async with processing:
            await application.process_update(update)
        return Response(status_code=200)

    routes = [Route("/healthz", health)]
    deps = getattr(application, "deps", None)
    if deps is not None:
        routes.append(Route(feeds.PATH, feeds.FeedServer(deps).serve, methods=["GET", "HEAD"]))
    if webhook_token is not None:
        routes.append(Route(WEBHOOK_PATH, webhook, methods=["POST"]))
    return Starlette(routes=routes)
