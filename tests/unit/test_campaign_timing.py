"""When a campaign event fires: field values, offsets, at_time, time zones, DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.services.campaign_timing import (
    NoDate,
    at_time_problem,
    fire_time,
    offset_minutes,
    offset_problem,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("raw", "offset", "at_time", "tz", "expected"),
    [
        # A date alone is local midnight; at_time sets the local time on the resulting day.
        ("2030-01-20", {"days": -2}, "10:00", PARIS, datetime(2030, 1, 18, 9, 0, tzinfo=UTC)),
        ("2030-01-20", {"days": 0}, None, PARIS, datetime(2030, 1, 19, 23, 0, tzinfo=UTC)),
        # A local date and time, offsets combined (they add up).
        (
            "2030-01-20T14:30",
            {"days": -1, "hours": 2, "minutes": -30},
            None,
            PARIS,
            datetime(2030, 1, 19, 15, 0, tzinfo=UTC),
        ),
        # With an offset of its own the value is that instant, then local for at_time.
        ("2030-01-20T23:30Z", {"days": 1}, "08:00", PARIS, datetime(2030, 1, 22, 7, 0, tzinfo=UTC)),
        # Across the spring DST change: the same local time two days later (EDT, UTC-4).
        ("2030-03-09 10:00", {"days": 2}, None, NEW_YORK, datetime(2030, 3, 11, 14, 0, tzinfo=UTC)),
        # Hours crossing midnight land on the next day before at_time applies.
        ("2030-01-20T22:00", {"hours": 3}, "09:00", PARIS, datetime(2030, 1, 21, 8, 0, tzinfo=UTC)),
    ],
)
def test_fire_time(
    raw: str, offset: dict[str, int], at_time: str | None, tz: ZoneInfo, expected: datetime
) -> None:
    assert fire_time(raw, offset_minutes(offset), at_time, tz) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "no_date"),  # field missing
        ("  ", "no_date"),  # field empty
        ("next week", "bad_date"),
        ("2030-02-30", "bad_date"),  # no such day
        ("9999-12-31", "bad_date"),  # plus a day: past year 9999
    ],
)
def test_no_usable_date(raw: Any, reason: str) -> None:
    with pytest.raises(NoDate) as found:
        fire_time(raw, 24 * 60, None, UTC)
    assert found.value.reason == reason


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        ({"days": -2}, True),
        ({"days": 0}, True),  # on the date itself
        ({"hours": 1, "minutes": 30}, True),
        ({}, False),  # no unit
        ({"weeks": 1}, False),  # unknown unit
        ({"days": 1.5}, False),  # not whole
        ({"days": True}, False),  # a bool is not a number of days
        ({"days": 4000}, False),  # beyond ten years
    ],
)
def test_offset_checks(offset: dict[str, Any], ok: bool) -> None:
    assert (offset_problem(offset) is None) is ok


def test_at_time_is_hh_mm_24h() -> None:
    assert at_time_problem("00:00") is None and at_time_problem("23:59") is None
    assert at_time_problem("24:00") and at_time_problem("9:00") and at_time_problem("10:00:00")
