"""Public events: rows in ``events``, handed to the wiring's sinks in order.

An event is written in the same transaction as the change it reports, so it exists if and
only if the change does. Sinks (flow triggers, webhook deliveries; ``hub/wiring.py`` lists
them) only write rows and jobs, and must be idempotent (keyed on the event id): a
dispatch can run twice after a crash. Inbound SMS, the bulk, are dispatched inside the
ingest transaction itself (:func:`dispatch_inline`, a batch at a time); events the hub
raises elsewhere get a ``dispatch_event`` job written with them. What each event's
``data`` holds is ``hub/event_data.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.context import Hub
from hub.dbutil import insert_ignore
from hub.event_data import envelope
from hub.ids import new_id
from hub.models import Event, utcnow
from hub.queue.base import enqueue

log = logging.getLogger("smshub.events")

#: Job: hand one stored event to every sink.
DISPATCH_EVENT = "dispatch_event"


async def emit(
    session: AsyncSession,
    *,
    type: str,
    channel_id: str,
    dedupe_key: str,
    data: Mapping[str, Any],
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
    await enqueue(session, DISPATCH_EVENT, {"event_id": event_id}, key=f"dispatch:{event_id}")
    return event_id


async def dispatch_inline(hub: Hub, session: AsyncSession, payloads: list[dict[str, Any]]) -> None:
    """Hand events to every sink of the wiring, in order, in the caller's transaction."""
    if payloads:
        for sink in hub.wiring.sinks:
            await sink(hub, session, payloads)


async def dispatch_event(hub: Hub, event_id: str) -> None:
    """Job: hand one event to every sink, in one transaction."""
    async with hub.db.write() as session:
        row = await session.get(Event, event_id)
        if row is None:
            return
        await dispatch_inline(hub, session, [row.payload])
    hub.queue.notify()
