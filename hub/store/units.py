"""Units of work: what the batching writer runs, written once for SQLite and PostgreSQL.

A unit is a generator: it yields statements (:class:`Exec`) and is sent each one's
:class:`Result`, so the same code runs on a plain ``sqlite3`` connection in the writer's
thread and on an asyncpg connection on the event loop. Its return value is what the
caller of ``Store.write`` / ``Store.read`` gets::

    def mark_seen(device_id: str, at: datetime) -> Unit[bool]:
        result = yield Exec("UPDATE devices SET last_seen_at = ? WHERE id = ?", (at, device_id))
        return result.rowcount == 1

SQL uses ``?`` placeholders (turned into ``$1…`` for PostgreSQL) and only what both
databases understand (``INSERT … ON CONFLICT … DO NOTHING / DO UPDATE``, ``RETURNING``).
Parameters are plain Python values — ``str``, ``int``, ``float``, ``bool``, ``None``,
aware ``datetime`` and :class:`Json` — and each driver stores them the way SQLAlchemy does
for the same tables, so the ORM reads what a unit wrote. Values read back come as the
database gives them: decode timestamps with :func:`as_datetime`, JSON with
:func:`as_json`, booleans with ``bool()``.

A unit also yields :class:`Note` to tell the process about its effects after commit
(``Note("job", …)``: a job row the in-process workers may take at once). A unit runs
inside a savepoint: if it raises, its statements are undone and its notes dropped, and
the exception reaches its caller alone; its batch-mates commit.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

__all__ = [
    "Exec",
    "IntegrityError",
    "Json",
    "Note",
    "Result",
    "Unit",
    "as_datetime",
    "as_json",
    "execute",
    "fetch_all",
    "fetch_one",
    "fetch_value",
    "insert_rows",
    "note",
    "placeholders",
]

T = TypeVar("T")


# Not frozen: a frozen dataclass's __init__ goes through object.__setattr__, three times
# slower, and one Exec is made per statement. Treat them as values all the same.
@dataclass(slots=True)
class Exec:
    """One statement: ``params`` for one execution, or ``many`` rows for executemany."""

    sql: str
    params: Sequence[Any] = ()
    #: Rows of parameters: the statement runs once per row (no rows are returned).
    many: Sequence[Sequence[Any]] | None = None


@dataclass(slots=True)
class Note:
    """Something the process learns after the unit's transaction commits."""

    kind: str
    value: Any


@dataclass(slots=True)
class Result:
    """What a statement gave back: its rows (for SELECT and RETURNING) and row count."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int = 0


@dataclass(slots=True)
class Json:
    """A parameter stored in a JSON column."""

    value: Any


class IntegrityError(Exception):
    """A constraint refused the statement (unique, foreign key, not null), on either
    database. A unit may catch it to return or raise something else, but must not run
    more statements after it (PostgreSQL has aborted the unit's savepoint by then): to
    tolerate a duplicate, write ``ON CONFLICT … DO NOTHING`` instead."""


Op = Exec | Note
#: A unit of work returning T (see the module docstring).
Unit = Generator[Op, Any, T]


def execute(sql: str, params: Sequence[Any] = ()) -> Unit[Result]:
    """Run one statement; its Result."""
    result: Result = yield Exec(sql, params)
    return result


def fetch_all(sql: str, params: Sequence[Any] = ()) -> Unit[list[tuple[Any, ...]]]:
    """Every row of a query."""
    result: Result = yield Exec(sql, params)
    return result.rows


def fetch_one(sql: str, params: Sequence[Any] = ()) -> Unit[tuple[Any, ...] | None]:
    """The first row of a query, or None."""
    result: Result = yield Exec(sql, params)
    return result.rows[0] if result.rows else None


def fetch_value(sql: str, params: Sequence[Any] = ()) -> Unit[Any]:
    """The first column of the first row, or None."""
    result: Result = yield Exec(sql, params)
    return result.rows[0][0] if result.rows else None


def note(kind: str, value: Any) -> Unit[None]:
    """Tell the process ``value`` once this unit's transaction has committed."""
    yield Note(kind, value)


#: Most parameters one statement takes (SQLite allows 32,766; PostgreSQL 32,767).
MAX_PARAMS = 30_000


def placeholders(count: int) -> str:
    """``?, ?, ?`` for ``count`` values."""
    return ", ".join("?" * count)


def insert_rows(
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    conflict: str = "",
    returning: str = "",
) -> Unit[list[tuple[Any, ...]]]:
    """A multi-row INSERT (chunked under the parameter limit); the RETURNING rows.

    ``conflict`` is the ``ON CONFLICT …`` clause, ``returning`` the column list to return."""
    values = list(rows)
    if not values:
        return []
    per_chunk = max(1, MAX_PARAMS // len(columns))
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(values), per_chunk):
        chunk = values[start : start + per_chunk]
        sql = _insert_sql(table, tuple(columns), len(chunk), conflict, returning)
        params = [value for row in chunk for value in row]
        result: Result = yield Exec(sql, params)
        found.extend(result.rows)
    return found


@functools.lru_cache(maxsize=1024)
def _insert_sql(
    table: str, columns: tuple[str, ...], rows: int, conflict: str, returning: str
) -> str:
    """The text of a multi-row INSERT (kept: the same few shapes come back all the time)."""
    one = f"({placeholders(len(columns))})"
    tail = (f" {conflict}" if conflict else "") + (f" RETURNING {returning}" if returning else "")
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * rows) + tail


def as_datetime(value: Any) -> datetime | None:
    """A timestamp as read from either database, aware UTC (None stays None)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


# msgspec (Litestar's own JSON library) is about ten times faster than the json module
# here, and the hot path writes a JSON document or two per statement.
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


def as_json(value: Any) -> Any:
    """A JSON column as read from either database, decoded."""
    if isinstance(value, str | bytes):
        return _DECODER.decode(value)
    return value


def dumps(value: Any) -> str:
    """JSON text as the hub stores it (compact, UTF-8 kept)."""
    return _ENCODER.encode(value).decode()
