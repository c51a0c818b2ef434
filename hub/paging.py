"""Keyset paging, newest first, for every list the API and the UI show.

A page is one query: rows whose sort key is below the cursor, newest first, one row more
than asked so the answer knows whether another page follows. The cursor handed out is
the last row's sort key, encoded; it is only ever compared, never trusted otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.sql import Select

from hub.columns import as_utc
from hub.db import Database
from hub.errors import Unprocessable

R = TypeVar("R")


def parse_time(cursor: str) -> datetime:
    """A time cursor (``datetime.isoformat``) as aware UTC; ValueError or OverflowError if bad."""
    # Normalised here, not at bind time: a value near year 1 or 9999 whose offset pushes it
    # out of range must be a bad cursor, not a failed query.
    return as_utc(datetime.fromisoformat(cursor))


async def keyset_page(
    db: Database,
    stmt: Select[R],
    *,
    key: Any,
    limit: int,
    cursor: str | None,
    parse: Callable[[str], Any] = str,
    encode: Callable[[Any], str] = str,
    then_by: Sequence[Any] = (),
) -> tuple[list[R], str | None]:
    """One page of ``stmt`` newest first by the column ``key``, and the next page's cursor.

    ``parse`` turns a cursor into a value of ``key`` (ValueError / OverflowError: a 422
    ``bad_cursor``), ``encode`` a row's ``key`` value into a cursor; ``then_by`` columns
    order rows that share a key.
    """
    if cursor:
        try:
            after = parse(cursor)
        except (ValueError, OverflowError) as exc:
            raise Unprocessable(
                "cursor is not a value this API gave out", code="bad_cursor"
            ) from exc
        stmt = stmt.where(key < after)
    stmt = stmt.order_by(key.desc(), *(column.desc() for column in then_by)).limit(limit + 1)
    async with db.read() as session:
        rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode(getattr(rows[-1], key.key)) if more and rows else None)
