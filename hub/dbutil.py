"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel


async def insert_ignore(
    session: AsyncSession,
    model: type[SQLModel],
    values: dict[str, Any],
    *,
    conflict: list[str] | None = None,
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was written."""
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=conflict) if conflict else stmt
    result = await session.execute(stmt.returning(table.c[next(iter(table.primary_key)).name]))
    return result.first() is not None
