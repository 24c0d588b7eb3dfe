"""Calendar feeds over real HTTP: a working group's feed of 40 sessions, its 304 path, and
the same bytes as a static file, served by the same server in the same run.

Run from the project root::

    .venv/bin/python -m benchmarks.bench_calendar [--seconds 5] [--rounds 2] [--connections 8]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]

The bot's HTTP server (``bot.http.create_http_app``, under uvicorn, one worker) runs in a
process of its own, with a Starlette ``StaticFiles`` mount beside the feeds that serves
the feed's bytes as a file. The load comes from ``wrk`` (Debian's package) when it is
installed, else from a Python client with keep-alive connections (slower: then the client
may be the limit, and the ratios understate the differences). The three paths are measured
in turn, ``--rounds`` times each, interleaved, so that the machine's noise falls on all
three alike. Reported: requests per second of each path (median over the rounds) and each
feed path as a share of the static file. Aims: the 304 path within 80% of the static file,
the full feed within 50%. Also the latency of an unknown token beside a valid one's 304.

Exit status 1 if a path answers anything but what it should (200, 304, 404).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from benchmarks.bench_updates import BenchmarkFailure, scratch_database

SESSIONS = 40
CITIES = Path(__file__).parent.parent / "playground" / "data" / "b40-cities.csv"
TOKEN_PLACEHOLDER = "A" * 43


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the server process ------------------------------------------------------------------------


async def _prepare(database_url: str) -> str:
    """A group with 40 sessions (with agendas) and its feed; returns the feed's path."""
    from sqlmodel import select

    from bot.settings import Settings
    from storage import agenda, calendars, roster, sessions
    from storage.db import Database
    from storage.models import City, Delegate, FeedKind, GroupMembership, WorkingGroup
    from storage.roles import Actor

    db = Database(database_url)
    await db.upgrade()
    settings = Settings(_env_file=None, bot_token="123456:" + "b" * 35, database_url=database_url)  # type: ignore[call-arg]
    now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    cities_csv = CITIES.read_text(encoding="utf-8")
    async with db.transaction() as session:
        rows = roster.parse_cities_csv(cities_csv)
        await roster.import_cities(session, rows, today=now.date())
        group = (
            await session.exec(select(WorkingGroup).where(WorkingGroup.slug == "climate"))
        ).one()
        cities = (await session.exec(select(City).limit(20))).all()
        for city in cities:
            session.add(GroupMembership(group_id=group.id or 0, city_id=city.id or 0))
        await session.flush()
        staff = Actor(user_id=1, is_secretariat=True)
        for n in range(SESSIONS):
            meeting = await sessions.schedule(
                session,
                actor=staff,
                group=group,
                starts_at=now + timedelta(days=7 * (n + 1), hours=n % 5),
                length=timedelta(minutes=90),
                title=f"Session {n + 1}: heat, floods and green roofs",
                meeting_url_template=settings.meeting_url,
                now=now,
            )
            for k in range(3):  # three accepted agenda items each
                delegate = Actor(
                    user_id=1000 + k,
                    delegate=Delegate(
                        user_id=1000 + k, city_id=cities[k].id or 0, status="approved"
                    ),
                    city=cities[k],
                )
                item, _target = await agenda.propose(
                    session,
                    actor=delegate,
                    group=group,
                    title=f"Item {k + 1} of session {n + 1}",
                    now=now - timedelta(days=400),
                )
                item.session_id = meeting.id
                item.status = "accepted"
                item.position = k + 1
                session.add(item)
        _feed, token = await calendars.address(
            session, settings.calendar_key(), FeedKind.GROUP, group_id=group.id, now=now
        )
    await db.dispose()
    return f"/calendar/{token}.ics"


def serve(database_url: str, static_dir: Path, port: int) -> None:
    """The server process: prepares the data, writes the feed as a file, serves both."""
    import uvicorn
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from bot.application import build_application
    from bot.http import create_http_app
    from bot.settings import Settings
    from playground.emulator import EmulatorRequest, TelegramEmulator
    from storage.db import Database

    path = asyncio.run(_prepare(database_url))
    settings = Settings(_env_file=None, bot_token="123456:" + "b" * 35, database_url=database_url)  # type: ignore[call-arg]
    db = Database(database_url)
    application = build_application(
        settings,
        db,
        request=EmulatorRequest(TelegramEmulator()),
        clock=lambda: datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
        rate_limiter=False,
        jobs=False,
    )
    app = create_http_app(application, webhook_token=None)
    app.routes.append(Mount("/static", StaticFiles(directory=static_dir)))
    (static_dir / "path").write_text(path)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the driver --------------------------------------------------------------------------------


@contextlib.contextmanager
def _server(database_url: str) -> Iterator[tuple[str, str]]:
    static_dir = Path(tempfile.mkdtemp(prefix="b40-bench-static-"))
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 (this very script)
        [
            sys.executable,
            "-m",
            "benchmarks.bench_calendar",
            "--serve",
            database_url,
            str(static_dir),
            str(port),
        ],
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not (static_dir / "path").exists() or not _up(base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkFailure("the server did not start")
            time.sleep(0.2)
        path = (static_dir / "path").read_text()
        body = httpx.get(base + path).content
        (static_dir / "feed.ics").write_bytes(body)
        yield base, path
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(static_dir, ignore_errors=True)


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _wrk(url: str, headers: dict[str, str], seconds: float, connections: int) -> float:
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:.0f}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(  # noqa: S603 (wrk, our own server)
        [*command, url], capture_output=True, text=True, check=True
    )
    if "Non-2xx or 3xx responses" in done.stdout:
        raise BenchmarkFailure(f"{url}: error answers\n{done.stdout}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if found is None:
        raise BenchmarkFailure(done.stdout)
    return float(found.group(1))


async def _python_load(
    url: str, headers: dict[str, str], seconds: float, connections: int
) -> float:
    done = 0
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(headers=headers) as client:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop:
                answer = await client.get(url)
                if answer.status_code not in (200, 304):
                    raise BenchmarkFailure(f"{url}: {answer.status_code}")
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
    return done / (time.monotonic() - started)


def _rate(url: str, headers: dict[str, str], seconds: float, connections: int) -> float:
    if shutil.which("wrk"):
        return _wrk(url, headers, seconds, connections)
    return asyncio.run(_python_load(url, headers, seconds, connections))


def _latency(url: str, headers: dict[str, str], times: int = 300) -> float:
    with httpx.Client(headers=headers) as client:
        client.get(url)
        started = time.perf_counter()
        for _ in range(times):
            client.get(url)
        return (time.perf_counter() - started) / times * 1000


async def run(database_url: str | None, seconds: float, rounds: int, connections: int) -> int:
    async with scratch_database(database_url) as url:
        return await asyncio.to_thread(measure, url, seconds, rounds, connections)


def measure(url: str, seconds: float, rounds: int, connections: int) -> int:
    with _server(url) as (base, path):
        feed = httpx.get(base + path)
        if feed.status_code != 200:
            raise BenchmarkFailure(f"the feed answered {feed.status_code}")
        etag = feed.headers["etag"]
        check = httpx.get(base + path, headers={"If-None-Match": etag})
        static = httpx.get(base + "/static/feed.ics")
        if check.status_code != 304 or static.content != feed.content:
            raise BenchmarkFailure("304 or the static file is not what it should be")
        unknown = base + f"/calendar/{TOKEN_PLACEHOLDER}.ics"
        if httpx.get(unknown).status_code != 404:
            raise BenchmarkFailure("an unknown token was not 404")
        paths = {
            "static file": (base + "/static/feed.ics", {}),
            "feed, 304": (base + path, {"If-None-Match": etag}),
            "feed, full": (base + path, {}),
        }
        rates: dict[str, list[float]] = {name: [] for name in paths}
        for _round in range(rounds):
            for name, (url, headers) in paths.items():
                rates[name].append(_rate(url, headers, seconds, connections))
        load = "wrk" if shutil.which("wrk") else "a Python client (install wrk for truer ratios)"
        print(
            f"calendar feed of {SESSIONS} sessions ({len(feed.content):,} bytes), load from {load},"
        )
        print(f"{connections} connections, {seconds:.0f} s x {rounds} rounds, interleaved:")
        static_rate = statistics.median(rates["static file"])
        for name, found in rates.items():
            median = statistics.median(found)
            share = median / static_rate
            spread = ", ".join(f"{r:,.0f}" for r in found)
            print(
                f"  {name:12} {median:9,.0f} req/s  ({share:5.0%} of the static file; "
                f"rounds: {spread})"
            )
        print("aims: 304 path >= 80%, full feed >= 50% of the static file")
        valid = _latency(base + path, {"If-None-Match": etag})
        missing = _latency(unknown, {})
        print(
            f"latency, one connection: unknown token {missing:.2f} ms, "
            f"valid token's 304 {valid:.2f} ms (ratio {missing / valid:.2f})"
        )
    return 0


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--database-url", default=os.environ.get("B40_BENCH_DATABASE_URL"))
    options = parser.parse_args()
    try:
        return asyncio.run(
            run(options.database_url, options.seconds, options.rounds, options.connections)
        )
    except BenchmarkFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
