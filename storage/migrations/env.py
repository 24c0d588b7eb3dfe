"""Alembic environment: runs on the connection handed over by ``storage.db.upgrade``,
or, from the ``alembic`` command line, on ``B40_DATABASE_URL``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_from_settings() -> None:
    from bot.settings import Settings
    from storage.db import create_engine

    async def go() -> None:
        engine = create_engine(Settings().database_url)
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
        await engine.dispose()

    asyncio.run(go())


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
elif context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; use `b40-bot db upgrade`")
else:
    run_from_settings()
