"""trigger.schedule: start a run at the ticks of a cron expression or of an interval.

The ticks are computed here (pure functions of the config and a time), so the hub's tick
jobs and :mod:`flows.testing` agree on them. The hub fires one tick per job
(``hub.services.flow_schedules``); the rule for ticks missed while nothing ran is
:func:`due_tick`: only the latest missed tick fires, and only while it is at most
:data:`MISSED_TICK_GRACE` old (the hub's ``SMSHUB_SCHEDULE_MISSED_GRACE_S``) — never a backlog.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flows.nodes._common import event_data
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec

__all__ = [
    "MISSED_TICK_GRACE",
    "SCHEDULE_EVENT",
    "Config",
    "Every",
    "due_tick",
    "is_tick",
    "iso_tick",
    "latest_tick",
    "next_tick",
    "schedule_event",
]

#: The ``type`` of the event a tick starts a run with (``trigger.type``).
SCHEDULE_EVENT = "schedule.tick"
#: A tick later than this (the hub was down, the queue was behind) is skipped, not fired.
MISSED_TICK_GRACE = timedelta(minutes=5)
#: Longest interval: a year.
_MAX_MINUTES = 366 * 24 * 60
#: Wall-clock ticks of an interval are counted from this local time.
_EPOCH = datetime(1970, 1, 1)


class Every(BaseModel):
    """An interval: exactly one of minutes, hours or days."""

    model_config = ConfigDict(extra="forbid")

    minutes: int | None = Field(None, ge=1, le=_MAX_MINUTES, description="Every N minutes.")
    hours: int | None = Field(None, ge=1, le=_MAX_MINUTES // 60, description="Every N hours.")
    days: int | None = Field(None, ge=1, le=366, description="Every N days (at midnight).")

    @model_validator(mode="after")
    def _one_unit(self) -> Every:
        given = [v for v in (self.minutes, self.hours, self.days) if v is not None]
        if len(given) != 1:
            raise ValueError("every takes exactly one of minutes, hours or days")
        return self

    @property
    def period(self) -> timedelta:
        """The interval as a duration."""
        return timedelta(minutes=self.minutes or 0, hours=self.hours or 0, days=self.days or 0)


class Config(NodeConfig):
    cron: str | None = Field(
        None,
        description="A 5-field cron expression (minute hour day month weekday), e.g. "
        "`0 9 * * 1` for Mondays at 9:00, in the timezone below.",
    )
    every: Every | None = Field(
        None,
        description='Or an interval: `{"minutes": 15}`, `{"hours": 2}` or `{"days": 1}`, '
        "counted from local midnight.",
    )
    timezone: str = Field("UTC", description="IANA time zone of the schedule (Europe/Paris).")
    group_id: str | None = Field(
        None,
        description="Run once per member of this group (paced like a broadcast); empty = "
        "one run without a contact.",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = " ".join(value.split())
        if len(text.split(" ")) != 5 or not croniter.is_valid(text):
            raise ValueError(f"not a 5-field cron expression: {value!r}")
        return text

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name: Europe/Paris)") from None
        return value

    @field_validator("group_id")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None

    @model_validator(mode="after")
    def _cron_or_every(self) -> Config:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of cron or every")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)


def next_tick(config: Config, after: datetime) -> datetime:
    """The first tick strictly after ``after`` (UTC)."""
    local = after.astimezone(config.zone)
    if config.cron is not None:
        found: datetime = croniter(config.cron, local).get_next(datetime)
        return found.astimezone(UTC)
    assert config.every is not None
    return _interval_tick(config, local, forward=True)


def latest_tick(config: Config, at: datetime) -> datetime:
    """The last tick at or before ``at`` (UTC)."""
    local = at.astimezone(config.zone)
    if config.cron is not None:
        minute = local.replace(second=0, microsecond=0)
        if croniter.match(config.cron, minute):
            return minute.astimezone(UTC)
        found: datetime = croniter(config.cron, minute).get_prev(datetime)
        return found.astimezone(UTC)
    return _interval_tick(config, local, forward=False)


def is_tick(config: Config, at: datetime) -> bool:
    """Whether ``at`` is one of the schedule's ticks (a stale tick job's is not)."""
    return latest_tick(config, at) == at.astimezone(UTC)


def due_tick(
    config: Config, now: datetime, grace: timedelta = MISSED_TICK_GRACE
) -> datetime | None:
    """The tick to fire at ``now``: the latest one, unless it is more than ``grace`` old
    (then None: it is skipped, and so is every earlier one)."""
    latest = latest_tick(config, now)
    return latest if now - latest <= grace else None


def _interval_tick(config: Config, local: datetime, *, forward: bool) -> datetime:
    """Interval ticks are the instants whose local wall-clock time is a whole number of
    periods after 1970-01-01 00:00 (so ``days: 1`` is local midnight, through DST)."""
    assert config.every is not None
    period = config.every.period
    wall = local.replace(tzinfo=None)
    count = (wall - _EPOCH) // period
    target = local.astimezone(UTC)
    step = 1 if forward else -1
    # A DST gap removes wall-clock times (at most a few hours of candidates).
    for offset in range(0, 24 * 60 + 2):
        candidate = _EPOCH + (count + step * offset) * period
        instants = sorted(
            {
                at.astimezone(UTC)
                for fold in (0, 1)
                if _exists(at := candidate.replace(tzinfo=config.zone, fold=fold))
            },
            reverse=not forward,
        )
        for instant in instants:
            if (instant > target) if forward else (instant <= target):
                return instant
    raise ValueError("no tick found")  # pragma: no cover - periods are at least a minute


def _exists(at: datetime) -> bool:
    """Whether a local time exists (is not in a DST gap)."""
    return at.astimezone(UTC).astimezone(at.tzinfo).replace(tzinfo=None) == at.replace(tzinfo=None)


def iso_tick(at: datetime) -> str:
    """A tick as the hub writes it in job keys and ``scheduled_at`` (UTC, seconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_event(
    *,
    flow_id: str,
    node_id: str,
    tick: datetime,
    fired_at: datetime,
    group_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The trigger of a run a tick starts (``trigger.data.scheduled_at`` …)."""
    scheduled = iso_tick(tick)
    data: dict[str, Any] = {
        "scheduled_at": scheduled,
        "fired_at": fired_at.astimezone(UTC).isoformat(),
        "flow_id": flow_id,
        "node_id": node_id,
        "group_id": group_id,
        **(extra or {}),
    }
    return {
        "id": f"schedule:{flow_id}:{node_id}:{scheduled}",
        "type": SCHEDULE_EVENT,
        "timestamp": data["fired_at"],
        "data": data,
    }


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Output the tick (``scheduled_at``, ``fired_at``, ``group_id``…)."""
    return NodeResult(output=dict(event_data(ctx.trigger)))


SPEC = NodeSpec(
    type="trigger.schedule",
    title="On a schedule",
    description="Starts the flow at the times of a cron expression or an interval, once, "
    "or once for each member of a group.",
    category="trigger",
    config_model=Config,
    handler=handle,
    can_fail=False,
    id_prefix="schedule",
    outputs=("scheduled_at", "fired_at", "group_id"),
)
