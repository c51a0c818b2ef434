"""Alembic environment: runs migrations on the hub's async engine.

No ``fileConfig`` here: Alembic logs through the process's logging (``hub.logs``, set up
by the CLI), so its lines come out in the hub's format, JSON included."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from hub import models

config = context.config
target_metadata = models.metadata

#: The PostgreSQL advisory lock migrations hold (any constant; "smshub" in ASCII).
MIGRATION_LOCK = 0x736D73687562


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several processes starting at once (each runs the upgrade): one migrates,
            # the others wait here, then find the version current and do nothing. Held
            # until the migrations' transaction ends.
            connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
