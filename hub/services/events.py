"""Public events: rows in ``events``, handed to the wiring's sinks in order.

An event is written in the same unit as the change it reports, so it exists if and only
if the change does, and the sinks (flow triggers, webhook deliveries; ``hub/wiring.py``
lists them) see it in that same unit: they only write rows and jobs, and must be
idempotent (keyed on the event id). :func:`emit` is that path for the hot path's store
(``hub.store``); :func:`emit_in_session` is for the ORM's cold paths, which write a
``dispatch_event`` job with the event instead. What each event's ``data`` holds is
``hub/event_data.py``.
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
from hub.metrics import PUBLIC_EVENTS
from hub.models import Event, utcnow
from hub.queue.base import enqueue
from hub.store import Json, Unit, as_json, fetch_all, fetch_value

log = logging.getLogger("smshub.events")

#: Job: hand one stored event to every sink.
DISPATCH_EVENT = "dispatch_event"

_INSERT_EVENT = (
    "INSERT INTO events (id, channel_id, type, dedupe_key, message_id, payload, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, dedupe_key) DO NOTHING RETURNING id"
)


def emit(
    hub: Hub,
    *,
    type: str,
    channel_id: str,
    dedupe_key: str,
    data: Mapping[str, Any],
    message_id: str | None = None,
    at: datetime | None = None,
) -> Unit[str | None]:
    """Unit: write an event and hand it to the sinks; None when ``dedupe_key`` was seen on
    the channel (nothing is dispatched twice)."""
    event_id = new_id("evt")
    now = at or utcnow()
    payload = envelope(event_id, type, now, data)
    found = yield from fetch_all(
        _INSERT_EVENT,
        (event_id, channel_id, type, dedupe_key[:200], message_id, Json(payload), now),
    )
    if not found:
        return None
    yield from dispatch_inline(hub, [payload])
    return event_id


def dispatch_inline(hub: Hub, payloads: list[dict[str, Any]]) -> Unit[None]:
    """Unit: hand events to every sink of the wiring, in order, in the caller's unit
    (every public event passes here once: counted in ``smshub_events_total``)."""
    if payloads:
        for sink in hub.wiring.sinks:
            yield from sink(hub, payloads)
        for payload in payloads:
            PUBLIC_EVENTS.labels(payload["type"]).inc()


async def emit_in_session(
    session: AsyncSession,
    *,
    type: str,
    channel_id: str,
    dedupe_key: str,
    data: Mapping[str, Any],
    message_id: str | None = None,
    at: datetime | None = None,
) -> str | None:
    """ORM: write an event and its dispatch job; None when ``dedupe_key`` was seen."""
    event_id = new_id("evt")
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


async def dispatch_event(hub: Hub, event_id: str) -> None:
    """Job: hand one stored event to every sink, in one unit."""
    await hub.store.write(_dispatch_stored(hub, event_id))


def _dispatch_stored(hub: Hub, event_id: str) -> Unit[None]:
    payload = yield from fetch_value("SELECT payload FROM events WHERE id = ?", (event_id,))
    if payload is not None:
        yield from dispatch_inline(hub, [as_json(payload)])
