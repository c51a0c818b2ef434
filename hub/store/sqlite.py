"""The SQLite store: every hot write group-committed in one thread, one hop per batch.

A dedicated writer thread owns a plain ``sqlite3`` connection. Callers on the event loop
put units on a queue; the thread takes whatever is waiting (up to ``MAX_BATCH``), runs it
as ONE transaction — ``BEGIN IMMEDIATE``, a ``SAVEPOINT`` per unit so a unit that fails is
undone alone, ``COMMIT`` (fsynced with ``synchronous=FULL``) — and only then hands every
caller its result, with one ``call_soon_threadsafe`` for the whole batch. While it
commits, new units queue up for the next batch: no timer, so a lone unit is written at
once, and under load a batch grows until the disk's fsync is amortized.

Reads that must not wait behind writes go to a reader thread with its own connection
(WAL mode: readers never block the writer and see the last commit).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.store.units import Exec, IntegrityError, Json, Note, Result, Unit, dumps

log = logging.getLogger("smshub.store")

#: Units written in one transaction at most.
MAX_BATCH = 256
#: Milliseconds a connection waits for another connection's write lock.
BUSY_TIMEOUT_MS = 10_000

OnCommit = Callable[[list[Note]], None]


@dataclass(slots=True)
class _Item:
    unit: Unit[Any]
    future: asyncio.Future[Any]
    notes: list[Note] = field(default_factory=list)
    value: Any = None
    error: BaseException | None = None


_STOP = object()


def sqlite_param(value: Any) -> Any:
    """A parameter as SQLAlchemy stores it in SQLite (naive UTC text, JSON text)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Json):
        return dumps(value.value)
    return value


def _params(values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(sqlite_param(v) for v in values)


def run_op(conn: sqlite3.Connection, op: Exec) -> Result:
    """Run one statement on a plain connection."""
    try:
        if op.many is not None:
            cursor = conn.executemany(op.sql, [_params(row) for row in op.many])
            return Result([], cursor.rowcount)
        cursor = conn.execute(op.sql, _params(op.params))
        rows = cursor.fetchall()
        return Result(rows, cursor.rowcount)
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(str(exc)) from exc


def drive(conn: sqlite3.Connection, unit: Unit[Any], notes: list[Note]) -> Any:
    """Run a unit to its end on ``conn``; its return value (its notes collected)."""
    try:
        op = next(unit)
        while True:
            if isinstance(op, Note):
                notes.append(op)
                op = unit.send(None)
                continue
            try:
                result = run_op(conn, op)
            except Exception as exc:  # the unit may handle it (IntegrityError)
                op = unit.throw(exc)
                continue
            op = unit.send(result)
    except StopIteration as stop:
        return stop.value


def connect(path: str, *, synchronous: str, readonly: bool = False) -> sqlite3.Connection:
    """A plain connection with the hub's pragmas (autocommit: we issue BEGIN ourselves)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


class _Worker:
    """One thread running batches of units on its own connection."""

    def __init__(self, name: str, connect_: Callable[[], sqlite3.Connection], *, write: bool):
        self.name = name
        self._connect = connect_
        self._write = write
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_commit: OnCommit | None = None
        #: Batches and units run so far (benchmarks and tests read these).
        self.batches = 0
        self.units = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def submit(self, unit: Unit[Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self.start(loop)
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Item(unit, future))
        return future

    def _main(self) -> None:
        conn = self._connect()
        try:
            while True:
                batch = self._take()
                if batch is None:
                    return
                self._run(conn, batch)
        finally:
            conn.close()

    def _take(self) -> list[_Item] | None:
        """Block for one unit, then take whatever else is waiting (None: stop)."""
        first = self._queue.get()
        if first is _STOP:
            return None
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _run(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
            for item in batch:
                self._run_one(conn, item)
            conn.execute("COMMIT")
        except BaseException as exc:  # the commit (or BEGIN) failed: nothing is durable
            log.exception("a %s batch of %d failed as a whole", self.name, len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for item in batch:
                item.error, item.notes = exc, []
        self.batches += 1
        self.units += len(batch)
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._settle, batch)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.warning("%s: loop closed, %d results dropped", self.name, len(batch))

    @staticmethod
    def _run_one(conn: sqlite3.Connection, item: _Item) -> None:
        conn.execute("SAVEPOINT unit")
        try:
            item.value = drive(conn, item.unit, item.notes)
        except BaseException as exc:
            conn.execute("ROLLBACK TO unit")
            item.error, item.notes = exc, []
        conn.execute("RELEASE unit")

    def _settle(self, batch: list[_Item]) -> None:
        """On the loop: tell the process what committed, then wake every caller."""
        notes = [n for item in batch if item.error is None for n in item.notes]
        if notes and self.on_commit is not None:
            try:
                self.on_commit(notes)
            except Exception:  # a listener's bug must not strand the callers
                log.exception("after-commit listener failed")
        for item in batch:
            if item.future.done():  # the caller gave up waiting (cancelled)
                continue
            if item.error is not None:
                item.future.set_exception(item.error)
            else:
                item.future.set_result(item.value)


class SqliteStore:
    """Hot-path writes (batched, one thread) and reads (another thread) on plain sqlite3."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self._writer = _Worker(
            "smshub-writer", lambda: connect(self.path, synchronous=synchronous), write=True
        )
        self._reader = _Worker(
            "smshub-reader",
            lambda: connect(self.path, synchronous=synchronous, readonly=True),
            write=False,
        )

    def on_commit(self, listener: OnCommit) -> None:
        """Call ``listener`` (on the loop) with the notes of every committed batch."""
        self._writer.on_commit = listener

    async def write(self, unit: Unit[Any]) -> Any:
        """Run ``unit`` in the next write batch; its value once the batch is durable."""
        return await self._writer.submit(unit)

    async def read(self, unit: Unit[Any]) -> Any:
        """Run a read-only ``unit`` on the reader connection."""
        return await self._reader.submit(unit)

    @property
    def stats(self) -> dict[str, int]:
        """Batches and units written so far."""
        return {"batches": self._writer.batches, "units": self._writer.units}

    async def close(self) -> None:
        """Finish what is queued and stop both threads."""
        await asyncio.to_thread(self._writer.stop)
        await asyncio.to_thread(self._reader.stop)
