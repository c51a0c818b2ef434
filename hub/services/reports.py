"""Delivery reports: a gateway's word on an outbound SMS, matched to its message.

A report is stored as an event row (unique on channel + dedupe key, so a gateway retry
is a no-op) and moves its message's status forward (``hub.services.messages``): that
status change, not the report, is what subscribers see. A fast gateway can report before
the send job has stored the provider's id; such a report waits in a ``match_report`` job
and looks again. Everything here runs as units on the hot path's store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.base import InboundEvent
from hub.context import ChannelRuntime, Hub
from hub.event_data import envelope, gateway_report
from hub.ids import new_id
from hub.models import utcnow
from hub.queue.base import Retry, enqueue_job
from hub.services.messages import (
    MESSAGE_COLUMNS,
    MessageRow,
    apply_status,
    event_status,
    message_row,
)
from hub.store import Json, Unit, as_json, execute, fetch_all, fetch_one

#: Job: apply a report that arrived before its message had a provider id.
MATCH_REPORT = "match_report"
#: How long an unmatched delivery report keeps looking for its message (the send job may
#: not have stored the provider id yet when a fast gateway reports).
UNMATCHED_REPORT_RETRIES = 8


def store_report(
    hub: Hub, channel: ChannelRuntime, event: InboundEvent, now: datetime
) -> Unit[str | None]:
    """Unit: a delivery report's event row (dedupe), then the message's status move; the
    event id, or None for a repeat."""
    event_id = new_id("evt")
    inserted = yield from fetch_all(
        "INSERT INTO events (id, channel_id, type, dedupe_key, payload, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, dedupe_key) DO NOTHING RETURNING id",
        (event_id, channel.id, event.type, event.dedupe_key[:200], Json({}), now),
    )
    if not inserted:
        return None
    message = yield from _outbound_by_provider_id(hub, channel.id, event.provider_message_id)
    if message is None:
        # Not matched (yet): keep the report and look again shortly.
        yield from enqueue_job(
            MATCH_REPORT,
            {"event_id": event_id, "report": event.to_json()},
            delay_s=2.0,
            key=f"match:{event_id}",
            max_attempts=UNMATCHED_REPORT_RETRIES,
        )
    else:
        yield from _apply(hub, message, event, event_id, now)
    payload = envelope(event_id, event.type, now, _report_data(channel.id, event, message))
    yield from execute(
        "UPDATE events SET message_id = ?, payload = ? WHERE id = ?",
        (message.id if message else None, Json(payload), event_id),
    )
    return event_id


async def match_report(hub: Hub, event_id: str, report: dict[str, Any]) -> None:
    """Job: apply a delivery report that arrived before its message had a provider id."""
    await hub.store.write(_match(hub, event_id, InboundEvent.from_json(report)))


def _match(hub: Hub, event_id: str, event: InboundEvent) -> Unit[None]:
    row = yield from fetch_one(
        "SELECT channel_id, message_id, payload FROM events WHERE id = ?", (event_id,)
    )
    if row is None or row[1] is not None:
        return
    channel_id, _, payload = row
    message = yield from _outbound_by_provider_id(hub, channel_id, event.provider_message_id)
    if message is None:
        raise Retry(5.0, reason=f"no message with provider id {event.provider_message_id!r} yet")
    yield from _apply(hub, message, event, event_id, utcnow())
    stored = {**as_json(payload), "data": _report_data(channel_id, event, message)}
    yield from execute(
        "UPDATE events SET message_id = ?, payload = ? WHERE id = ?",
        (message.id, Json(stored), event_id),
    )


def _apply(
    hub: Hub, message: MessageRow, event: InboundEvent, event_id: str, now: datetime
) -> Unit[None]:
    yield from apply_status(
        hub,
        message,
        event_status(event.type),
        provider_status=event.provider_status,
        detail=event.error,
        event_id=event_id,
        now=now,
        refunded=event.refunded,
    )


def _outbound_by_provider_id(
    hub: Hub, channel_id: str, provider_id: str | None
) -> Unit[MessageRow | None]:
    """The outbound message a delivery report is about, if we know it yet (locked on
    PostgreSQL, as its status is about to move)."""
    if not provider_id:
        return None
    sql = (
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = ? "
        "AND provider_message_id = ? AND direction = 'outbound' LIMIT 1"
    )
    if hub.store.dialect == "postgresql":
        sql += " FOR NO KEY UPDATE"
    found = yield from fetch_one(sql, (channel_id, provider_id))
    return message_row(found) if found else None


def _report_data(
    channel_id: str, event: InboundEvent, message: MessageRow | None
) -> dict[str, Any]:
    return dict(
        gateway_report(
            channel_id=channel_id,
            status=event_status(event.type),
            provider_message_id=event.provider_message_id,
            provider_status=event.provider_status,
            error=event.error,
            message=message,
            from_number=event.from_number,
            to_number=event.to_number,
            sim_slot=event.sim_slot,
        )
    )
