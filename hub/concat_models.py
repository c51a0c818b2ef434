"""Tables of long inbound SMS (issue 12, part 4): parts waiting to be joined.

Apart from ``hub.models`` (which imports it, so ``metadata`` holds the tables) to keep that
module short.

Why tables of their own and not ``messages`` rows with a status: a part is not a message
yet. Every reader of ``messages`` (the API, conversations, counts, retention, broadcast
replies, flows) would have to skip pending parts, and the joined message would be a
second row for the same text. Here the parts wait out of sight and both rows are deleted
once the one message exists; the parts' ``events`` rows stay (their dedupe keys, so a
gateway's retry of a part is a no-op like any other).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.columns import json_field, ts_field


class ConcatGroup(SQLModel, table=True):
    """One long SMS being assembled: a sender's parts with one reference on one channel."""

    __tablename__ = "concat_groups"
    # Unique: concurrent writers of parts of one message (two processes on PostgreSQL)
    # agree on one group, whose row they lock before adding a part.
    __table_args__ = (
        sa.UniqueConstraint("channel_id", "sender", "ref", name="uq_concat_groups_ref"),
    )

    id: str = Field(primary_key=True, max_length=40)
    channel_id: str = Field(foreign_key="channels.id", max_length=40)
    #: The sender, normalized (E.164).
    sender: str = Field(max_length=32)
    #: The gateway's reference of the message (Vonage's concat-ref).
    ref: str = Field(max_length=64)
    #: Parts the message has.
    total: int
    #: When its first part arrived (the hub's clock): it is released incomplete at
    #: ``first_at + SMSHUB_CONCAT_WAIT_S``.
    first_at: datetime = ts_field()
    created_at: datetime = ts_field()


class ConcatPart(SQLModel, table=True):
    """One part of a long SMS, as the connector parsed it."""

    __tablename__ = "concat_parts"
    __table_args__ = (sa.UniqueConstraint("group_id", "number", name="uq_concat_parts_number"),)

    id: str = Field(primary_key=True, max_length=40)
    group_id: str = Field(foreign_key="concat_groups.id", max_length=40)
    #: 1-based part number.
    number: int
    #: The part's ``InboundEvent.to_json()`` (its text, sender, device, provider id).
    event: dict[str, Any] = json_field(dict)
    created_at: datetime = ts_field()
