"""The PostgreSQL store: the same units, batched per connection with asyncpg.

A few connections (``CONNECTIONS``) each take whatever units are waiting and run them as
one transaction, a savepoint per unit, statements as prepared ``$n`` queries (asyncpg
caches the plans). PostgreSQL takes concurrent writers, so batches run side by side;
the batching saves the per-transaction round trips and fsyncs. A unit that loses a
deadlock or serialization race is run again (once more than ``RETRIES`` times fails it).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg

from hub.db import Outage
from hub.store.sqlite import OnCommit
from hub.store.units import Exec, IntegrityError, Json, Note, Result, Unit, dumps

log = logging.getLogger("smshub.store")

#: Connections running write batches side by side.
CONNECTIONS = 3
#: Units written in one transaction at most.
MAX_BATCH = 128
#: Times a unit is run again after losing a deadlock / serialization race.
RETRIES = 3

_PLACEHOLDER = re.compile(r"\?")
_SQL: dict[str, str] = {}
_ROWCOUNT = re.compile(r"(\d+)$")


def pg_sql(sql: str) -> str:
    """``?`` placeholders as ``$1, $2…`` (cached; the hub's SQL has no literal ``?``)."""
    found = _SQL.get(sql)
    if found is None:
        counter = iter(range(1, 1_000_000))
        found = _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)
        _SQL[sql] = found
    return found


def pg_param(value: Any) -> Any:
    """A parameter as asyncpg binds it (aware UTC timestamps, JSON as text)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, Json):
        return dumps(value.value)
    return value


async def run_op(conn: asyncpg.Connection, op: Exec) -> Result:
    """Run one statement on an asyncpg connection."""
    sql = pg_sql(op.sql)
    try:
        if op.many is not None:
            await conn.executemany(sql, [[pg_param(v) for v in row] for row in op.many])
            return Result([], len(op.many))
        params = [pg_param(v) for v in op.params]
        head = op.sql.lstrip()[:6].upper()
        if head == "SELECT" or "RETURNING" in op.sql.upper():
            records = await conn.fetch(sql, *params)
            return Result([tuple(r) for r in records], len(records))
        status = await conn.execute(sql, *params)
        match = _ROWCOUNT.search(status or "")
        return Result([], int(match.group(1)) if match else 0)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(str(exc)) from exc


async def drive(conn: asyncpg.Connection, unit: Unit[Any], notes: list[Note]) -> Any:
    """Run a unit to its end on ``conn``; its return value (its notes collected)."""
    try:
        op = next(unit)
        while True:
            if isinstance(op, Note):
                notes.append(op)
                op = unit.send(None)
                continue
            try:
                result = await run_op(conn, op)
            except Exception as exc:
                op = unit.throw(exc)
                continue
            op = unit.send(result)
    except StopIteration as stop:
        return stop.value


@dataclass(slots=True)
class _Item:
    #: Makes the unit again for a retry (None: the caller passed a unit, not a maker).
    make: Callable[[], Unit[Any]] | None
    unit: Unit[Any]
    future: asyncio.Future[Any]
    notes: list[Note] = field(default_factory=list)
    value: Any = None
    error: BaseException | None = None
    tries: int = 1


_RACES = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
#: Marks an item whose unit was queued again (its caller waits for the retry).
_RETRIED = Exception("retried")


class PostgresStore:
    """Hot-path writes and reads on PostgreSQL through asyncpg."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, connections: int = CONNECTIONS) -> None:
        self.dsn = dsn
        self.connections = connections
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._pool: asyncpg.Pool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._on_commit: OnCommit | None = None
        self._starting: asyncio.Lock | None = None
        self.batches = 0
        self.units = 0
        self._outage = Outage(log, "a PostgreSQL write batch")

    def on_commit(self, listener: OnCommit) -> None:
        """Call ``listener`` with the notes of every committed batch."""
        self._on_commit = listener

    async def _start(self) -> asyncpg.Pool:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=1, max_size=self.connections + 2
                )
                self._tasks = [
                    asyncio.create_task(self._batches(), name=f"smshub-pg-writer-{n}")
                    for n in range(self.connections)
                ]
        return self._pool

    async def write(self, unit: Unit[Any] | Callable[[], Unit[Any]]) -> Any:
        """Run ``unit`` in the next write batch; its value once the batch committed.

        Pass a function making the unit to have it run again after a deadlock."""
        if self._pool is None:
            await self._start()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if inspect.isgenerator(unit):
            item = _Item(None, cast(Unit[Any], unit), future)
        else:
            make = cast(Callable[[], Unit[Any]], unit)
            item = _Item(make, make(), future)
        self._queue.put_nowait(item)
        return await future

    async def read(self, unit: Unit[Any]) -> Any:
        """Run a read-only ``unit`` on a pooled connection, outside the write batches."""
        pool = self._pool or await self._start()
        async with pool.acquire() as conn:
            return await drive(conn, unit, [])

    @property
    def stats(self) -> dict[str, int]:
        """Batches and units written so far."""
        return {"batches": self.batches, "units": self.units}

    async def _batches(self) -> None:
        assert self._pool is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self._pool.acquire() as conn:
                    await self._run(conn, batch)
            except Exception as exc:
                self._outage.failed(exc)  # PostgreSQL away: one line, not one per batch
                for item in batch:
                    item.error, item.notes = exc, []
            else:
                self._outage.worked()
            self.batches += 1
            self.units += len(batch)
            self._settle(batch)
            for _ in batch:
                self._queue.task_done()

    async def _run(self, conn: asyncpg.Connection, batch: Sequence[_Item]) -> None:
        async with conn.transaction():
            for item in batch:
                try:
                    async with conn.transaction():  # a savepoint
                        item.value = await drive(conn, item.unit, item.notes)
                except BaseException as exc:
                    item.error, item.notes = exc, []

    def _settle(self, batch: Sequence[_Item]) -> None:
        for item in batch:
            if isinstance(item.error, _RACES) and item.make is not None and item.tries <= RETRIES:
                log.info("unit lost a race (%s); running it again", type(item.error).__name__)
                retry = _Item(item.make, item.make(), item.future, tries=item.tries + 1)
                self._queue.put_nowait(retry)
                item.error = _RETRIED
        notes = [n for item in batch if item.error is None for n in item.notes]
        if notes and self._on_commit is not None:
            try:
                self._on_commit(notes)
            except Exception:
                log.exception("after-commit listener failed")
        for item in batch:
            if item.future.done() or item.error is _RETRIED:
                continue
            if item.error is not None:
                item.future.set_exception(item.error)
            else:
                item.future.set_result(item.value)

    async def close(self) -> None:
        """Let queued units finish, then close the connections."""
        if self._tasks:
            await self._queue.join()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
