"""Configuration from the environment (and a ``.env`` file), validated once at start."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from locales import SUPPORTED_LANGUAGES, normalize_language
from storage.calendars import derive_key

TELEGRAM_API_URL = "https://api.telegram.org/bot"

# Tokens people paste from examples instead of their own (the README's among them).
_PLACEHOLDER_TOKENS = {
    "changeme",
    "change-me",
    "your-token",
    "token",
    "123456:abc",
    "xxx",
    "123456789:aa...",
    "123456789:aae…",
}
# The shape of every token @BotFather hands out: the bot's id, a colon, a long secret.
TOKEN_SHAPE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")
ASK_BOTFATHER = (
    "ask @BotFather on Telegram for your bot's token (/mybots, or /newbot for a new bot)"
)
DATABASE_EXAMPLES = "use sqlite:///b40.db (a file) or postgresql://user:password@host:5432/b40"


class MissingTokenError(RuntimeError):
    """Raised by ``require_token`` with a message meant for a person."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="B40_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    bot_token: SecretStr | None = None
    telegram_api_url: str = TELEGRAM_API_URL
    database_url: str = "sqlite:///b40.db"
    secretariat: Annotated[frozenset[int], NoDecode] = frozenset()
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    webhook: bool = False
    timezone: str = "Europe/Istanbul"
    default_language: str = "en"
    # Where a session is held online: {room} becomes a room name nobody can guess, one per
    # session (Jitsi Meet needs no account). Without {room}, every session shares the link.
    meeting_url: str = "https://meet.jit.si/{room}"
    # What calendar addresses are made with; without it, the bot's token (a new token then
    # changes every address). Keep it secret and keep it: changing it changes every address.
    calendar_secret: SecretStr | None = None

    @field_validator("secretariat", mode="before")
    @classmethod
    def _parse_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            try:
                return frozenset(int(part) for part in parts)
            except ValueError as exc:
                raise ValueError(
                    "B40_SECRETARIAT must be comma-separated numeric Telegram user ids, "
                    "e.g. 11111111,22222222"
                ) from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone, e.g. Europe/Istanbul") from exc
        return value

    @field_validator("default_language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        code = normalize_language(value)
        if code is None:
            raise ValueError(
                f"{value!r} is not supported; one of: {', '.join(SUPPORTED_LANGUAGES)}"
            )
        return code

    @field_validator("telegram_api_url", "public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("bot_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: object) -> object:
        # .env.example leaves `B40_BOT_TOKEN=` empty: that is "not set yet", not a bad token.
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        # The messages never quote the value: it may be a real token with a typo in it.
        if value is None:
            return None
        token = value.get_secret_value()
        if token.lower() in _PLACEHOLDER_TOKENS:
            raise ValueError(
                f"this is the placeholder from an example, not a token;\n  {ASK_BOTFATHER}"
            )
        if not TOKEN_SHAPE.fullmatch(token):
            raise ValueError(
                "this does not look like a token from @BotFather "
                "(digits, a colon, then 30 or more letters, digits, - or _);\n  " + ASK_BOTFATHER
            )
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        # The value is not quoted: a token pasted into the URL would be printed.
        if not _is_http_url(value):
            raise ValueError(
                "not an http:// or https:// URL; leave it unset for Telegram itself, "
                "or give a Bot API server such as http://127.0.0.1:8081/bot"
            )
        return value

    @field_validator("meeting_url")
    @classmethod
    def _check_meeting_url(cls, value: str) -> str:
        if not _is_http_url(value.replace("{room}", "room")) or value.count("{room}") > 1:
            raise ValueError(
                f"{value!r} is not an http:// or https:// URL with at most one {{room}}, "
                "e.g. https://meet.jit.si/{room}"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is not None and not _is_http_url(value):
            raise ValueError(
                f"{value!r} is not an http:// or https:// URL, e.g. https://b40.example.org"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        # The value is not quoted: it may hold a password.
        try:
            backend = make_url(value).get_backend_name()
        except (ArgumentError, ValueError):
            raise ValueError(f"not a database URL; {DATABASE_EXAMPLES}") from None
        if backend not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"{backend} is not supported; {DATABASE_EXAMPLES}")
        return value

    @model_validator(mode="after")
    def _webhook_needs_https(self) -> Settings:
        if self.webhook and urlsplit(self.public_url or "").scheme != "https":
            raise ValueError(
                "B40_WEBHOOK=true needs B40_PUBLIC_URL to be the bot's https:// address "
                "(Telegram only calls https webhooks);\n"
                "  set B40_PUBLIC_URL=https://your.domain, or unset B40_WEBHOOK to poll instead"
            )
        return self

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    def calendar_key(self, token: str | None = None) -> bytes:
        secret = self.calendar_secret or self.bot_token
        if secret is not None:
            return derive_key(secret.get_secret_value())
        return derive_key(token or "")

    def require_token(self) -> str:
        if self.bot_token is None:
            raise MissingTokenError(
                "B40_BOT_TOKEN is not set. Ask @BotFather on Telegram for a token (/newbot), then\n"
                "  export B40_BOT_TOKEN=123456789:AA...   (or put it in a .env file)\n"
                "and run `b40-bot run` again."
            )
        return self.bot_token.get_secret_value()


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
