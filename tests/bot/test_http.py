"""The HTTP server: health check, and the webhook guarded by Telegram's secret token."""

from __future__ import annotations

import httpx

from bot.http import SECRET_HEADER, WEBHOOK_PATH, create_http_app, webhook_secret
from tests.conftest import BotHarness
from tests.fakes.telegram import BOT_TOKEN
from tests.fakes.updates import User, command


def client_for(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://b40.test")


async def test_health_and_webhook(harness: BotHarness) -> None:
    app = create_http_app(harness.app, webhook_token=BOT_TOKEN)
    update = command("/cities", User(id=66_000_001, first_name="Vesna"))
    async with client_for(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.post(WEBHOOK_PATH, json=update)).status_code == 403
        wrong = {SECRET_HEADER: "0" * 64}
        assert (await client.post(WEBHOOK_PATH, json=update, headers=wrong)).status_code == 403
        right = {SECRET_HEADER: webhook_secret(BOT_TOKEN)}
        bad = await client.post(WEBHOOK_PATH, content=b"{not json", headers=right)
        assert bad.status_code == 400
        assert (await client.post(WEBHOOK_PATH, json=update, headers=right)).status_code == 200
    queued = harness.app.update_queue.get_nowait()
    assert queued.update_id == update["update_id"]
    assert queued.message.text == "/cities"


async def test_no_webhook_route_in_polling_mode(harness: BotHarness) -> None:
    app = create_http_app(harness.app, webhook_token=None)
    async with client_for(app) as client:
        assert (await client.post(WEBHOOK_PATH, json={})).status_code == 404


def test_the_webhook_secret_is_long_and_tied_to_the_token() -> None:
    secret = webhook_secret(BOT_TOKEN)
    assert len(secret) == 64 and secret.isalnum()
    assert secret != webhook_secret(BOT_TOKEN + "x")
    assert BOT_TOKEN not in secret
