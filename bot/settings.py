"""Configuration from the environment (and a ``.env`` file), validated once at start."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from locales import SUPPORTED_LANGUAGES, normalize_language

TELEGRAM_API_URL = "https://api.telegram.org/bot"

# Tokens people paste from examples instead of their own.
_PLACEHOLDER_TOKENS = {"changeme", "change-me", "your-token", "token", "123456:abc", "xxx"}


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

    @model_validator(mode="after")
    def _check_token(self) -> Settings:
        if self.bot_token is not None:
            token = self.bot_token.get_secret_value().strip()
            if not token or token.lower() in _PLACEHOLDER_TOKENS or ":" not in token:
                raise ValueError(
                    "B40_BOT_TOKEN does not look like a token from @BotFather "
                    "(it has the form 123456789:AA...)"
                )
        return self

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    def require_token(self) -> str:
        if self.bot_token is None:
            raise MissingTokenError(
                "B40_BOT_TOKEN is not set. Ask @BotFather on Telegram for a token (/newbot), then\n"
                "  export B40_BOT_TOKEN=123456789:AA...   (or put it in a .env file)\n"
                "and run `b40-bot run` again."
            )
        return self.bot_token.get_secret_value().strip()
