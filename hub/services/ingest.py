"""Ingest: normalized gateway events into the database, in one short write transaction.

This is the hot path. Per event: the event row (unique on channel + dedupe key, so a
gateway's retry is a no-op), the message and contact changes, opt-out handling
(``hub.services.optouts``), delivery reports (``hub.services.reports``), and the event
sinks of the wiring (flows, webhook deliveries), all in the same transaction. Nothing
slow happens here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import InboundEvent
from connectors.segments import segment_info
from flows.ports import DeviceRef
from hub.context import ChannelRuntime, Hub, IngestResult
from hub.dbutil import dialect_insert
from hub.event_data import channel_ref, envelope, sms_received
from hub.ids import new_id
from hub.metrics import EVENTS
from hub.models import Contact, Device, Event, Message, utcnow
from hub.phone import normalize_address
from hub.services.events import dispatch_inline
from hub.services.keywords import classify
from hub.services.optouts import handle_keyword
from hub.services.reports import store_report

log = logging.getLogger("smshub.ingest")


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
        if not events:
            return IngestResult()
        clean = [_sanitized(e) for e in events]
        item = _Item(channel, clean, asyncio.get_running_loop().create_future())
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
    return await hub.ingest.submit(channel, events)


#: Longest provider ids and words the tables keep (a gateway's odd value is cut, not fatal).
_FIELD_LIMITS = {"provider_message_id": 200, "device_id": 200, "provider_status": 64}
#: Plausible ranges of a gateway's numbers; a value outside is dropped (the SMS is kept).
_INT_RANGES = {"sim_slot": range(0, 256), "segments": range(1, 256)}


def _sanitized(event: InboundEvent) -> InboundEvent:
    """A gateway's event fit for any database: NUL replaced by U+FFFD (PostgreSQL text
    cannot hold it), ids and status words cut to their column sizes, a nonsense SIM slot
    or part count (past any integer column) forgotten rather than the SMS refused."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, str):
            clean = value.replace("\x00", "\ufffd")[: _FIELD_LIMITS.get(f.name, len(value))]
            if clean != value:
                changes[f.name] = clean
        elif isinstance(value, int) and f.name in _INT_RANGES and value not in _INT_RANGES[f.name]:
            log.warning("ignoring %s=%s from a gateway (out of range)", f.name, value)
            changes[f.name] = None
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
                    await handle_keyword(hub, session, contact, message, now)
        for index, channel, event in reports:
            event_id = await store_report(session, channel, event, now)
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


async def _upsert_contacts(
    session: AsyncSession, phones: set[str], now: datetime
) -> dict[str, tuple[str, bool]]:
    """phone → (contact id, opted out), creating missing contacts."""
    if not phones:
        return {}
    table = Contact.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session)(table)
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
) -> dict[tuple[str, str], DeviceRef]:
    """(channel, gateway device id) → the device; marks each seen and learns SIM slots."""
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
    insert = dialect_insert(session)(table)
    stmt = insert.on_conflict_do_update(
        index_elements=["channel_id", "external_id"],
        set_={"last_seen_at": insert.excluded.last_seen_at},
    ).returning(
        table.c.id, table.c.channel_id, table.c.external_id, table.c.name, table.c.sim_slots
    )
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
    devices: dict[tuple[str, str], DeviceRef] = {}
    for device_id, channel_id, external_id, name, known in found:
        devices[(channel_id, external_id)] = {
            "id": device_id,
            "gateway_id": external_id,
            "name": name or None,
        }
        new_slots = slots[(channel_id, external_id)] - set(known or [])
        if new_slots:  # a SIM slot seen for the first time: rare, so one UPDATE each
            await session.execute(
                sa.update(Device)
                .where(col(Device.id) == device_id)
                .values(sim_slots=sorted({*(known or []), *new_slots}))
            )
    return devices


#: The device of an SMS whose gateway named none (Twilio, Vonage).
_NO_DEVICE: DeviceRef = {"id": None, "gateway_id": None, "name": None}


async def _insert_received(
    hub: Hub,
    session: AsyncSession,
    received: list[_Received],
    contacts: dict[str, tuple[str, bool]],
    devices: dict[tuple[str, str], DeviceRef],
    now: datetime,
) -> set[str]:
    """Insert the events (duplicates skipped), then their messages, then hand the new
    events to the sinks; the ids of the events written."""
    if not received:
        return set()
    rows = [_event_row(item, contacts, devices, now) for item in received]
    events = Event.__table__  # type: ignore[attr-defined]
    stmt = (
        dialect_insert(session)(events)
        .on_conflict_do_nothing(index_elements=["channel_id", "dedupe_key"])
        .returning(events.c.id)
    )
    inserted = set((await session.execute(stmt, rows)).scalars())
    fresh = [(item, row) for item, row in zip(received, rows, strict=True) if row["id"] in inserted]
    if not fresh:
        return inserted
    await session.execute(
        sa.insert(Message.__table__),  # type: ignore[attr-defined]
        [_message_row(item, row["payload"]["data"], now) for item, row in fresh],
    )
    # The gateway's event is the public one (status reports instead become public through
    # the message's status transition, hub.services.messages.record_status); its sinks run
    # here, in this transaction, for the whole batch at once.
    await dispatch_inline(hub, session, [row["payload"] for _, row in fresh])
    return inserted


def _event_row(
    item: _Received,
    contacts: dict[str, tuple[str, bool]],
    devices: dict[tuple[str, str], DeviceRef],
    now: datetime,
) -> dict[str, Any]:
    """The events row of an inbound SMS, its public payload built from the contract."""
    device = devices.get((item.channel.id, item.event.device_id or ""), _NO_DEVICE)
    data = sms_received(
        message_id=item.message_id,
        sender=item.sender,
        recipient=item.recipient,
        body=item.body,
        sim_slot=item.event.sim_slot,
        segments=item.segments,
        encoding=item.encoding,
        received_at=item.event.occurred_at or now,
        contact_id=contacts[item.sender][0],
        channel=channel_ref(item.channel),
        device=device,
    )
    return {
        "id": item.event_id,
        "channel_id": item.channel.id,
        "type": "sms.received",
        "dedupe_key": item.event.dedupe_key[:200],
        "message_id": item.message_id,
        "created_at": now,
        "payload": envelope(item.event_id, "sms.received", now, data),
    }


def _message_row(item: _Received, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The messages row of an inbound SMS."""
    return {
        "id": item.message_id,
        "direction": "inbound",
        "channel_id": item.channel.id,
        "device_id": data["device_id"],
        "sim_slot": item.event.sim_slot,
        "contact_id": data["contact_id"],
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
