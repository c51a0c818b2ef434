"""When a campaign event fires for a contact: pure functions over the contact's date field.

* The field holds an ISO 8601 date (``2026-12-20``) or date and time (``2026-12-20T14:30``,
  ``2026-12-20 14:30``, with or without an offset such as ``+01:00`` or ``Z``). A date alone
  is midnight, a time without an offset is local time, both in the contact's time zone
  (else the campaign channel's, else UTC).
* The offset is wall-clock arithmetic in that zone (``days: -2`` is the same local time two
  calendar days earlier, across a daylight-saving change too); with ``at_time`` the event
  fires at that local time on the day the offset lands on.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

#: The most of each offset unit an event may name (about ten years either way).
OFFSET_LIMITS = {"days": 3650, "hours": 3650 * 24, "minutes": 3650 * 24 * 60}
_MINUTES = {"days": 24 * 60, "hours": 60, "minutes": 1}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class NoDate(ValueError):
    """The contact has no usable date in the field; ``reason`` is no_date or bad_date."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def offset_problem(offset: dict[str, Any]) -> str | None:
    """Why an event's offset is not usable, or None (days, hours, minutes: ints, combined)."""
    if not offset:
        return "offset needs days, hours or minutes"
    for unit, value in offset.items():
        if unit not in OFFSET_LIMITS:
            return f"unknown offset unit {unit!r} (days, hours or minutes)"
        if isinstance(value, bool) or not isinstance(value, int):
            return f"offset.{unit} must be a whole number"
        if abs(value) > OFFSET_LIMITS[unit]:
            return f"offset.{unit} must be between -{OFFSET_LIMITS[unit]} and {OFFSET_LIMITS[unit]}"
    return None


def offset_minutes(offset: dict[str, int]) -> int:
    """The offset in minutes (checked by :func:`offset_problem` first)."""
    return sum(_MINUTES[unit] * value for unit, value in offset.items())


def at_time_problem(value: str) -> str | None:
    """Why ``at_time`` is not HH:MM (24 h), or None."""
    return None if _HHMM.match(value) else "at_time must be HH:MM (24 h), e.g. 10:00"


def parse_field_date(raw: Any) -> date | datetime:
    """The date or datetime a contact field holds; :class:`NoDate` when there is none."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise NoDate("no_date")
    text = str(raw).strip()
    try:
        if _DATE_ONLY.match(text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise NoDate("bad_date") from exc


def fire_time(raw: Any, minutes: int, at_time: str | None, tz: tzinfo) -> datetime:
    """When an event fires (aware UTC) for a field value, an offset and ``at_time``;
    :class:`NoDate` when the field holds no usable date."""
    value = parse_field_date(raw)
    if isinstance(value, datetime):
        local = value.astimezone(tz).replace(tzinfo=None) if value.tzinfo else value
    else:
        local = datetime.combine(value, time(0, 0))
    try:
        local += timedelta(minutes=minutes)
        if at_time:
            hour, minute = (int(part) for part in at_time.split(":"))
            local = datetime.combine(local.date(), time(hour, minute))
        return local.replace(tzinfo=tz).astimezone(UTC)
    except OverflowError as exc:  # a date near year 1 or 9999
        raise NoDate("bad_date") from exc
