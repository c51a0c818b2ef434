"""How the SQLite store binds timestamps: SQLAlchemy's text, whatever the zone, and the
last value's text reused only for that very value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hub.store.sqlite import sqlite_timestamp


def test_every_zone_is_stored_as_naive_utc_text() -> None:
    at = datetime(2026, 12, 1, 9, 30, 0, 5, tzinfo=UTC)
    assert sqlite_timestamp(at) == "2026-12-01 09:30:00.000005"
    assert sqlite_timestamp(at.replace(tzinfo=None)) == "2026-12-01 09:30:00.000005"
    assert sqlite_timestamp(at.astimezone(timezone(timedelta(hours=-5)))) == (
        "2026-12-01 09:30:00.000005"
    )
    assert sqlite_timestamp(at.astimezone(ZoneInfo("Europe/Berlin"))) == (
        "2026-12-01 09:30:00.000005"
    )


def test_alternating_values_each_get_their_own_text() -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    second = first + timedelta(microseconds=1)
    texts = [sqlite_timestamp(v) for v in (first, first, second, first, second, second)]
    assert texts == [
        "2026-01-01 00:00:00.000000",
        "2026-01-01 00:00:00.000000",
        "2026-01-01 00:00:00.000001",
        "2026-01-01 00:00:00.000000",
        "2026-01-01 00:00:00.000001",
        "2026-01-01 00:00:00.000001",
    ]
