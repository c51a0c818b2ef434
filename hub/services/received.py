"""Inbound SMS into the database: the event row, the message, keywords and the sinks.

What :mod:`hub.services.ingest` does with the whole SMS of a webhook batch, and
:mod:`hub.services.concat` with the one message it joins from a long SMS's parts: the
same rows and the same public ``sms.received`` event, in the caller's unit.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from connectors.base import InboundEvent
from flows.ports import DeviceRef
from hub.context import ChannelRuntime, Hub
from hub.event_data import ConcatPartsRef, channel_ref, envelope, sms_received
from hub.ids import new_id
from hub.services.broadcasts import mark_replied, reply_links
from hub.services.events import dispatch_inline
from hub.services.keywords import classify
from hub.services.messages import NEW_MESSAGE_COLUMNS, load_message
from hub.services.optouts import handle_keyword
from hub.store import Json, Unit, insert_rows

#: contact phone → (contact id, opted out)
Contacts = dict[str, tuple[str, bool]]
#: (channel id, gateway device id) → the device
Devices = dict[tuple[str, str], DeviceRef]


@dataclasses.dataclass
class Received:
    """An inbound SMS prepared for the batch insert."""

    #: Which request of the batch it came in (-1: joined from parts, no request of its own).
    request: int
    channel: ChannelRuntime
    event: InboundEvent
    event_id: str
    message_id: str
    sender: str
    recipient: str | None
    body: str
    segments: int
    encoding: str
    #: For a message joined from the parts of a long SMS: which parts it holds.
    parts: ConcatPartsRef | None = None


_EVENT_COLUMNS = ("id", "channel_id", "type", "dedupe_key", "message_id", "payload", "created_at")
_MESSAGE_COLUMNS = (
    *NEW_MESSAGE_COLUMNS,
    "provider_message_id",
    "source",
    "bypass_opt_out",
    "attempts",
    "created_at",
    "updated_at",
)
#: The device of an SMS whose gateway named none (Twilio, Vonage).
_NO_DEVICE: DeviceRef = {"id": None, "gateway_id": None, "name": None}


_CONTACT_COLUMNS = (
    "id",
    "phone",
    "name",
    "opted_out",
    "tags",
    "fields",
    "created_at",
    "updated_at",
)


def upsert_contacts(phones: set[str], now: datetime) -> Unit[Contacts]:
    """phone → (contact id, opted out), creating missing contacts."""
    if not phones:
        return {}
    found = yield from insert_rows(
        "contacts",
        _CONTACT_COLUMNS,
        # A fixed order: concurrent batches lock rows alike (PostgreSQL).
        [(new_id("ct"), p, "", False, Json([]), Json({}), now, now) for p in sorted(phones)],
        # A deleted contact who writes again is back (its opt-out state kept).
        conflict=(
            "ON CONFLICT (phone) DO UPDATE SET updated_at = excluded.updated_at, deleted_at = NULL"
        ),
        returning="id, phone, opted_out",
    )
    return {phone: (cid, bool(opted)) for cid, phone, opted in found}


def store_received(
    hub: Hub, received: list[Received], contacts: Contacts, devices: Devices, now: datetime
) -> Unit[set[str]]:
    """Insert the SMS (a gateway's retry skipped), answer the compliance keywords among the
    new ones; the ids of the events written."""
    inserted = yield from insert_received(hub, received, contacts, devices, now)
    for item in received:
        if item.event_id in inserted and classify(item.body, hub.settings.keywords) is not None:
            inbound = yield from load_message(hub, item.message_id)
            if inbound is not None:
                yield from handle_keyword(hub, inbound, now)
    return inserted


def insert_received(
    hub: Hub, received: list[Received], contacts: Contacts, devices: Devices, now: datetime
) -> Unit[set[str]]:
    """Insert the events (duplicates skipped), then their messages, then hand the new
    events to the sinks; the ids of the events written."""
    if not received:
        return set()
    replies = yield from reply_links(
        hub, {(contacts[item.sender][0], item.channel.id) for item in received}, now
    )
    built = [_event_payload(item, contacts, devices, replies, now) for item in received]
    found = yield from insert_rows(
        "events",
        _EVENT_COLUMNS,
        [_event_row(item, payload, now) for item, payload in zip(received, built, strict=True)],
        conflict="ON CONFLICT (channel_id, dedupe_key) DO NOTHING",
        returning="id",
    )
    inserted = {row[0] for row in found}
    fresh = [
        (item, payload)
        for item, payload in zip(received, built, strict=True)
        if item.event_id in inserted
    ]
    if not fresh:
        return inserted
    yield from mark_replied(
        {
            p["data"]["contact_id"]: p["data"]["broadcast_id"]
            for _, p in fresh
            if p["data"]["broadcast_id"]
        },
        now,
    )
    yield from insert_rows(
        "messages",
        _MESSAGE_COLUMNS,
        [_message_row(item, payload["data"], now) for item, payload in fresh],
    )
    # The gateway's event is the public one (status reports instead become public through
    # the message's status transition, hub.services.messages.record_status); its sinks run
    # here, in this unit, for the whole batch at once.
    yield from dispatch_inline(hub, [payload for _, payload in fresh])
    return inserted


def _event_row(item: Received, payload: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    """The events row of an inbound SMS (in :data:`_EVENT_COLUMNS` order)."""
    dedupe = item.event.dedupe_key[:200]
    return (
        item.event_id,
        item.channel.id,
        "sms.received",
        dedupe,
        item.message_id,
        Json(payload),
        now,
    )


def _event_payload(
    item: Received,
    contacts: Contacts,
    devices: Devices,
    replies: dict[tuple[str, str], str],
    now: datetime,
) -> dict[str, Any]:
    """The public payload of an inbound SMS, built from the contract."""
    device = devices.get((item.channel.id, item.event.device_id or ""), _NO_DEVICE)
    contact_id = contacts[item.sender][0]
    data = sms_received(
        message_id=item.message_id,
        sender=item.sender,
        recipient=item.recipient,
        body=item.body,
        sim_slot=item.event.sim_slot,
        segments=item.segments,
        encoding=item.encoding,
        received_at=item.event.occurred_at or now,
        contact_id=contact_id,
        channel=channel_ref(item.channel),
        device=device,
        broadcast_id=replies.get((contact_id, item.channel.id)),
        parts=item.parts,
    )
    return envelope(item.event_id, "sms.received", now, data)


def _message_row(item: Received, data: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    """The messages row of an inbound SMS (in :data:`_MESSAGE_COLUMNS` order)."""
    return (
        item.message_id,
        "inbound",
        item.channel.id,
        data["device_id"],
        item.event.sim_slot,
        data["contact_id"],
        item.sender,
        item.recipient,
        item.body,
        item.segments,
        item.encoding,
        "received",
        item.event.provider_message_id,
        "gateway",
        False,
        0,
        now,
        now,
    )
