"""The batching store on SQLite and PostgreSQL: units, savepoints, notes, the ORM's formats."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.db import Database
from hub.models import Contact
from hub.store import (
    Exec,
    IntegrityError,
    Json,
    Note,
    PostgresStore,
    SqliteStore,
    Unit,
    as_datetime,
    as_json,
    fetch_all,
    fetch_one,
    insert_rows,
    note,
    open_store,
)

AT = datetime(2026, 11, 26, 12, 30, 15, 123456, tzinfo=UTC)
COLUMNS = ("id", "phone", "name", "opted_out", "tags", "fields", "created_at", "updated_at")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqliteStore | PostgresStore]:
    opened = open_store(database_url)
    yield opened
    await opened.close()


@pytest.fixture
async def orm(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


def contact_row(n: int, **values: Any) -> tuple[Any, ...]:
    row = {
        "id": f"ct_{n:04d}",
        "phone": f"+1555000{n:04d}",
        "name": "",
        "opted_out": False,
        "tags": Json(["vip", "ünïcode"]),
        "fields": Json({"plan": "news"}),
        "created_at": AT,
        "updated_at": AT,
        **values,
    }
    return tuple(row[c] for c in COLUMNS)


def add_contact(n: int, *, fail_after: bool = False, **values: Any) -> Unit[str]:
    yield from insert_rows("contacts", COLUMNS, [contact_row(n, **values)])
    yield from note("contact", n)
    if fail_after:
        raise ValueError(f"unit {n} changed its mind")
    return f"ct_{n:04d}"


async def test_what_a_unit_writes_the_orm_reads_and_the_other_way(
    store: SqliteStore | PostgresStore, orm: Database
) -> None:
    assert await store.write(add_contact(1, opted_out=True)) == "ct_0001"
    async with orm.read() as session:
        contact = await session.get(Contact, "ct_0001")
    assert contact is not None
    assert (contact.opted_out, contact.tags, contact.fields) == (
        True,
        ["vip", "ünïcode"],
        {"plan": "news"},
    )
    assert contact.created_at == AT and contact.created_at.tzinfo is not None

    async with orm.write() as session:
        session.add(
            Contact(id="ct_orm", phone="+15559990000", tags=["a"], created_at=AT, updated_at=AT)
        )
    row = await store.read(
        fetch_one("SELECT tags, created_at, opted_out FROM contacts WHERE id = ?", ("ct_orm",))
    )
    assert row is not None
    assert (as_json(row[0]), as_datetime(row[1]), bool(row[2])) == (["a"], AT, False)
    # Timestamps compare in SQL the way the ORM's do (the same stored format).
    later = await store.read(
        fetch_all("SELECT id FROM contacts WHERE created_at >= ? ORDER BY id", (AT,))
    )
    assert [r[0] for r in later] == ["ct_0001", "ct_orm"]


async def test_a_failing_unit_is_undone_alone_and_only_committed_notes_arrive(
    store: SqliteStore | PostgresStore,
) -> None:
    heard: list[Any] = []
    store.on_commit(lambda notes: heard.extend(n.value for n in notes))
    results = await asyncio.gather(
        *(store.write(add_contact(n, fail_after=(n == 7))) for n in range(20)),
        return_exceptions=True,
    )
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [
        f"ct_{n:04d}" for n in range(20) if n != 7
    ]
    stored = await store.read(fetch_all("SELECT id FROM contacts ORDER BY id"))
    assert [r[0] for r in stored] == [f"ct_{n:04d}" for n in range(20) if n != 7]
    assert sorted(heard) == [n for n in range(20) if n != 7]
    # Concurrent units share transactions (the point of the writer).
    assert store.stats["batches"] < store.stats["units"]


async def test_a_constraint_violation_reaches_the_caller_as_integrity_error(
    store: SqliteStore | PostgresStore,
) -> None:
    await store.write(add_contact(1))
    with pytest.raises(IntegrityError):
        await store.write(add_contact(1))
    # ON CONFLICT is how a unit tolerates a repeat.
    again = await store.write(
        insert_rows(
            "contacts",
            COLUMNS,
            [contact_row(1)],
            conflict="ON CONFLICT (id) DO NOTHING",
            returning="id",
        )
    )
    assert again == []


async def test_many_rows_and_executemany(store: SqliteStore | PostgresStore) -> None:
    ids = await store.write(
        insert_rows("contacts", COLUMNS, [contact_row(n) for n in range(5000)], returning="id")
    )
    assert len(ids) == 5000

    def rename() -> Unit[int]:
        yield Exec(
            "UPDATE contacts SET name = ? WHERE id = ?",
            many=[("x", f"ct_{n:04d}") for n in range(10)],
        )
        found = yield from fetch_all("SELECT count(*) FROM contacts WHERE name = ?", ("x",))
        return int(found[0][0])

    assert await store.write(rename()) == 10


async def test_sqlite_commits_are_fsynced_by_default(tmp_path: Path, sqlite_template: Path) -> None:
    shutil.copy(sqlite_template, tmp_path / "hub.db")
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    store = open_store(database_url)
    try:
        level = await store.write(fetch_one("PRAGMA synchronous"))
        assert level == (2,)  # FULL
    finally:
        await store.close()
    relaxed = open_store(database_url, sqlite_synchronous="NORMAL")
    try:
        assert await relaxed.write(fetch_one("PRAGMA synchronous")) == (1,)
    finally:
        await relaxed.close()


def test_notes_are_values() -> None:
    assert Note("job", 1) == Note("job", 1)


async def test_a_unit_written_to_a_postgres_store_is_visible_to_another_connection(
    store: SqliteStore | PostgresStore, orm: Database
) -> None:
    await store.write(add_contact(3))
    async with orm.read() as session:
        count = (await session.execute(sa.select(sa.func.count()).select_from(Contact))).scalar()
    assert count == 1
