"""The SQLite store: every hot write group-committed, one thread hop per batch.

SQLite is fast where Python is slow to reach it: a statement takes microseconds, a
fsynced commit a millisecond or so. So the work is split where the waiting is:

* **Statements run on the event loop**, synchronously, on a plain ``sqlite3`` connection
  inside an open write transaction, one ``SAVEPOINT`` per unit (a unit that fails is
  undone alone, its batch-mates stay). No thread switch per statement, so no fight for
  the GIL with the loop's own work.
* **BEGIN IMMEDIATE and COMMIT run in one dedicated thread** — they are what may wait
  (another connection's write lock, the fsync of ``synchronous=FULL``) and they release
  the GIL while they do. A batch is every unit that ran while the previous commit was
  in flight: no timer, so a lone unit commits at once, and under load a batch grows
  until the fsync is amortized. Callers are resumed only after COMMIT returns: what a
  unit wrote is durable when ``write`` returns.

Reads run on the loop too, on a second connection (WAL mode: readers never block and
never wait for the writer, and see the last commit).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import fcntl
import inspect
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from hub.store.units import Exec, IntegrityError, Json, Note, Result, Unit, dumps

log = logging.getLogger("smshub.store")

#: Units written in one transaction at most (a larger backlog takes several commits).
MAX_BATCH = 512
#: Milliseconds a connection waits for another connection's write lock.
BUSY_TIMEOUT_MS = 10_000

OnCommit = Callable[[list[Note]], None]


#: The last timestamp bound and its text: a unit binds the same ``now`` to several
#: columns (created_at, updated_at, run_at…). The tuple keeps the datetime alive, so an
#: identity match is never a different object at a reused address.
_last_timestamp: tuple[datetime | None, str] = (None, "")


def sqlite_timestamp(value: datetime) -> str:
    """A timestamp as SQLAlchemy stores it in SQLite: naive UTC text, microseconds always."""
    global _last_timestamp
    last = _last_timestamp
    if last[0] is value:
        return last[1]
    utc = value.astimezone(UTC) if value.tzinfo not in (None, UTC) else value
    # The first 26 characters are the same with or without an offset after them, and
    # slicing is half the cost of replace(tzinfo=None).
    text = utc.isoformat(" ", "microseconds")[:26]
    _last_timestamp = (value, text)
    return text


# sqlite3 converts these in C as it binds them (no Python pass over every parameter).
# Global, but harmless: SQLAlchemy turns its values into text before binding.
sqlite3.register_adapter(datetime, sqlite_timestamp)
sqlite3.register_adapter(Json, lambda value: dumps(value.value))


def run_op(conn: sqlite3.Connection, op: Exec) -> Result:
    """Run one statement on a plain connection."""
    try:
        if op.many is not None:
            cursor = conn.executemany(op.sql, op.many)
            return Result([], cursor.rowcount)
        cursor = conn.execute(op.sql, op.params)
        return Result(cursor.fetchall(), cursor.rowcount)
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


@dataclass(slots=True)
class _Item:
    unit: Unit[Any]
    future: asyncio.Future[Any]
    notes: list[Note] = field(default_factory=list)
    value: Any = None
    error: BaseException | None = None


class _State(enum.Enum):
    IDLE = "idle"  # no transaction
    BEGINNING = "beginning"  # BEGIN IMMEDIATE in the thread
    OPEN = "open"  # a write transaction the loop runs units in
    COMMITTING = "committing"  # COMMIT in the thread


class SqliteStore:
    """Hot-path writes (group-committed) and reads on plain sqlite3 connections."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._lock: int | None = None
        self._reader: sqlite3.Connection | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "smshub-committer")
        self._state = _State.IDLE
        #: Units waiting for the next transaction, and those run in the open one.
        self._pending: list[_Item] = []
        self._batch: list[_Item] = []
        self._run_scheduled = False
        #: Whether the committer thread opened the next transaction right after a commit.
        self._begun = False
        self._on_commit: OnCommit | None = None
        self._closed = False
        #: Batches and units written, reads done (benchmarks and tests read these).
        self.batches = 0
        self.units = 0
        self.reads = 0
        self.commit_wall_s = 0.0

    def on_commit(self, listener: OnCommit) -> None:
        """Call ``listener`` (on the loop) with the notes of every committed batch."""
        self._on_commit = listener

    async def write(self, unit: Unit[Any] | Callable[[], Unit[Any]]) -> Any:
        """Run ``unit`` in the next write batch; its value once the batch is durable.

        A function making the unit is taken too (PostgreSQL runs it again after a lost
        deadlock; SQLite's single writer has none to lose), so callers need not care."""
        if self._closed:
            raise RuntimeError("the store is closed")
        if not inspect.isgenerator(unit):
            unit = cast(Callable[[], Unit[Any]], unit)()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(unit, future))
        self._advance()
        return await future

    async def read(self, unit: Unit[Any]) -> Any:
        """Run a read-only ``unit`` now, on the reader connection (sees the last commit)."""
        if self._reader is None:
            self._reader = connect(self.path, synchronous=self.synchronous, readonly=True)
        self.reads += 1
        self._reader.execute("BEGIN")  # one snapshot for all the unit's statements
        try:
            return drive(self._reader, unit, [])
        finally:
            self._reader.execute("COMMIT")

    @property
    def stats(self) -> dict[str, float]:
        """Batches and units written, reads done, seconds spent committing."""
        return {
            "batches": self.batches,
            "units": self.units,
            "reads": self.reads,
            "commit_wall_s": self.commit_wall_s,
        }

    # -- the cycle: BEGIN (thread) → run pending units (loop) → COMMIT (thread) → … --------

    def _advance(self) -> None:
        """Move the cycle on from wherever it stands (called on the loop)."""
        if self._state is _State.IDLE and self._pending:
            self._state = _State.BEGINNING
            self._in_thread(self._begin, self._opened)
        elif self._state is _State.OPEN and not self._run_scheduled:
            # Let every task that is ready now add its unit before this batch commits.
            self._run_scheduled = True
            asyncio.get_running_loop().call_soon(self._run_batch)

    def _in_thread(
        self, work: Callable[[], None], then: Callable[[BaseException | None], None]
    ) -> None:
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._thread, work)
        done.add_done_callback(lambda f: then(f.exception()))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path, synchronous=self.synchronous)
        return self._conn

    def _begin(self) -> None:
        self._lock_writers()
        try:
            self._connection().execute("BEGIN IMMEDIATE")  # may wait for another writer
        except BaseException:
            self._unlock_writers()
            raise

    def _lock_writers(self) -> None:
        """Take the writers' lock file: with several processes on one database, a writer
        waits here, woken the moment the other commits (SQLite's own busy handler sleeps
        in steps of up to 100 ms instead)."""
        if self._lock is None:
            self._lock = os.open(f"{self.path}.write.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def _unlock_writers(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def _opened(self, error: BaseException | None) -> None:
        if error is not None:  # the lock could not be had: fail what waits, stay usable
            log.error("could not start a write transaction: %s", error)
            failed, self._pending = self._pending, []
            self._state = _State.IDLE
            self._settle(failed, error)
            return
        self._state = _State.OPEN
        self._advance()

    def _run_batch(self) -> None:
        """Run the pending units (on the loop) in the open transaction, then commit."""
        self._run_scheduled = False
        conn = self._connection()
        items, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        self._batch = items
        self._state = _State.COMMITTING
        try:
            for item in items:
                self._run_unit(conn, item)
        except BaseException as exc:  # the transaction itself broke (disk full, …)
            log.exception("a batch of %d units broke its transaction", len(items))
            broken = exc
            self._in_thread(self._rollback, lambda _e: self._committed(broken))
            return
        self._in_thread(self._commit, self._committed)

    @staticmethod
    def _run_unit(conn: sqlite3.Connection, item: _Item) -> None:
        conn.execute("SAVEPOINT unit")
        try:
            item.value = drive(conn, item.unit, item.notes)
        except Exception as exc:
            conn.execute("ROLLBACK TO unit")
            item.error, item.notes = exc, []
        conn.execute("RELEASE unit")

    def _rollback(self) -> None:
        conn = self._connection()
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self._unlock_writers()

    def _commit(self) -> None:
        started = time.perf_counter()
        conn = self._connection()
        self._begun = False
        try:
            conn.execute("COMMIT")  # fsynced with synchronous=FULL
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self.commit_wall_s += time.perf_counter() - started
            self._unlock_writers()
        if self._pending:  # units queued meanwhile: open their transaction in this same hop
            try:
                self._begin()
                self._begun = True
            except sqlite3.Error:
                log.exception("could not start the next write transaction")

    def _committed(self, error: BaseException | None) -> None:
        batch, self._batch = self._batch, []
        self.batches += 1
        self.units += len(batch)
        self._state = _State.OPEN if self._begun and error is None else _State.IDLE
        self._begun = False
        if error is not None:  # nothing of this batch is durable
            log.error("a batch of %d units failed to commit: %s", len(batch), error)
            for item in batch:
                item.error, item.notes = error, []
        self._settle(batch, None)
        self._advance()

    def _settle(self, batch: list[_Item], error: BaseException | None) -> None:
        """Tell the process what committed, then wake every caller."""
        notes = [n for item in batch if item.error is None and error is None for n in item.notes]
        if notes and self._on_commit is not None:
            try:
                self._on_commit(notes)
            except Exception:  # a listener's bug must not strand the callers
                log.exception("after-commit listener failed")
        for item in batch:
            if item.future.done():  # the caller gave up waiting (cancelled)
                continue
            failure = error or item.error
            if failure is not None:
                item.future.set_exception(failure)
            else:
                item.future.set_result(item.value)

    async def close(self) -> None:
        """Finish what is queued, then close the connections and the thread."""
        self._closed = True  # no new units; those queued still commit
        waiting = [i.future for i in (*self._pending, *self._batch)]
        if waiting:
            await asyncio.wait(waiting)
        log.info("store: %s", {k: round(v, 2) for k, v in self.stats.items()})
        self._thread.shutdown(wait=True)
        for conn in (self._conn, self._reader):
            if conn is not None:
                conn.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        self._conn = self._reader = None
