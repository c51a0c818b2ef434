"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

#: ``insert()`` of one dialect; both kinds have ``on_conflict_do_*`` and ``excluded``.
DialectInsert = Callable[[Any], postgresql.Insert | sqlite.Insert]


def dialect_insert(session_or_dialect: AsyncSession | str) -> DialectInsert:
    """The ``insert`` with ON CONFLICT support for a session's dialect (or a dialect name)."""
    if isinstance(session_or_dialect, str):
        dialect = session_or_dialect
    else:
        bind = session_or_dialect.bind
        dialect = bind.dialect.name if bind else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def insert_ignore(
    session: AsyncSession,
    model: type[SQLModel],
    values: dict[str, Any],
    *,
    conflict: list[str] | None = None,
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was written."""
    table = model.__table__  # type: ignore[attr-defined]
    stmt = dialect_insert(session)(table).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=conflict) if conflict else stmt
    result = await session.execute(stmt.returning(table.c[next(iter(table.primary_key)).name]))
    return result.first() is not None
