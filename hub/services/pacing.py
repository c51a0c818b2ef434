"""Send pacing, as pure functions: a SIM's rate over the last 60 s, its daily cap, the
random spacing between its sends, and quiet hours.

The send job (``hub.services.handover``) asks :func:`sim_wait` when a SIM may take a
message and :func:`quiet_until` whether the message is due inside its quiet hours; the
rows they work on are ``hub.services.sims``' business. Nothing here reads the clock or
the database: every function is given ``now``.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The window a SIM's rate is counted over.
RATE_WINDOW_S = 60.0
#: Sends are counted in buckets of this many seconds (a SIM's row holds at most about
#: 61 of them, whatever its rate); a bucket counts until the window after its *end*.
BUCKET_S = 1.0

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# --- a SIM's rate, cap and spacing -------------------------------------------------------


@dataclass(slots=True)
class SimState:
    """What a SIM has sent: parts handed over in the last 60 s (``recent``: epoch seconds
    and parts), the earliest next send (spacing) and the parts of its local ``day``."""

    recent: list[tuple[float, int]] = field(default_factory=list)
    next_at: datetime | None = None
    day: str | None = None
    day_parts: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """A SIM's effective limits: parts a minute and parts a local day (None = no cap)."""

    rate_per_min: int
    daily_cap: int | None
    tz: tzinfo = UTC


def recent_from_json(value: Any) -> list[tuple[float, int]]:
    """The ``recent`` log as stored (a JSON list of pairs)."""
    return [(float(at), int(parts)) for at, parts in (value or [])]


def _in_window(state: SimState, now: datetime) -> list[tuple[float, int]]:
    start = now.timestamp() - RATE_WINDOW_S - BUCKET_S
    return [(at, parts) for at, parts in state.recent if at > start]


def parts_in_window(state: SimState, now: datetime) -> int:
    """Parts the SIM counts against its rate at ``now``."""
    return sum(p for _, p in _in_window(state, now))


def rate_wait(state: SimState, now: datetime, parts: int, limit: int) -> float:
    """Seconds until ``parts`` more fit in the SIM's last 60 s without passing ``limit``
    (0: now). Never too early: a bucket's parts count until 60 s after the bucket's end,
    so no 60 s ever hold more than ``limit`` (capacity frees up to a bucket late). A
    message of more parts than the limit goes once the window is empty."""
    window = sorted(_in_window(state, now))
    used = sum(p for _, p in window)
    if used == 0 or used + parts <= limit:
        return 0.0
    for at, p in window:  # wait until enough of the oldest parts age out
        used -= p
        if used == 0 or used + parts <= limit:
            return max(0.0, at + RATE_WINDOW_S + BUCKET_S - now.timestamp())
    return 0.0  # pragma: no cover - the loop always ends with used == 0


def local_day(now: datetime, tz: tzinfo) -> str:
    """The local date of ``now`` in ``tz``, as YYYY-MM-DD."""
    return now.astimezone(tz).date().isoformat()


def next_local_midnight(now: datetime, tz: tzinfo) -> datetime:
    """The start of the next local day in ``tz``, in UTC."""
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0, 0), tzinfo=tz).astimezone(UTC)


def day_parts(state: SimState, now: datetime, tz: tzinfo) -> int:
    """Parts the SIM sent on today's local day."""
    return state.day_parts if state.day == local_day(now, tz) else 0


def sim_wait(state: SimState, limits: Limits, now: datetime, parts: int) -> datetime | None:
    """When the SIM may take a message of ``parts`` parts: None = now, else the time.

    The daily cap first (a SIM at its cap waits for the next local midnight; a message
    bigger than the whole cap goes on a day the SIM has sent nothing), then the spacing
    after its last send, then the rate over the last 60 s."""
    today = day_parts(state, now, limits.tz)
    if limits.daily_cap is not None and today and today + parts > limits.daily_cap:
        return next_local_midnight(now, limits.tz)
    waits = [rate_wait(state, now, parts, limits.rate_per_min)]
    if state.next_at is not None and state.next_at > now:
        waits.append((state.next_at - now).total_seconds())
    wait = max(waits)
    # Rounded up (epoch floats are not exact): at that time the SIM can send.
    return now + timedelta(microseconds=math.ceil(wait * 1e6) + 1) if wait > 0 else None


def taken(
    state: SimState, limits: Limits, now: datetime, parts: int, spacing_max_s: float
) -> SimState:
    """The SIM's state after handing over ``parts`` at ``now``; the next send waits a
    random 0..``spacing_max_s`` seconds (0 = no spacing)."""
    today = local_day(now, limits.tz)
    gap = random.uniform(0.0, spacing_max_s) if spacing_max_s > 0 else 0.0
    bucket = math.floor(now.timestamp() / BUCKET_S) * BUCKET_S
    recent = _in_window(state, now)
    if recent and recent[-1][0] == bucket:
        recent[-1] = (bucket, recent[-1][1] + parts)
    else:
        recent.append((bucket, parts))
    return SimState(
        recent=recent,
        next_at=now + timedelta(seconds=gap) if gap else None,
        day=today,
        day_parts=day_parts(state, now, limits.tz) + parts,
    )


# --- quiet hours -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in local time when nothing is sent; ``start`` > ``end`` crosses
    midnight (21:00-08:00)."""

    start: time
    end: time

    def as_json(self) -> dict[str, str]:
        """The stored / API form, ``{"start": "21:00", "end": "08:00"}``."""
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}


def parse_quiet_hours(value: Any) -> QuietHours | None:
    """Quiet hours from their JSON form (None stays None); ValueError says what is wrong."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise ValueError('quiet_hours must be {"start": "HH:MM", "end": "HH:MM"}')
    parsed = []
    for key in ("start", "end"):
        found = _HHMM.match(str(value[key]))
        if found is None:
            raise ValueError(f"quiet_hours.{key} must be a time as HH:MM (24 h), e.g. 21:00")
        parsed.append(time(int(found[1]), int(found[2])))
    if parsed[0] == parsed[1]:
        raise ValueError("quiet_hours.start and quiet_hours.end must differ")
    return QuietHours(parsed[0], parsed[1])


def zone(name: str | None) -> tzinfo | None:
    """The timezone of an IANA name, or None when empty or unknown."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def check_zone(name: str) -> str:
    """``name`` when it is an IANA timezone; ValueError otherwise."""
    if zone(name) is None:
        raise ValueError(f"unknown timezone {name!r} (an IANA name such as Europe/Paris)")
    return name


def quiet_until(quiet: QuietHours | None, now: datetime, tz: tzinfo) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (UTC), or None when sending is allowed."""
    if quiet is None:
        return None
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside = quiet.start <= clock < quiet.end
        end_day = local.date()
    else:  # crosses midnight: 21:00-08:00
        inside = clock >= quiet.start or clock < quiet.end
        end_day = local.date() + timedelta(days=1) if clock >= quiet.start else local.date()
    if not inside:
        return None
    return _at_local(end_day, quiet.end, tz)


def _at_local(day: date, at: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
