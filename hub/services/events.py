"""Public events: rows in ``events``, handed to every registered sink.

An event is written in the same transaction as the change it reports, so it exists if and
only if the change does. Sinks (flow triggers, webhook deliveries) only write rows and
jobs, and must be idempotent (keyed on the event id): a dispatch can run twice after a
crash. Inbound SMS, the bulk, are dispatched inside the ingest transaction itself
(:func:`dispatch_inline`, a batch at a time); events the hub raises elsewhere get a
``dispatch_event`` job written with them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.context import Hub
from hub.dbutil import insert_ignore
from hub.ids import new_id
from hub.models import Event, Message, utcnow
from hub.queue.base import enqueue
from hub.queue.jobs import job

log = logging.getLogger("smshub.events")

#: A sink gets a batch of event payloads (one or many) and the transaction to write in.
EventSink = Callable[[Hub, AsyncSession, list[dict[str, Any]]], Awaitable[None]]

#: Everything that reacts to public events, in registration order.
SINKS: list[EventSink] = []

#: The event types a subscriber can ask for.
EVENT_TYPES = (
    "sms.received",
    "sms.sent",
    "sms.delivered",
    "sms.failed",
    "flow.run.completed",
    "flow.run.failed",
    "endpoint.disabled",
)


def event_sink(func: EventSink) -> EventSink:
    """Register a sink that gets every dispatched event."""
    if func not in SINKS:
        SINKS.append(func)
    return func


def iso(at: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def envelope(event_id: str, type_: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The public event shape (DESIGN.md): id, type, timestamp, data."""
    return {"id": event_id, "type": type_, "timestamp": iso(at), "data": data}


async def emit(
    session: AsyncSession,
    *,
    type: str,
    channel_id: str,
    dedupe_key: str,
    data: dict[str, Any],
    message_id: str | None = None,
    event_id: str | None = None,
    at: datetime | None = None,
) -> str | None:
    """Write an event and its dispatch job; None when ``dedupe_key`` was seen on the channel."""
    event_id = event_id or new_id("evt")
    now = at or utcnow()
    inserted = await insert_ignore(
        session,
        Event,
        {
            "id": event_id,
            "channel_id": channel_id,
            "type": type,
            "dedupe_key": dedupe_key[:200],
            "message_id": message_id,
            "payload": envelope(event_id, type, now, data),
            "created_at": now,
        },
        conflict=["channel_id", "dedupe_key"],
    )
    if not inserted:
        return None
    await enqueue(session, "dispatch_event", {"event_id": event_id}, key=f"dispatch:{event_id}")
    return event_id


def message_data(message: Message, **extra: Any) -> dict[str, Any]:
    """The ``data`` of an ``sms.*`` event about a message."""
    data: dict[str, Any] = {
        "message_id": message.id,
        "direction": message.direction,
        "status": message.status,
        "from": message.from_number,
        "to": message.to_number,
        "body": message.body,
        "channel_id": message.channel_id,
        "device_id": message.device_id,
        "sim_slot": message.sim_slot,
        "segments": message.segments,
        "encoding": message.encoding,
        "contact_id": message.contact_id,
        "provider_message_id": message.provider_message_id,
        "error": message.error,
    }
    data.update(extra)
    return data


async def dispatch_inline(hub: Hub, session: AsyncSession, payloads: list[dict[str, Any]]) -> None:
    """Hand events to every sink in the caller's transaction."""
    if payloads:
        for sink in SINKS:
            await sink(hub, session, payloads)


@job("dispatch_event")
async def dispatch_event(hub: Hub, event_id: str) -> None:
    """Hand one event to every sink, in one transaction."""
    async with hub.db.write() as session:
        row = await session.get(Event, event_id)
        if row is None:
            return
        await dispatch_inline(hub, session, [row.payload])
    hub.queue.notify()
