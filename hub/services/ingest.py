"""Ingest: normalized gateway events into the database, in one short write transaction.

This is the hot path. Per event: the event row (unique on channel + dedupe key, so a
gateway's retry is a no-op), the message and contact changes, opt-out handling, and the
jobs that follow (sending confirmations, dispatch). Nothing slow happens here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
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
from hub.services.events import dispatch_inline, envelope, iso
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


@dataclasses.dataclass
class _Item:
    """One request's events waiting for the group commit."""

    channel: ChannelRuntime
    events: list[InboundEvent]
    done: asyncio.Future[IngestResult]


class IngestWriter:
    """Group commit: events of concurrent requests are written in one transaction.

    While one batch is being written, new requests queue up; the next batch takes them all
    (up to MAX_BATCH). No timer, so a lone request is written at once. A batch that fails
    is retried request by request, so one bad request cannot fail the others.
    """

    #: Requests written in one transaction at most.
    MAX_BATCH = 128

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, channel: ChannelRuntime, events: list[InboundEvent]) -> IngestResult:
        """Queue a request's events and wait until they are committed."""
        item = _Item(channel, events, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(item)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="smshub-ingest-writer")
        return await item.done

    async def _drain(self) -> None:
        """Write batches until the queue is empty, then end (the next submit restarts it)."""
        while not self._queue.empty():
            batch = [self._queue.get_nowait()]
            while len(batch) < self.MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[_Item]) -> None:
        try:
            results = await write_batch(self.hub, [(i.channel, i.events) for i in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].done, exc)
                return
            for item in batch:  # isolate the request that broke the batch
                await self._write([item])
            return
        for item, result in zip(batch, results, strict=True):
            if not item.done.done():
                item.done.set_result(result)


def _settle(future: asyncio.Future[IngestResult], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


async def ingest_events(
    hub: Hub, channel: ChannelRuntime, events: list[InboundEvent]
) -> IngestResult:
    """Store a request's events (group-committed with concurrent requests); wake workers."""
    if not events:
        return IngestResult()
    return await hub.ingest.submit(channel, [_sanitized(e) for e in events])


#: Longest provider ids and words the tables keep (a gateway's odd value is cut, not fatal).
_FIELD_LIMITS = {"provider_message_id": 200, "device_id": 200, "provider_status": 64}


def _sanitized(event: InboundEvent) -> InboundEvent:
    """A gateway's text fit for any database: NUL replaced by U+FFFD (PostgreSQL text
    cannot hold it), ids and status words cut to their column sizes."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if not isinstance(value, str):
            continue
        clean = value.replace("\x00", "\ufffd")[: _FIELD_LIMITS.get(f.name, len(value))]
        if clean != value:
            changes[f.name] = clean
    return dataclasses.replace(event, **changes) if changes else event


@dataclasses.dataclass
class _Received:
    """An inbound SMS prepared for the batch insert."""

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


async def write_batch(
    hub: Hub, requests: list[tuple[ChannelRuntime, list[InboundEvent]]]
) -> list[IngestResult]:
    """Write several requests' events in ONE transaction; a result per request.

    Inbound SMS (the bulk) take a handful of set-based statements for the whole batch:
    upsert contacts, upsert devices, insert events (ON CONFLICT DO NOTHING: a retry is a
    no-op), insert messages and their dispatch jobs. Keywords and delivery reports, rarer
    and richer, then take the per-event path.
    """
    now = utcnow()
    results = [IngestResult() for _ in requests]
    received, reports = _prepare(hub, requests, results)
    async with hub.db.write() as session:
        contacts = await _upsert_contacts(session, {r.sender for r in received}, now)
        devices = await _upsert_devices(session, requests, now)
        inserted = await _insert_received(hub, session, received, contacts, devices, now)
        for item in received:
            stored = item.event_id in inserted
            _count(results[item.request], item.event, item.event_id if stored else None)
            if stored and classify(item.body) is not None:
                contact = await session.get(Contact, contacts[item.sender][0])
                message = await session.get(Message, item.message_id)
                if contact is not None and message is not None:
                    await _handle_keyword(hub, session, contact, message, now)
        for index, channel, event in reports:
            event_id = await _report_one(hub, session, channel, event, now)
            _count(results[index], event, event_id)
    if session.info.get("smshub_jobs_enqueued"):
        hub.queue.notify()
    return results


def _count(result: IngestResult, event: InboundEvent, event_id: str | None) -> None:
    if event_id is None:
        result.duplicates += 1
    else:
        result.stored += 1
        result.event_ids.append(event_id)
    EVENTS.labels(event.type, "duplicate" if event_id is None else "stored").inc()


def _prepare(
    hub: Hub,
    requests: list[tuple[ChannelRuntime, list[InboundEvent]]],
    results: list[IngestResult],
) -> tuple[list[_Received], list[tuple[int, ChannelRuntime, InboundEvent]]]:
    """Normalize numbers and count segments; drop repeats of a key within the batch."""
    region = hub.settings.default_region
    received: list[_Received] = []
    reports: list[tuple[int, ChannelRuntime, InboundEvent]] = []
    seen: set[tuple[str, str]] = set()
    for index, (channel, events) in enumerate(requests):
        for event in events:
            key = (channel.id, event.dedupe_key[:200])
            if key in seen:  # the same event twice in one batch: a concurrent retry
                _count(results[index], event, None)
                continue
            seen.add(key)
            if event.type != "sms.received":
                reports.append((index, channel, event))
                continue
            body = event.body or ""
            info = segment_info(body)
            received.append(
                _Received(
                    request=index,
                    channel=channel,
                    event=event,
                    event_id=new_id("evt"),
                    message_id=new_id("msg"),
                    sender=normalize_address(event.from_number, region) or "unknown",
                    recipient=normalize_address(event.to_number, region) or channel.phone_number,
                    body=body,
                    segments=event.segments or info.segments,
                    encoding=info.encoding,
                )
            )
    return received, reports


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def _upsert_contacts(
    session: AsyncSession, phones: set[str], now: datetime
) -> dict[str, tuple[str, bool]]:
    """phone → (contact id, opted out), creating missing contacts."""
    if not phones:
        return {}
    table = Contact.__table__  # type: ignore[attr-defined]
    insert = _insert(session)(table)
    stmt = insert.on_conflict_do_update(
        index_elements=["phone"], set_={"updated_at": insert.excluded.updated_at}
    ).returning(table.c.id, table.c.phone, table.c.opted_out)
    rows = [
        {
            "id": new_id("ct"),
            "phone": phone,
            "name": "",
            "opted_out": False,
            "tags": [],
            "fields": {},
            "created_at": now,
            "updated_at": now,
        }
        for phone in sorted(phones)  # a fixed order: concurrent batches lock rows alike
    ]
    found = await session.execute(stmt, rows)
    return {phone: (cid, bool(opted)) for cid, phone, opted in found.all()}


async def _upsert_devices(
    session: AsyncSession, requests: list[tuple[ChannelRuntime, list[InboundEvent]]], now: datetime
) -> dict[tuple[str, str], str]:
    """(channel, provider device id) → our device id; marks each seen and learns SIM slots."""
    slots: dict[tuple[str, str], set[int]] = {}
    for channel, events in requests:
        for event in events:
            if event.device_id:
                seen = slots.setdefault((channel.id, event.device_id), set())
                if event.sim_slot is not None:
                    seen.add(event.sim_slot)
    if not slots:
        return {}
    table = Device.__table__  # type: ignore[attr-defined]
    insert = _insert(session)(table)
    stmt = insert.on_conflict_do_update(
        index_elements=["channel_id", "external_id"],
        set_={"last_seen_at": insert.excluded.last_seen_at},
    ).returning(table.c.id, table.c.channel_id, table.c.external_id, table.c.sim_slots)
    rows = [
        {
            "id": new_id("dev"),
            "channel_id": channel_id,
            "external_id": external_id,
            "name": "",
            "sim_slots": sorted(slots[(channel_id, external_id)]),
            "last_seen_at": now,
            "created_at": now,
        }
        for channel_id, external_id in sorted(slots)
    ]
    found = (await session.execute(stmt, rows)).all()
    ids: dict[tuple[str, str], str] = {}
    for device_id, channel_id, external_id, known in found:
        ids[(channel_id, external_id)] = device_id
        new_slots = slots[(channel_id, external_id)] - set(known or [])
        if new_slots:  # a SIM slot seen for the first time: rare, so one UPDATE each
            await session.execute(
                sa.update(Device)
                .where(col(Device.id) == device_id)
                .values(sim_slots=sorted({*(known or []), *new_slots}))
            )
    return ids


async def _insert_received(
    hub: Hub,
    session: AsyncSession,
    received: list[_Received],
    contacts: dict[str, tuple[str, bool]],
    devices: dict[tuple[str, str], str],
    now: datetime,
) -> set[str]:
    """Insert the events (duplicates skipped), then their messages and dispatch jobs."""
    if not received:
        return set()
    events = Event.__table__  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    for item in received:
        device_id = devices.get((item.channel.id, item.event.device_id or ""))
        rows.append(
            {
                "id": item.event_id,
                "channel_id": item.channel.id,
                "type": "sms.received",
                "dedupe_key": item.event.dedupe_key[:200],
                "message_id": item.message_id,
                "created_at": now,
                "payload": envelope(
                    item.event_id,
                    "sms.received",
                    now,
                    {
                        "message_id": item.message_id,
                        "from": item.sender,
                        "to": item.recipient,
                        "body": item.body,
                        "channel_id": item.channel.id,
                        "device_id": device_id,
                        "sim_slot": item.event.sim_slot,
                        "segments": item.segments,
                        "encoding": item.encoding,
                        "received_at": iso(item.event.occurred_at or now),
                        "contact_id": contacts[item.sender][0],
                    },
                ),
            }
        )
    stmt = (
        _insert(session)(events)
        .on_conflict_do_nothing(index_elements=["channel_id", "dedupe_key"])
        .returning(events.c.id)
    )
    inserted = set((await session.execute(stmt, rows)).scalars())
    fresh = [item for item in received if item.event_id in inserted]
    if not fresh:
        return inserted
    await session.execute(
        sa.insert(Message.__table__),  # type: ignore[attr-defined]
        [
            {
                "id": item.message_id,
                "direction": "inbound",
                "channel_id": item.channel.id,
                "device_id": devices.get((item.channel.id, item.event.device_id or "")),
                "sim_slot": item.event.sim_slot,
                "contact_id": contacts[item.sender][0],
                "from_number": item.sender,
                "to_number": item.recipient,
                "body": item.body,
                "segments": item.segments,
                "encoding": item.encoding,
                "status": "received",
                "provider_message_id": item.event.provider_message_id,
                "source": "gateway",
                "bypass_opt_out": False,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for item in fresh
        ],
    )
    # The gateway's event is the public one (status reports instead become public through
    # the message's status transition, hub.services.messages.record_status); its sinks run
    # here, in this transaction, for the whole batch at once.
    by_id = {row["id"]: row["payload"] for row in rows}
    await dispatch_inline(hub, session, [by_id[item.event_id] for item in fresh])
    return inserted


async def _report_one(
    hub: Hub, session: AsyncSession, channel: ChannelRuntime, event: InboundEvent, now: datetime
) -> str | None:
    """A delivery report: its event row (dedupe), then the message's status move."""
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
    message_id, payload = await _status_report(hub, session, channel, event, event_id, now)
    await session.execute(
        sa.update(Event)
        .where(col(Event.id) == event_id)
        .values(message_id=message_id, payload=payload)
    )
    return event_id


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
    message = await _outbound_by_provider_id(session, channel.id, event.provider_message_id)
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
        message = await _outbound_by_provider_id(session, row.channel_id, event.provider_message_id)
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
