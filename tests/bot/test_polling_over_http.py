"""End to end over real HTTP: ``b40-bot run`` in a subprocess, polling a Bot API emulator.

The fake Bot API listens on loopback (uvicorn); the bot is started exactly as in
production, configured only through its environment, and must answer updates,
serve its health check and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from playground.emulator import BOT_TOKEN, Call, TelegramEmulator, http_app
from playground.updates import User, command

PROJECT = Path(__file__).resolve().parents[2]
CITIES_CSV = PROJECT / "playground" / "data" / "b40-cities.csv"
SECRETARY_ID = 11_000_001
ALICE = User(id=24_000_001, first_name="Elif", last_name="Kaya", username="elif_k")
BOB = User(id=24_000_002, first_name="Dimitar", last_name="Ivanov", language_code="bg")

# Generous bounds: the machine may be slow and shared; a healthy run takes a few seconds.
STARTUP_SECONDS = 20.0
REPLY_SECONDS = 20.0
STOP_SECONDS = 15.0


def free_port() -> int:
    """A port nobody listens on now (bound to 0 and released; a tiny race is accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def fake_bot_api(telegram: TelegramEmulator) -> AsyncIterator[int]:
    """The fake as a real HTTP server on an ephemeral port; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(http_app(telegram), log_level="warning", lifespan="off", access_log=False)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped the server
                raise AssertionError("the fake Bot API stopped before it started")
            assert time.monotonic() < deadline, "the fake Bot API did not start"
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(serving, 10)
        sock.close()


def bot_env(api_port: int, http_port: int, tmp_path: Path) -> dict[str, str]:
    """The environment of a production start, and nothing of the developer's B40_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("B40_")}
    env.update(
        B40_BOT_TOKEN=BOT_TOKEN,
        B40_TELEGRAM_API_URL=f"http://127.0.0.1:{api_port}/bot",
        B40_DATABASE_URL=f"sqlite:///{tmp_path / 'b40.db'}",
        B40_HTTP_PORT=str(http_port),
        B40_SECRETARIAT=str(SECRETARY_ID),
        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


async def wait_until(
    what: str,
    condition: Callable[[], Any],
    process: asyncio.subprocess.Process,
    log: Path,
    within: float = REPLY_SECONDS,
) -> Any:
    """Poll ``condition`` until it is truthy; fail early, with the bot's log, if the bot died."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        if process.returncode is not None:
            pytest.fail(
                f"the bot exited ({process.returncode}) while waiting for {what}\n{tail(log)}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f} s waiting for {what}\n{tail(log)}")
        await asyncio.sleep(0.05)


def tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "--- bot log ---\n" + "\n".join(text.splitlines()[-lines:])


def replies_to(telegram: TelegramEmulator, chat_id: int) -> list[Call]:
    return [c for c in telegram.calls if c.method == "sendMessage" and c.chat_id == chat_id]


async def healthz(port: int) -> dict[str, Any] | None:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(f"http://127.0.0.1:{port}/healthz")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


async def import_cities(env: dict[str, str], cwd: Path) -> None:
    log = cwd / "import.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "import-cities", str(CITIES_CSV),
            cwd=cwd, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            code = await asyncio.wait_for(process.wait(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert code == 0, log.read_text(encoding="utf-8", errors="replace")


@pytest.mark.timeout(90)
async def test_bot_polls_a_bot_api_emulator_over_http(tmp_path: Path) -> None:
    telegram = TelegramEmulator()
    async with fake_bot_api(telegram) as api_port:
        http_port = free_port()
        env = bot_env(api_port, http_port, tmp_path)
        await import_cities(env, tmp_path)

        log = tmp_path / "bot.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run",
                cwd=tmp_path, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            try:
                # The bot introduces itself and starts long polling.
                await wait_until(
                    "getUpdates",
                    lambda: any(c.method == "getUpdates" for c in telegram.calls),
                    process,
                    log,
                    within=STARTUP_SECONDS,
                )
                assert any(c.method == "getMe" for c in telegram.calls)

                telegram.push_update(command("/start", ALICE))
                telegram.push_update(command("/cities", BOB))
                start = await wait_until(
                    "the reply to /start", lambda: replies_to(telegram, ALICE.id), process, log
                )
                cities = await wait_until(
                    "the reply to /cities", lambda: replies_to(telegram, BOB.id), process, log
                )
                assert len(start) == 1 and len(cities) == 1
                assert start[0].buttons(), "/start should offer the language menu"
                assert "Thessaloniki" in cities[0].text and "İstanbul" in cities[0].text

                deadline = time.monotonic() + STARTUP_SECONDS
                health = await healthz(http_port)
                while health is None and time.monotonic() < deadline and process.returncode is None:
                    await asyncio.sleep(0.1)
                    health = await healthz(http_port)
                assert health == {"status": "ok"}, tail(log)

                assert telegram.refused == []
                process.send_signal(signal.SIGTERM)
                try:
                    code = await asyncio.wait_for(process.wait(), STOP_SECONDS)
                except TimeoutError:
                    pytest.fail(
                        f"the bot did not stop within {STOP_SECONDS:.0f} s of SIGTERM\n{tail(log)}"
                    )
                assert code == 0, tail(log)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
