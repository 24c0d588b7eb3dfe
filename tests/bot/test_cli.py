"""The console script, as a newcomer would run it: `python -m bot ...` in a fresh directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings
from tests.conftest import DATA

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
