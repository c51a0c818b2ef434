"""Tables of broadcasts (issue 11, part C): a broadcast and its resolved recipients.

Apart from ``hub.models`` (which imports it, so ``metadata`` holds the tables) to keep that
module short."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.columns import json_field, ts_field


class Broadcast(SQLModel, table=True):
    """One message (a template over the contact) or one flow sent to a list of contacts."""

    __tablename__ = "broadcasts"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    #: The SMS template (Jinja over ``contact``); None for a flow broadcast.
    text: str | None = Field(default=None)
    #: The published flow started for each recipient; None for a text broadcast.
    flow_id: str | None = Field(default=None, max_length=40)
    #: The flow version the runs are pinned to (the published one when it started).
    flow_version: int | None = Field(default=None)
    #: The channel the messages go out on (chosen at creation when not given).
    channel_id: str | None = Field(default=None, max_length=40)
    group_ids: list[str] = json_field(list)
    contact_ids: list[str] = json_field(list)
    #: When the recipients are resolved and sending starts.
    send_at: datetime = ts_field()
    #: The quiet-hours window handed to every message (``{"start", "end"}``, "HH:MM").
    quiet_hours: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    #: Set when a flow's ``flow.start`` node made the broadcast: the parent run
    #: (``parent_run_id``, ``parent_flow_id``, ``node_id``, ``depth``, ``params``), handed to
    #: every run it starts in a ``flow.started`` trigger.
    origin: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    #: scheduled / running / paused / completed / cancelled
    status: str = Field(default="scheduled", max_length=16, index=True)
    #: Bumped by every resume, so the jobs of each stretch of sending have their own keys.
    generation: int = Field(default=0)
    started_at: datetime | None = ts_field(nullable=True)
    finished_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class BroadcastRecipient(SQLModel, table=True):
    """One contact of a broadcast, resolved once when it starts."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (sa.Index("ix_broadcast_recipients_contact", "contact_id", "queued_at"),)

    broadcast_id: str = Field(foreign_key="broadcasts.id", primary_key=True, max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", primary_key=True, max_length=40)
    #: pending / queued (message written) / started (flow run) / skipped / cancelled
    status: str = Field(max_length=16)
    #: Why a skipped recipient got nothing: opted_out, blocked, deleted,
    #: template.
    skipped_reason: str | None = Field(default=None, max_length=300)
    message_id: str | None = Field(default=None, max_length=40)
    run_id: str | None = Field(default=None, max_length=80)
    channel_id: str | None = Field(default=None, max_length=40)
    #: When its message was written (replies within the window after it are linked).
    queued_at: datetime | None = ts_field(nullable=True)
    #: The first reply linked to this broadcast.
    replied_at: datetime | None = ts_field(nullable=True)
