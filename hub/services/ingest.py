"""Ingest: normalized gateway events into the database, in one short write transaction.

This is the hot path. Per event: the event row (unique on channel + dedupe key, so a
gateway's retry is a no-op), the message and contact changes, opt-out handling, and the
jobs that follow (sending confirmations, dispatch). Nothing slow happens here.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import InboundEvent
from connectors.segments import segment_info
from hub.context import Hub
from hub.dbutil import insert_ignore
from hub.ids import new_id
from hub.metrics import EVENTS
from hub.models import Channel, Contact, Device, Event, Message, utcnow
from hub.phone import normalize_address
from hub.queue.base import Retry, enqueue
from hub.queue.jobs import job
from hub.services.channels import ChannelRuntime
from hub.services.contacts import get_or_create_contact
from hub.services.events import envelope, iso
from hub.services.keywords import classify
from hub.services.messages import apply_status, event_status, queue_system_reply

log = logging.getLogger("smshub.ingest")

#: How long an unmatched delivery report keeps looking for its message (the send job may
#: not have stored the provider id yet when a fast gateway reports).
UNMATCHED_REPORT_RETRIES = 8


@dataclasses.dataclass
class IngestResult:
    """What one webhook request did."""

    stored: int = 0
    duplicates: int = 0
    event_ids: list[str] = dataclasses.field(default_factory=list)


async def ingest_events(
    hub: Hub, channel: ChannelRuntime, events: list[InboundEvent]
) -> IngestResult:
    """Store a request's events in one transaction and wake the workers."""
    result = IngestResult()
    if not events:
        return result
    async with hub.db.write() as session:
        for event in events:
            event_id = await _ingest_one(hub, session, channel, event)
            if event_id is None:
                result.duplicates += 1
            else:
                result.stored += 1
                result.event_ids.append(event_id)
            EVENTS.labels(event.type, "duplicate" if event_id is None else "stored").inc()
    if result.stored:
        hub.queue.notify()
    return result


async def _ingest_one(
    hub: Hub, session: AsyncSession, channel: ChannelRuntime, event: InboundEvent
) -> str | None:
    event_id = new_id("evt")
    now = utcnow()
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
    device = await _touch_device(session, channel, event, now)
    message_id: str | None
    if event.type == "sms.received":
        message_id, payload = await _received(hub, session, channel, event, device, event_id, now)
        # The gateway's event is the public one; status reports instead become public
        # through the message's status transition (hub.services.messages.record_status).
        await enqueue(session, "dispatch_event", {"event_id": event_id}, key=f"dispatch:{event_id}")
    else:
        message_id, payload = await _status_report(hub, session, channel, event, event_id, now)
    await session.execute(
        sa.update(Event)
        .where(col(Event.id) == event_id)
        .values(message_id=message_id, payload=payload)
    )
    return event_id


async def _touch_device(
    session: AsyncSession, channel: ChannelRuntime, event: InboundEvent, now: datetime
) -> Device | None:
    """The device the event came through (created on first sight), marked as seen."""
    if not event.device_id:
        return None
    found = await session.execute(
        sa.select(Device).where(
            col(Device.channel_id) == channel.id, col(Device.external_id) == event.device_id
        )
    )
    device = found.scalar_one_or_none()
    if device is None:
        await insert_ignore(
            session,
            Device,
            {
                "id": new_id("dev"),
                "channel_id": channel.id,
                "external_id": event.device_id,
                "name": "",
                "sim_slots": [],
                "created_at": now,
            },
            conflict=["channel_id", "external_id"],
        )
        found = await session.execute(
            sa.select(Device).where(
                col(Device.channel_id) == channel.id, col(Device.external_id) == event.device_id
            )
        )
        device = found.scalar_one()
    device.last_seen_at = now
    if event.sim_slot is not None and event.sim_slot not in device.sim_slots:
        device.sim_slots = sorted([*device.sim_slots, event.sim_slot])
    session.add(device)
    return device


async def _received(
    hub: Hub,
    session: AsyncSession,
    channel: ChannelRuntime,
    event: InboundEvent,
    device: Device | None,
    event_id: str,
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    region = hub.settings.default_region
    sender = normalize_address(event.from_number, region) or "unknown"
    recipient = normalize_address(event.to_number, region) or channel.phone_number
    contact = await get_or_create_contact(session, sender)
    body = event.body or ""
    info = segment_info(body)
    message = Message(
        id=new_id("msg"),
        direction="inbound",
        channel_id=channel.id,
        device_id=device.id if device else None,
        sim_slot=event.sim_slot,
        contact_id=contact.id,
        from_number=sender,
        to_number=recipient,
        body=body,
        segments=event.segments or info.segments,
        encoding=info.encoding,
        status="received",
        provider_message_id=event.provider_message_id,
        source="gateway",
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    await session.flush()
    await _handle_keyword(hub, session, contact, message, now)
    payload = envelope(
        event_id,
        "sms.received",
        now,
        {
            "message_id": message.id,
            "from": sender,
            "to": recipient,
            "body": body,
            "channel_id": channel.id,
            "device_id": message.device_id,
            "sim_slot": message.sim_slot,
            "segments": message.segments,
            "encoding": message.encoding,
            "received_at": iso(event.occurred_at or now),
            "contact_id": contact.id,
        },
    )
    return message.id, payload


async def _handle_keyword(
    hub: Hub, session: AsyncSession, contact: Contact, inbound: Message, now: datetime
) -> None:
    """STOP / START / HELP: update the contact and queue exactly one confirmation."""
    keyword = classify(inbound.body)
    if keyword is None:
        return
    settings = hub.settings
    if keyword == "stop":
        contact.opted_out = True
        contact.opted_out_at = now
        text = settings.stop_text
    elif keyword == "start":
        if inbound.body.strip().upper().startswith("YES") and not contact.opted_out:
            return  # "yes" is an ordinary answer unless the contact is opted out
        contact.opted_out = False
        contact.opted_out_at = None
        text = settings.start_text
    else:
        text = settings.help_text
    contact.updated_at = now
    session.add(contact)
    await queue_system_reply(hub, session, inbound, text)


async def _status_report(
    hub: Hub,
    session: AsyncSession,
    channel: ChannelRuntime,
    event: InboundEvent,
    event_id: str,
    now: datetime,
) -> tuple[str | None, dict[str, Any]]:
    message = None
    if event.provider_message_id:
        found = await session.execute(
            sa.select(Message).where(
                col(Message.channel_id) == channel.id,
                col(Message.provider_message_id) == event.provider_message_id,
                col(Message.direction) == "outbound",
            )
        )
        message = found.scalars().first()
    if message is None:
        # Not matched (yet): keep the report and look again shortly.
        await enqueue(
            session,
            "match_report",
            {"event_id": event_id, "report": event_to_json(event)},
            delay_s=2.0,
            key=f"match:{event_id}",
            max_attempts=UNMATCHED_REPORT_RETRIES,
        )
        return None, envelope(event_id, event.type, now, _report_data(channel, event, None))
    await apply_status(
        session,
        message,
        event_status(event.type),
        provider_status=event.provider_status,
        detail=event.error,
        event_id=event_id,
        now=now,
    )
    return message.id, envelope(event_id, event.type, now, _report_data(channel, event, message))


def _report_data(
    channel: ChannelRuntime, event: InboundEvent, message: Message | None
) -> dict[str, Any]:
    return {
        "message_id": message.id if message else None,
        "provider_message_id": event.provider_message_id,
        "status": event_status(event.type),
        "provider_status": event.provider_status,
        "error": event.error,
        "from": message.from_number if message else event.from_number,
        "to": message.to_number if message else event.to_number,
        "body": message.body if message else None,
        "channel_id": channel.id,
        "device_id": message.device_id if message else None,
        "sim_slot": message.sim_slot if message else event.sim_slot,
        "contact_id": message.contact_id if message else None,
    }


@job("match_report")
async def match_report(hub: Hub, event_id: str, report: dict[str, Any]) -> None:
    """Apply a delivery report that arrived before its message had a provider id."""
    event = event_from_json(report)
    async with hub.db.write() as session:
        row = await session.get(Event, event_id)
        if row is None or row.message_id is not None:
            return
        found = await session.execute(
            sa.select(Message).where(
                col(Message.channel_id) == row.channel_id,
                col(Message.provider_message_id) == event.provider_message_id,
                col(Message.direction) == "outbound",
            )
        )
        message = found.scalars().first()
        if message is None:
            raise Retry(
                5.0, reason=f"no message with provider id {event.provider_message_id!r} yet"
            )
        await apply_status(
            session,
            message,
            event_status(event.type),
            provider_status=event.provider_status,
            detail=event.error,
            event_id=event_id,
            now=utcnow(),
        )
        row.message_id = message.id
        row.payload = {
            **row.payload,
            "data": {
                **row.payload.get("data", {}),
                "message_id": message.id,
                "from": message.from_number,
                "to": message.to_number,
                "body": message.body,
                "device_id": message.device_id,
                "sim_slot": message.sim_slot,
                "contact_id": message.contact_id,
            },
        }
        session.add(row)


def event_to_json(event: InboundEvent) -> dict[str, Any]:
    """A normalized event as JSON (for job arguments)."""
    data = dataclasses.asdict(event)
    data["occurred_at"] = event.occurred_at.isoformat() if event.occurred_at else None
    data["raw"] = {}
    return data


def event_from_json(data: dict[str, Any]) -> InboundEvent:
    """The inverse of :func:`event_to_json`."""
    values = dict(data)
    if values.get("occurred_at"):
        values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
    return InboundEvent(**values)


@job("ingest_followup")
async def ingest_followup(
    hub: Hub, channel_id: str, event: dict[str, Any], to_channel_number: str | None = None
) -> None:
    """Ingest an event a connector scheduled (simulator delivery reports and loop-backs)."""
    target = channel_id
    if to_channel_number:
        async with hub.db.read() as session:
            found = await session.execute(
                sa.select(col(Channel.id)).where(
                    col(Channel.phone_number) == to_channel_number,
                    col(Channel.connector) == "simulator",
                    col(Channel.deleted_at).is_(None),
                )
            )
            match = found.scalars().first()
        if match is None:
            return
        target = match
    channel = await hub.channels.get(target)
    if channel is None or not channel.enabled:
        log.info("dropping followup for missing or disabled channel %s", target)
        return
    await ingest_events(hub, channel, [event_from_json(event)])
