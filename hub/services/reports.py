"""Delivery reports: a gateway's word on an outbound SMS, matched to its message.

A report is stored as an event row (unique on channel + dedupe key, so a gateway retry
is a no-op) and moves its message's status forward (``hub.services.messages``): that
status change, not the report, is what subscribers see. A fast gateway can report before
the send job has stored the provider's id; such a report waits in a ``match_report`` job
and looks again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import InboundEvent
from hub.context import ChannelRuntime, Hub
from hub.dbutil import insert_ignore
from hub.event_data import envelope, gateway_report
from hub.ids import new_id
from hub.models import Event, Message, utcnow
from hub.queue.base import Retry, enqueue
from hub.services.messages import apply_status, event_status

#: Job: apply a report that arrived before its message had a provider id.
MATCH_REPORT = "match_report"
#: How long an unmatched delivery report keeps looking for its message (the send job may
#: not have stored the provider id yet when a fast gateway reports).
UNMATCHED_REPORT_RETRIES = 8


async def store_report(
    session: AsyncSession, channel: ChannelRuntime, event: InboundEvent, now: datetime
) -> str | None:
    """A delivery report: its event row (dedupe), then the message's status move; the
    event id, or None for a repeat."""
    event_id = new_id("evt")
    inserted = await insert_ignore(
        session,
        Event,
        {
            "id": event_id,
            "channel_id": channel.id,
            "type": event.type,
            "dedupe_key": event.dedupe_key[:200],
            "payload": {},
            "created_at": now,
        },
        conflict=["channel_id", "dedupe_key"],
    )
    if not inserted:
        return None
    message = await _outbound_by_provider_id(session, channel.id, event.provider_message_id)
    if message is None:
        # Not matched (yet): keep the report and look again shortly.
        await enqueue(
            session,
            MATCH_REPORT,
            {"event_id": event_id, "report": event.to_json()},
            delay_s=2.0,
            key=f"match:{event_id}",
            max_attempts=UNMATCHED_REPORT_RETRIES,
        )
    else:
        await _apply(session, message, event, event_id, now)
    payload = envelope(event_id, event.type, now, _report_data(channel.id, event, message))
    await session.execute(
        sa.update(Event)
        .where(col(Event.id) == event_id)
        .values(message_id=message.id if message else None, payload=payload)
    )
    return event_id


async def match_report(hub: Hub, event_id: str, report: dict[str, Any]) -> None:
    """Job: apply a delivery report that arrived before its message had a provider id."""
    event = InboundEvent.from_json(report)
    async with hub.db.write() as session:
        row = await session.get(Event, event_id)
        if row is None or row.message_id is not None:
            return
        message = await _outbound_by_provider_id(session, row.channel_id, event.provider_message_id)
        if message is None:
            raise Retry(
                5.0, reason=f"no message with provider id {event.provider_message_id!r} yet"
            )
        await _apply(session, message, event, event_id, utcnow())
        row.message_id = message.id
        row.payload = {**row.payload, "data": _report_data(row.channel_id, event, message)}
        session.add(row)


async def _apply(
    session: AsyncSession, message: Message, event: InboundEvent, event_id: str, now: datetime
) -> None:
    await apply_status(
        session,
        message,
        event_status(event.type),
        provider_status=event.provider_status,
        detail=event.error,
        event_id=event_id,
        now=now,
    )


async def _outbound_by_provider_id(
    session: AsyncSession, channel_id: str, provider_id: str | None
) -> Message | None:
    """The outbound message a delivery report is about, if we know it yet."""
    if not provider_id:
        return None
    found = await session.execute(
        sa.select(Message).where(
            col(Message.channel_id) == channel_id,
            col(Message.provider_message_id) == provider_id,
            col(Message.direction) == "outbound",
        )
    )
    return found.scalars().first()


def _report_data(channel_id: str, event: InboundEvent, message: Message | None) -> dict[str, Any]:
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
