"""Tables of campaigns (issue 12, part 1): a campaign on a group, its events relative to a
contact date field, and one fire row per event and member.

Apart from ``hub.models`` (which imports it, so ``metadata`` holds the tables) to keep that
module short."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.columns import json_field, ts_field


class Campaign(SQLModel, table=True):
    """Events timed relative to a date field of every member of one group."""

    __tablename__ = "campaigns"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    #: The group whose members get the events (joining schedules, leaving cancels).
    group_id: str = Field(max_length=40, index=True)
    #: The channel the texts go out on, and whose time zone contacts without one use.
    channel_id: str | None = Field(default=None, max_length=40)
    #: active / paused / ended
    status: str = Field(default="active", max_length=16, index=True)
    ended_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class CampaignEvent(SQLModel, table=True):
    """One event of a campaign: ``field`` + ``offset`` (at ``at_time`` local), a text or a flow."""

    __tablename__ = "campaign_events"

    id: str = Field(primary_key=True, max_length=40)
    campaign_id: str = Field(foreign_key="campaigns.id", max_length=40, index=True)
    #: Its place in the campaign's list of events.
    position: int = Field(default=0)
    #: The contact field holding the date (``contact.fields[field]``).
    field: str = Field(max_length=100)
    #: The offset as given, ``{"days": -2}`` (days, hours and minutes may be combined).
    offset_parts: dict[str, Any] = json_field(dict)
    #: The same offset in minutes (negative: before the date).
    offset_minutes: int = Field(default=0)
    #: "HH:MM": fire at this local time on the day the offset lands on.
    at_time: str | None = Field(default=None, max_length=5)
    text: str | None = Field(default=None)
    flow_id: str | None = Field(default=None, max_length=40)
    #: Set when an edit of the campaign removed the event (its fires are cancelled).
    deleted_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class CampaignFire(SQLModel, table=True):
    """One event for one contact: when it fires and what became of it."""

    __tablename__ = "campaign_fires"
    __table_args__ = (
        sa.Index("ix_campaign_fires_event_contact", "event_id", "contact_id", unique=True),
        sa.Index("ix_campaign_fires_campaign", "campaign_id", "status"),
        sa.Index("ix_campaign_fires_contact", "contact_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    campaign_id: str = Field(foreign_key="campaigns.id", max_length=40)
    event_id: str = Field(foreign_key="campaign_events.id", max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", max_length=40)
    #: When it fires (None: the contact's field is missing or not a date).
    fire_at: datetime | None = ts_field(nullable=True)
    #: scheduled / fired / skipped / cancelled
    status: str = Field(max_length=16)
    #: Why it was skipped or cancelled: past, no_date, bad_date, left_group, opted_out, …
    reason: str | None = Field(default=None, max_length=300)
    message_id: str | None = Field(default=None, max_length=40)
    run_id: str | None = Field(default=None, max_length=80)
    fired_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
