"""The console script, as a newcomer would run it: `python -m bot ...` in a fresh directory."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from telegram.error import BadRequest, Conflict, NetworkError, TelegramError

from bot.cli import PollingHealth, main
from bot.settings import Settings
from playground.emulator import BOT_TOKEN
from tests.conftest import DATA, POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]


def b40(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("B40_")}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_without_a_token_says_what_to_set(tmp_path: Path) -> None:
    result = b40("run", cwd=tmp_path)
    assert result.returncode != 0
    assert "B40_BOT_TOKEN is not set" in result.stderr and "@BotFather" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = b40(
            "run", cwd=tmp_path, B40_BOT_TOKEN="123456:" + "A" * 35, B40_HTTP_PORT=str(port)
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_placeholder_token_is_refused(tmp_path: Path) -> None:
    result = b40("run", cwd=tmp_path, B40_BOT_TOKEN="changeme")
    assert result.returncode != 0 and "B40_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_order_never_matters_and_reimport_changes_nothing(tmp_path: Path) -> None:
    csv = tmp_path / "cities.csv"
    csv.write_bytes((DATA / "b40-cities.csv").read_bytes())
    first = b40("import-cities", str(csv), cwd=tmp_path)  # no `db upgrade` before: it migrates
    assert first.returncode == 0, first.stderr
    assert "34 added, 0 updated, 0 unchanged" in first.stdout
    again = b40("import-cities", str(csv), cwd=tmp_path)
    assert "0 added, 0 updated, 34 unchanged" in again.stdout
    upgrade = b40("db", "upgrade", cwd=tmp_path)
    assert upgrade.returncode == 0 and "up to date" in upgrade.stdout
    assert (tmp_path / "b40.db").exists()


def test_a_bad_row_is_reported_with_its_line_and_nothing_is_stored(tmp_path: Path) -> None:
    csv = tmp_path / "cities.csv"
    csv.write_text(
        "name,country,timezone\nOhrid,MK,Europe/Skopje\nBitola,MK,Europe/Bitola\n", encoding="utf-8"
    )
    result = b40("import-cities", str(csv), cwd=tmp_path)
    assert result.returncode == 1
    assert "line 3" in result.stderr and "Europe/Bitola" in result.stderr
    assert "nothing was imported" in result.stderr
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("name,country,timezone\nOhrid,MK,Europe/Skopje\n", encoding="utf-8")
    assert "1 added" in b40("import-cities", str(fixed), cwd=tmp_path).stdout


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = b40("import-cities", "nope.csv", cwd=tmp_path)
    assert result.returncode == 1 and "cannot read nope.csv" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("secretariat", "12,abc", "comma-separated numeric Telegram user ids"),
        ("timezone", "Europe/Atlantis", "not an IANA time zone"),
        ("default_language", "de", "not supported"),
    ],
)
def test_settings_reject_bad_values(variable: str, value: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        Settings(_env_file=None, **{variable: value})  # type: ignore[call-arg, arg-type]


def test_settings_defaults_and_parsing() -> None:
    settings = Settings(_env_file=None, secretariat="111, 222", default_language="sr_Latn")  # type: ignore[call-arg, arg-type]
    assert settings.secretariat == frozenset({111, 222})
    assert settings.default_language == "sr-Latn"
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.database_url == "sqlite:///b40.db"


# Start-up faults, in-process: `main` as the console script calls it, configured by environment.

TOKEN = BOT_TOKEN
UNREACHABLE_API = "http://127.0.0.1:1/bot"  # port 1 on loopback: nobody listens, refused at once
ASK_BOTFATHER = (
    "  ask @BotFather on Telegram for your bot's token (/mybots, or /newbot for a new bot)"
)
DATABASE_EXAMPLES = "use sqlite:///b40.db (a file) or postgresql://user:password@host:5432/b40"
COMMANDS = [["run"], ["db", "upgrade"], ["import-cities", "cities.csv"]]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A fresh directory with a valid cities file, and none of the developer's B40_* settings."""
    for key in list(os.environ):
        if key.startswith("B40_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cities.csv").write_text(
        "name,country,timezone\nOhrid,MK,Europe/Skopje\n", encoding="utf-8"
    )
    monkeypatch.setenv("B40_HTTP_PORT", "0")
    return monkeypatch


def cli(capsys: pytest.CaptureFixture[str], *args: str, **kwargs: Any) -> tuple[int, str, str]:
    code = main(list(args), **kwargs)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert TOKEN not in out + err and TOKEN.split(":")[1] not in out + err
    return code, out, err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("token", "first_line"),
    [
        ("123456789:AA...", "B40_BOT_TOKEN: this is the placeholder from an example, not a token;"),
        ("changeme", "B40_BOT_TOKEN: this is the placeholder from an example, not a token;"),
        (
            "123456789:AAE-too-short",
            "B40_BOT_TOKEN: this does not look like a token from @BotFather "
            "(digits, a colon, then 30 or more letters, digits, - or _);",
        ),
        (
            "bot" + BOT_TOKEN,
            "B40_BOT_TOKEN: this does not look like a token from @BotFather "
            "(digits, a colon, then 30 or more letters, digits, - or _);",
        ),
    ],
)
def test_a_token_of_the_wrong_shape_is_refused_before_anything_starts(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: list[str],
    token: str,
    first_line: str,
) -> None:
    env.setenv("B40_BOT_TOKEN", token)
    code, out, err = cli(capsys, *command)
    assert (code, out) == (2, "")
    assert err == f"{first_line}\n{ASK_BOTFATHER}\n"
    assert token not in err
    assert not (tmp_path / "b40.db").exists()


def test_an_empty_token_as_in_env_example_is_a_token_not_set(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    env.setenv("B40_BOT_TOKEN", "  ")
    assert cli(capsys, "db", "upgrade")[0] == 0
    code, out, err = cli(capsys, "run")
    assert (code, out) == (2, "")
    assert err.startswith("B40_BOT_TOKEN is not set. Ask @BotFather on Telegram for a token")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "B40_TELEGRAM_API_URL",
            "api.telegram.org/bot",
            "B40_TELEGRAM_API_URL: not an http:// or https:// URL; leave it unset for Telegram "
            "itself, or give a Bot API server such as http://127.0.0.1:8081/bot",
        ),
        (
            "B40_TELEGRAM_API_URL",
            "ftp://127.0.0.1/bot",
            "B40_TELEGRAM_API_URL: not an http:// or https:// URL; leave it unset for Telegram "
            "itself, or give a Bot API server such as http://127.0.0.1:8081/bot",
        ),
        (
            "B40_DATABASE_URL",
            "mysql://b40:secret@127.0.0.1/b40",
            f"B40_DATABASE_URL: mysql is not supported; {DATABASE_EXAMPLES}",
        ),
        (
            "B40_DATABASE_URL",
            "nonsense",
            f"B40_DATABASE_URL: not a database URL; {DATABASE_EXAMPLES}",
        ),
        (
            "B40_PUBLIC_URL",
            "b40.example.org",
            "B40_PUBLIC_URL: 'b40.example.org' is not an http:// or https:// URL, "
            "e.g. https://b40.example.org",
        ),
    ],
)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_malformed_url_is_refused_at_settings_time(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: list[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    env.setenv("B40_BOT_TOKEN", TOKEN)
    env.setenv(variable, value)
    code, out, err = cli(capsys, *command)
    assert (code, out, err) == (2, "", message + "\n")
    assert "secret" not in err
    assert not (tmp_path / "b40.db").exists()


@pytest.mark.parametrize("public_url", [None, "http://b40.example.org", "http://https.example.org"])
def test_a_webhook_needs_an_https_public_url(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], public_url: str | None
) -> None:
    env.setenv("B40_BOT_TOKEN", TOKEN)
    env.setenv("B40_WEBHOOK", "true")
    if public_url is not None:
        env.setenv("B40_PUBLIC_URL", public_url)
    code, out, err = cli(capsys, "run")
    assert (code, out) == (2, "")
    assert err == (
        "B40_WEBHOOK=true needs B40_PUBLIC_URL to be the bot's https:// address "
        "(Telegram only calls https webhooks);\n"
        "  set B40_PUBLIC_URL=https://your.domain, or unset B40_WEBHOOK to poll instead\n"
    )


@pytest.mark.parametrize("public_url", ["https://b40.example.org/", "HTTPS://b40.example.org"])
def test_a_webhook_with_an_https_public_url_is_accepted(public_url: str) -> None:
    settings = Settings(_env_file=None, webhook=True, public_url=public_url)  # type: ignore[call-arg]
    assert settings.base_url.lower() == "https://b40.example.org"


class FakeBotApi:
    """A Bot API on loopback that answers every method with one fixed HTTP status."""

    def __init__(self, status: int, description: str) -> None:
        self.methods: list[str] = []
        body = json.dumps({"ok": False, "error_code": status, "description": description})
        methods = self.methods

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                methods.append(self.path.rsplit("/", 1)[-1])
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def __enter__(self) -> FakeBotApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("status", "description"), [(401, "Unauthorized"), (404, "Not Found")])
def test_a_token_telegram_rejects_says_to_ask_botfather(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    description: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    env.setenv("B40_BOT_TOKEN", TOKEN)
    with FakeBotApi(status, description) as api:
        env.setenv("B40_TELEGRAM_API_URL", api.url)
        code, out, err = cli(capsys, "run")
    assert (code, out) == (2, "")
    assert err == (
        "Telegram rejected B40_BOT_TOKEN: it is wrong or was revoked "
        f"(or B40_TELEGRAM_API_URL is not a Bot API: {api.url})\n"
        "  ask @BotFather on Telegram for the current token (/mybots → API Token)\n"
    )
    assert api.methods == ["getMe"]  # nothing after Telegram said no
    # The whole story is logged at DEBUG level, without the token PTB puts in its message.
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("Traceback" in m and "InvalidToken" in m for m in debug)
    assert TOKEN not in caplog.text and "<hidden>" in caplog.text


def test_any_other_refusal_at_start_is_passed_on(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("B40_BOT_TOKEN", TOKEN)
    with FakeBotApi(400, "Bad Request: bot is not allowed here") as api:
        env.setenv("B40_TELEGRAM_API_URL", api.url)
        code, out, err = cli(capsys, "run")
    assert (code, out) == (2, "")
    assert err == (
        f"the Bot API at {api.url} refused to start the bot: Bot is not allowed here\n"
        "  correct what it names (`b40-bot --debug run` logs every request and answer)\n"
    )


def test_an_unreachable_bot_api_is_a_clear_error(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("B40_BOT_TOKEN", TOKEN)
    env.setenv("B40_TELEGRAM_API_URL", UNREACHABLE_API)
    code, out, err = cli(capsys, "run")
    assert (code, out) == (2, "")
    assert err == UNREACHABLE_LINES


UNREACHABLE_LINES = (
    f"cannot reach the Bot API at {UNREACHABLE_API}: ConnectError: All connection attempts failed\n"
    "  start that server, or correct B40_TELEGRAM_API_URL (unset, it means Telegram)\n"
)


def test_an_unreachable_bot_api_is_a_clear_error_in_a_real_process(tmp_path: Path) -> None:
    result = b40(
        "--debug",
        "run",
        cwd=tmp_path,
        B40_BOT_TOKEN=TOKEN,
        B40_TELEGRAM_API_URL=UNREACHABLE_API,
        B40_HTTP_PORT="0",
    )
    assert result.returncode == 2
    # Log lines come first; the fault is what the process says last.
    assert result.stderr.endswith("\n" + UNREACHABLE_LINES)
    assert result.stdout == ""
    # --debug shows PTB's own log, which names the URL with the token in it: hidden.
    assert "Set Bot API URL: http://127.0.0.1:1/bot<hidden>" in result.stderr
    assert TOKEN not in result.stderr and TOKEN.split(":")[1] not in result.stderr
    assert "Traceback" in result.stderr  # only the DEBUG log has it
    without_debug = b40(
        "run", cwd=tmp_path, B40_BOT_TOKEN=TOKEN, B40_TELEGRAM_API_URL=UNREACHABLE_API,
        B40_HTTP_PORT="0",
    )  # fmt: skip
    assert without_debug.returncode == 2
    assert without_debug.stderr.endswith("\n" + UNREACHABLE_LINES)
    assert "Traceback" not in without_debug.stderr and TOKEN not in without_debug.stderr


def database_env(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("B40_BOT_TOKEN", TOKEN)
    env.setenv("B40_TELEGRAM_API_URL", UNREACHABLE_API)  # never reached: the database comes first
    env.setenv("B40_DATABASE_URL", url)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_database_folder(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    database_env(env, "sqlite:///missing/b40.db")
    code, out, err = cli(capsys, *command)
    assert (code, out) == (2, "")
    assert err == (
        f"cannot open the database sqlite:///missing/b40.db: the folder {tmp_path / 'missing'} "
        "does not exist\n"
        "  create the folder, or set B40_DATABASE_URL to a file in an existing one\n"
    )
    assert not (tmp_path / "missing").exists()


def test_a_database_path_through_a_file(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    database_env(env, "sqlite:///cities.csv/b40.db")
    code, out, err = cli(capsys, "db", "upgrade")
    assert (code, out) == (2, "")
    assert err == (
        "cannot open the database sqlite:///cities.csv/b40.db: "
        f"the folder {tmp_path / 'cities.csv'} is a file, not a folder\n"
        "  create the folder, or set B40_DATABASE_URL to a file in an existing one\n"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_that_is_not_sqlite(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    corrupt = tmp_path / "b40.db"
    content = b"these are someone's notes, not a database\n" * 40
    corrupt.write_bytes(content)
    database_env(env, "sqlite:///b40.db")
    code, out, err = cli(capsys, *command)
    assert (code, out) == (2, "")
    assert err == (
        f"{corrupt} is not an SQLite database (B40_DATABASE_URL=sqlite:///b40.db)\n"
        "  restore it from a backup, or set B40_DATABASE_URL to another file\n"
    )
    assert corrupt.read_bytes() == content


def test_a_database_path_that_is_a_folder_cannot_be_created(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    database_env(env, "sqlite:///data")
    code, out, err = cli(capsys, "db", "upgrade")
    assert (code, out) == (2, "")
    assert err == (
        f"cannot open the database sqlite:///data: {tmp_path / 'data'} is a folder, not a file\n"
        f"  set B40_DATABASE_URL to a file, e.g. sqlite:///{tmp_path / 'data' / 'b40.db'}\n"
    )
    assert list((tmp_path / "data").iterdir()) == []


def test_a_read_only_database_file(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # SQLite's read-only mode stands in for file permissions, which do not stop root.
    sqlite3.connect(tmp_path / "b40.db").close()
    database_env(env, "sqlite:///file:b40.db?mode=ro&uri=true")
    code, out, err = cli(capsys, "db", "upgrade")
    assert (code, out) == (2, "")
    assert err == (
        "cannot write the database sqlite:///file%3Ab40.db?mode=ro&uri=true: "
        "the file is read-only\n"
        "  make it writable for this user, or set B40_DATABASE_URL to another file\n"
    )
    assert (tmp_path / "b40.db").stat().st_size == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_database_folder(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        database_env(env, "sqlite:///ro/b40.db")
        code, out, err = cli(capsys, "db", "upgrade")
    finally:
        folder.chmod(0o755)
    assert (code, out) == (2, "")
    assert err == (
        f"cannot write the database sqlite:///ro/b40.db: the folder {folder} is read-only "
        "(SQLite writes its journal next to the file)\n"
        "  make the folder writable for this user, or set B40_DATABASE_URL to another folder\n"
    )
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_postgresql(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    database_env(env, "postgresql://b40:s3cret-pw@127.0.0.1:1/b40")
    code, out, err = cli(capsys, *command)
    assert (code, out) == (2, "")
    assert err == (
        "cannot connect to PostgreSQL at postgresql://b40:***@127.0.0.1:1/b40: connection refused\n"
        "  start the server, or correct the host and port in B40_DATABASE_URL\n"
    )
    assert "s3cret-pw" not in err
    assert not (tmp_path / "b40.db").exists()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs B40_TEST_DATABASE_URL")
def test_a_postgresql_database_that_does_not_exist(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(POSTGRES_URL).set(database="b40_no_such_database", password="s3cret-pw")
    database_env(env, url.render_as_string(hide_password=False))
    code, out, err = cli(capsys, "db", "upgrade")
    assert (code, out) == (2, "")
    assert err == (
        f"PostgreSQL at {url.render_as_string(hide_password=True)} refused: "
        'database "b40_no_such_database" does not exist\n'
        "  check the user, password and database name in B40_DATABASE_URL\n"
    )
    assert "s3cret-pw" not in err


def test_a_database_option_the_driver_refuses(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    database_env(env, "sqlite:///b40.db?timeout=soon")
    code, out, err = cli(capsys, "db", "upgrade")
    assert (code, out) == (2, "")
    assert err == (
        "B40_DATABASE_URL (sqlite:///b40.db?timeout=soon) cannot be used: "
        "could not convert string to float: 'soon'\n"
    )
    assert not (tmp_path / "b40.db").exists()


def test_db_upgrade_names_the_database_without_its_password(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "db", "upgrade")
    assert (code, out, err) == (0, "database is up to date: sqlite:///b40.db\n", "")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("B" * 131_073 + ",MK,Europe/Skopje", "a field is longer than 131,072 characters"),
        (
            "Bit\0ola,MK,Europe/Skopje",
            "a NUL byte (a binary file, or a spreadsheet not saved as CSV?)",
        ),
    ],
)
def test_csv_the_csv_module_cannot_read_is_a_bad_file(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    row: str,
    reason: str,
) -> None:
    (tmp_path / "bad.csv").write_text(
        f"name,country,timezone\nOhrid,MK,Europe/Skopje\n{row}\n", encoding="utf-8"
    )
    code, out, err = cli(capsys, "import-cities", "bad.csv")
    assert (code, out) == (1, "")
    assert err == f"bad.csv: line 3: {reason}; nothing was imported\n"
    assert not (tmp_path / "b40.db").exists()


@pytest.mark.parametrize(
    ("zone", "joined_on"), [("Europe/Istanbul", "2026-03-02"), ("UTC", "2026-03-01")]
)
def test_a_city_joins_on_the_networks_date(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    zone: str,
    joined_on: str,
) -> None:
    env.setenv("B40_TIMEZONE", zone)
    late_evening = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)  # 1:30 on 2 March in Istanbul
    code, out, err = cli(capsys, "import-cities", "cities.csv", now=lambda: late_evening)
    assert (code, out, err) == (0, "cities.csv: 1 added, 0 updated, 0 unchanged\n", "")
    with contextlib.closing(sqlite3.connect(tmp_path / "b40.db")) as connection:
        rows = connection.execute("SELECT name, joined_on FROM city").fetchall()
    assert rows == [("Ohrid", joined_on)]


# Losing Telegram while running: one line when it goes, one when it is back.


def polling_log(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]


async def test_an_outage_is_logged_once_however_often_polling_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    probes: list[str] = []

    async def probe() -> None:
        probes.append("getMe")
        if len(probes) == 1:
            raise NetworkError("httpx.ConnectError: still down")

    health = PollingHealth(probe, secrets=[TOKEN])
    for _ in range(5):
        health.failed(NetworkError(f"httpx.ConnectError: refused (POST /bot{TOKEN}/getUpdates)"))
    assert polling_log(caplog) == [
        (
            logging.WARNING,
            "lost Telegram (httpx.ConnectError: refused (POST /bot<hidden>/getUpdates)); "
            "retrying quietly until it is back",
        )
    ]
    await health.check(failures_before=4)  # polling failed since: still out, and no probe
    assert probes == []
    await health.check(failures_before=5)  # quiet, but getMe fails: still out
    assert probes == ["getMe"] and len(polling_log(caplog)) == 1
    await health.check(failures_before=5)
    assert polling_log(caplog)[1:] == [(logging.INFO, "Telegram is reachable again; polling works")]
    await health.check(failures_before=5)  # nothing to recover from: no probe, no line
    assert probes == ["getMe", "getMe"] and len(polling_log(caplog)) == 2
    health.failed(NetworkError("httpx.ReadError: gone again"))
    assert polling_log(caplog)[2:] == [
        (
            logging.WARNING,
            "lost Telegram (httpx.ReadError: gone again); retrying quietly until it is back",
        )
    ]
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    "refusal",
    [Conflict("terminated by other getUpdates request"), BadRequest("Bad Request: wrong offset")],
)
async def test_a_refusal_that_is_not_the_network_is_an_error_logged_once(
    caplog: pytest.LogCaptureFixture, refusal: TelegramError
) -> None:
    async def probe() -> None:
        pass

    health = PollingHealth(probe)
    for _ in range(3):
        health.failed(refusal)
    assert polling_log(caplog) == [
        (logging.ERROR, f"Telegram refused getUpdates ({refusal.message}); retrying quietly")
    ]
    assert refusal.message in ("terminated by other getUpdates request", "Wrong offset")


async def test_the_watcher_notices_the_end_of_an_outage_by_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot")

    async def probe() -> None:
        pass

    health = PollingHealth(probe, interval=0.01)
    watching = asyncio.create_task(health.watch())
    try:
        health.failed(NetworkError("httpx.ConnectError: refused"))
        for _ in range(200):
            if not health.lost.is_set():
                break
            await asyncio.sleep(0.01)
    finally:
        watching.cancel()
    assert [level for level, _message in polling_log(caplog)] == [logging.WARNING, logging.INFO]


def test_the_playground_never_touches_a_database_it_did_not_make(tmp_path: Path) -> None:
    real = tmp_path / "b40.db"
    real.write_bytes(b"the network's data")
    for extra in ((), ("--fresh",)):
        result = b40("playground", "--db", str(real), "--port", "0", *extra, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "was not made by the playground" in result.stderr
        assert "Traceback" not in result.stderr
        assert real.read_bytes() == b"the network's data"


def test_the_playground_says_when_its_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = b40("playground", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "B40_HTTP_PORT" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "playground.db").exists()


def test_a_playground_cut_short_while_seeding_starts_over(tmp_path: Path) -> None:
    from bot.cli import StartupFault, _playground_files

    database, state = tmp_path / "p.db", tmp_path / "p.db.state.json"
    assert _playground_files(database, fresh=False) == state
    assert json.loads(state.read_text(encoding="utf-8")) == {"seeded": False}
    database.write_bytes(b"half seeded")  # the process died here
    _playground_files(database, fresh=False)
    assert not database.exists()  # ours and unfinished: started over

    database.write_bytes(b"a playground's data")
    state.write_text(json.dumps({"seeded": True}), encoding="utf-8")
    _playground_files(database, fresh=False)
    assert database.read_bytes() == b"a playground's data"  # finished: kept

    state.write_text("{not json", encoding="utf-8")
    with pytest.raises(StartupFault, match="--fresh"):
        _playground_files(database, fresh=False)
    _playground_files(database, fresh=True)
    assert not database.exists()
    assert json.loads(state.read_text(encoding="utf-8")) == {"seeded": False}
