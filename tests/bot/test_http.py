"""The HTTP server: health check, and the webhook guarded by Telegram's secret token."""

from __future__ import annotations

import httpx

from bot.http import SECRET_HEADER, WEBHOOK_PATH, create_http_app, webhook_secret
from playground.emulator import BOT_TOKEN
from playground.updates import User, command
from storage.db import create_engine
from tests.conftest import BotHarness


def client_for(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://b40.test")


async def test_health_and_webhook(harness: BotHarness) -> None:
    app = create_http_app(harness.app, webhook_token=BOT_TOKEN)
    update = command("/cities", User(id=66_000_001, first_name="Vesna"))
    await harness.app.start()
    try:
        async with client_for(app) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.post(WEBHOOK_PATH, json=update)).status_code == 403
            wrong = {SECRET_HEADER: "0" * 64}
            assert (await client.post(WEBHOOK_PATH, json=update, headers=wrong)).status_code == 403
            right = {SECRET_HEADER: webhook_secret(BOT_TOKEN)}
            bad = await client.post(WEBHOOK_PATH, content=b"{not json", headers=right)
            assert bad.status_code == 400
            before = len(harness.telegram.calls)
            answer = await client.post(WEBHOOK_PATH, json=update, headers=right)
            # 200 only once the update was processed: the reply has gone out already.
            assert answer.status_code == 200
            sent = harness.telegram.calls[before:]
            assert [c.method for c in sent] == ["sendMessage"]
            assert "member cities" in sent[0].text
            # Telegram delivering it again changes nothing and is still answered 200.
            again = await client.post(WEBHOOK_PATH, json=update, headers=right)
            assert again.status_code == 200 and len(harness.telegram.calls) == before + 1
    finally:
        await harness.app.stop()


async def test_health_says_what_is_wrong(harness: BotHarness) -> None:
    app = create_http_app(harness.app, webhook_token=None)
    async with client_for(app) as client:
        stopped = await client.get("/healthz")
        assert stopped.status_code == 503
        assert stopped.json()["problems"] == ["update processing is not running"]
        await harness.app.start()
        try:
            assert (await client.get("/healthz")).status_code == 200
            # The database goes away: health says so, with the reason, within its timeout.
            await harness.db.engine.dispose()
            harness.app.deps.db.engine = create_engine(
                "postgresql://nobody@127.0.0.1:1/none", connect_args={"timeout": 1}
            )
            down = await client.get("/healthz")
            assert down.status_code == 503
            [problem] = down.json()["problems"]
            assert problem.startswith("database does not answer")
        finally:
            await harness.app.stop()


async def test_no_webhook_route_in_polling_mode(harness: BotHarness) -> None:
    app = create_http_app(harness.app, webhook_token=None)
    async with client_for(app) as client:
        assert (await client.post(WEBHOOK_PATH, json={})).status_code == 404


def test_the_webhook_secret_is_long_and_tied_to_the_token() -> None:
    secret = webhook_secret(BOT_TOKEN)
    assert len(secret) == 64 and secret.isalnum()
    assert secret != webhook_secret(BOT_TOKEN + "x")
    assert BOT_TOKEN not in secret
