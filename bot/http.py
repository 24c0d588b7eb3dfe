"""The HTTP server: health check and webhook now; calendar feeds will join them."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


def webhook_secret(token: str) -> str:
    """A secret Telegram echoes back on every webhook call; stable across restarts and processes."""
    return hashlib.sha256(f"b40-webhook:{token}".encode()).hexdigest()


def create_http_app(
    application: Application[Any, Any, Any, Any, Any, Any], *, webhook_token: str | None
) -> Starlette:
    async def health(_request: Request) -> Response:
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
        await application.update_queue.put(update)
        return Response(status_code=200)

    routes = [Route("/healthz", health)]
    if webhook_token is not None:
        routes.append(Route(WEBHOOK_PATH, webhook, methods=["POST"]))
    return Starlette(routes=routes)
