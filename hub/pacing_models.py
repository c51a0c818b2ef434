"""Tables of send pacing (issue 11, part B): a SIM's own limits and counters.

Apart from ``hub.models`` (which imports it, so ``metadata`` holds the table) to keep that
module short."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from hub.columns import json_field, ts_field


class SimPacing(SQLModel, table=True):
    """One SIM of a device: its own rate and daily cap, and the counters the send job
    keeps (hub.services.sims)."""

    __tablename__ = "sim_pacing"

    device_id: str = Field(foreign_key="devices.id", primary_key=True, max_length=40)
    #: 0-based SIM slot (a phone whose SIMs are unknown counts as slot 0).
    slot: int = Field(primary_key=True)
    #: SMS parts a minute; None = the device's, else SMSHUB_DEVICE_RATE_LIMIT_PER_MIN.
    rate_per_min: int | None = Field(default=None)
    #: SMS parts a local day (the channel's timezone); None = no cap.
    daily_cap: int | None = Field(default=None)
    #: ``[[epoch seconds, parts], ...]`` handed over in the last 60 s.
    recent: list[Any] = json_field(list)
    #: Not before this time (the random spacing after the last send).
    next_at: datetime | None = ts_field(nullable=True)
    #: The local day ``day_parts`` counts (YYYY-MM-DD).
    day: str | None = Field(default=None, max_length=10)
    day_parts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
