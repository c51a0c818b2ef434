"""Database engine and transactions.

SQLite (the embedded default) gets WAL mode, a busy timeout, ``synchronous=FULL`` unless
configured otherwise, and one dedicated writer connection whose transactions start with
``BEGIN IMMEDIATE``: writers queue in-process instead of failing with "database is
locked" halfway through. PostgreSQL uses one pool. This is the ORM's side, for the
schema and the cold paths; the hot path writes through ``hub.store``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

#: Milliseconds a SQLite connection waits for another process's write lock.
SQLITE_BUSY_TIMEOUT_MS = 10_000

#: Errors that mean "the database cannot be reached or refuses work right now", not "this
#: request is wrong": the answer is a 503 with Retry-After, so a gateway retries the
#: webhook later (its retry is the safety net) instead of dropping it after a 500.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, broken pipe (PostgreSQL down or restarting)
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.InterfaceError,  # e.g. the connection was closed under us
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    sqlite3.OperationalError,  # locked for too long, disk I/O error, cannot open the file
)


#: A write that lost to concurrent writers (deadlock, serialization) more often than the
#: store runs it again: the caller may simply try again.
CONTENDED: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


def is_contended(exc: BaseException) -> bool:
    """Whether ``exc`` (or what SQLAlchemy wrapped in it) is a lost race between writers."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return isinstance(exc.orig, CONTENDED) or isinstance(
            getattr(exc.orig, "__cause__", None), CONTENDED
        )
    return isinstance(exc, CONTENDED)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what SQLAlchemy wrapped in it) says the database is away."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc.orig, UNAVAILABLE):
            return True
        return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
    return isinstance(exc, UNAVAILABLE)


class Outage:
    """Logs a database outage once — a warning when the first attempt fails, a line when
    one works again — instead of a traceback per failed attempt (hundreds a second under
    load); any other error is logged with its traceback."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.away = False

    def failed(self, exc: BaseException) -> None:
        """``what`` failed with ``exc``."""
        if not is_unavailable(exc):
            self.log.error("%s failed", self.what, exc_info=exc)
        elif not self.away:
            self.away = True
            self.log.warning(
                "%s failed: the database is unavailable (%s: %s); retrying",
                self.what,
                type(exc).__name__,
                exc,
            )

    def worked(self) -> None:
        """``what`` worked."""
        if self.away:
            self.away = False
            self.log.info("%s works again", self.what)


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return on_connect


def _make_engine(
    url: str, *, immediate: bool, pool_size: int | None, synchronous: str = "FULL"
) -> AsyncEngine:
    kwargs: dict[str, Any] = {}
    if pool_size is not None:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = 0
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas(synchronous))

        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql(begin_sql)

        sa.event.listen(engine.sync_engine, "begin", _begin)
    return engine


class Database:
    """The hub's engines and session factories."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            sync = sqlite_synchronous
            self.engine = _make_engine(url, immediate=False, pool_size=8, synchronous=sync)
            self.write_engine = _make_engine(url, immediate=True, pool_size=1, synchronous=sync)
        else:
            self.engine = _make_engine(url, immediate=False, pool_size=pool_size)
            self.write_engine = self.engine
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed on success, rolled back on any exception."""
        async with self._write() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session."""
        async with self._read() as session:
            yield session

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


def _ensure_sqlite_dir(url: str) -> None:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
