"""The hot path's storage: units of work group-committed by one batching writer.

``hub.store.units`` is the contract (a unit yields statements and gets their results),
``hub.store.sqlite`` runs units on plain ``sqlite3`` connections in dedicated threads,
``hub.store.postgres`` on asyncpg, ``hub.store.testing`` wraps either to count batches
and inject faults in tests. :func:`open_store` picks the engine from the database URL.
The ORM (``hub.db``) keeps the schema, the migrations and the cold paths.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from hub.store.postgres import PostgresStore
from hub.store.sqlite import SqliteStore
from hub.store.units import (
    Exec,
    IntegrityError,
    Json,
    Note,
    Result,
    Unit,
    as_datetime,
    as_json,
    execute,
    fetch_all,
    fetch_one,
    fetch_value,
    insert_rows,
    note,
    placeholders,
)

__all__ = [
    "Exec",
    "IntegrityError",
    "Json",
    "Note",
    "PostgresStore",
    "Result",
    "SqliteStore",
    "Unit",
    "as_datetime",
    "as_json",
    "execute",
    "fetch_all",
    "fetch_one",
    "fetch_value",
    "insert_rows",
    "note",
    "open_store",
    "placeholders",
]


def open_store(
    database_url: str, *, sqlite_synchronous: str = "FULL"
) -> SqliteStore | PostgresStore:
    """The store for the hub's database URL (the same database the ORM uses)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("the store needs an SQLite file, not an in-memory database")
        return SqliteStore(url.database, synchronous=sqlite_synchronous)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresStore(dsn)
