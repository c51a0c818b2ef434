"""Ingest: normalized gateway events into the database, in one short unit of work.

This is the hot path. Per event: the event row (unique on channel + dedupe key, so a
gateway's retry is a no-op), the message and contact changes, opt-out handling
(``hub.services.optouts``), delivery reports (``hub.services.reports``), and the event
sinks of the wiring (flows, webhook deliveries), all in the same unit (``hub.store``),
group-committed with whatever else the hub writes meanwhile. Nothing slow happens here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime
from typing import Any

from connectors.base import InboundEvent
from connectors.segments import segment_info
from flows.ports import DeviceRef
from hub.context import ChannelRuntime, Hub, IngestResult
from hub.event_data import channel_ref, envelope, sms_received
from hub.ids import new_id
from hub.metrics import EVENTS
from hub.models import utcnow
from hub.phone import normalize_address
from hub.services.broadcasts import mark_replied, reply_links
from hub.services.events import dispatch_inline
from hub.services.keywords import classify
from hub.services.messages import NEW_MESSAGE_COLUMNS, load_message
from hub.services.optouts import handle_keyword
from hub.services.reports import store_report
from hub.store import Json, Unit, as_json, execute, insert_rows

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
    """Write several requests' events in ONE unit; a result per request.

    Inbound SMS (the bulk) take a handful of set-based statements for the whole batch:
    upsert contacts, upsert devices, insert events (ON CONFLICT DO NOTHING: a retry is a
    no-op), insert messages, hand the new events to the sinks. Keywords and delivery
    reports, rarer and richer, then take the per-event path.
    """
    await hub.flows.index()  # fresh enough for the flows sink, which cannot wait
    outcome = await hub.store.write(_write_unit(hub, requests))
    results = [IngestResult() for _ in requests]
    for index, event, event_id in outcome:
        _count(results[index], event, event_id)
    return results


_Outcome = list[tuple[int, InboundEvent, str | None]]


def _write_unit(
    hub: Hub, requests: list[tuple[ChannelRuntime, list[InboundEvent]]]
) -> Unit[_Outcome]:
    now = utcnow()
    received, reports, outcome = _prepare(hub, requests)
    contacts = yield from _upsert_contacts({r.sender for r in received}, now)
    devices = yield from _upsert_devices(requests, now)
    inserted = yield from _insert_received(hub, received, contacts, devices, now)
    for item in received:
        stored = item.event_id in inserted
        outcome.append((item.request, item.event, item.event_id if stored else None))
        if stored and classify(item.body, hub.settings.keywords) is not None:
            inbound = yield from load_message(hub, item.message_id)
            if inbound is not None:
                yield from handle_keyword(hub, inbound, now)
    for index, channel, event in reports:
        event_id = yield from store_report(hub, channel, event, now)
        outcome.append((index, event, event_id))
    return outcome


def _count(result: IngestResult, event: InboundEvent, event_id: str | None) -> None:
    if event_id is None:
        result.duplicates += 1
    else:
        result.stored += 1
        result.event_ids.append(event_id)
    EVENTS.labels(event.type, "duplicate" if event_id is None else "stored").inc()


def _prepare(
    hub: Hub, requests: list[tuple[ChannelRuntime, list[InboundEvent]]]
) -> tuple[list[_Received], list[tuple[int, ChannelRuntime, InboundEvent]], _Outcome]:
    """Normalize numbers and count segments; drop repeats of a key within the batch
    (they are counted as duplicates in the outcome)."""
    region = hub.settings.default_region
    received: list[_Received] = []
    reports: list[tuple[int, ChannelRuntime, InboundEvent]] = []
    outcome: _Outcome = []
    seen: set[tuple[str, str]] = set()
    for index, (channel, events) in enumerate(requests):
        for event in events:
            key = (channel.id, event.dedupe_key[:200])
            if key in seen:  # the same event twice in one batch: a concurrent retry
                outcome.append((index, event, None))
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
    return received, reports, outcome


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
_DEVICE_COLUMNS = (
    "id",
    "channel_id",
    "external_id",
    "name",
    "sim_slots",
    "last_seen_at",
    "created_at",
)
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


def _upsert_contacts(phones: set[str], now: datetime) -> Unit[dict[str, tuple[str, bool]]]:
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


def _upsert_devices(
    requests: list[tuple[ChannelRuntime, list[InboundEvent]]], now: datetime
) -> Unit[dict[tuple[str, str], DeviceRef]]:
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
    found = yield from insert_rows(
        "devices",
        _DEVICE_COLUMNS,
        [
            (new_id("dev"), ch, ext, "", Json(sorted(slots[(ch, ext)])), now, now)
            for ch, ext in sorted(slots)
        ],
        conflict="ON CONFLICT (channel_id, external_id) "
        "DO UPDATE SET last_seen_at = excluded.last_seen_at",
        returning="id, channel_id, external_id, name, sim_slots",
    )
    devices: dict[tuple[str, str], DeviceRef] = {}
    for device_id, channel_id, external_id, name, raw_known in found:
        devices[(channel_id, external_id)] = {
            "id": device_id,
            "gateway_id": external_id,
            "name": name or None,
        }
        known = set(as_json(raw_known) or [])
        new_slots = slots[(channel_id, external_id)] - known
        if new_slots:  # a SIM slot seen for the first time: rare, so one UPDATE each
            yield from execute(
                "UPDATE devices SET sim_slots = ? WHERE id = ?",
                (Json(sorted(known | new_slots)), device_id),
            )
    return devices


#: The device of an SMS whose gateway named none (Twilio, Vonage).
_NO_DEVICE: DeviceRef = {"id": None, "gateway_id": None, "name": None}


def _insert_received(
    hub: Hub,
    received: list[_Received],
    contacts: dict[str, tuple[str, bool]],
    devices: dict[tuple[str, str], DeviceRef],
    now: datetime,
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


def _event_row(item: _Received, payload: dict[str, Any], now: datetime) -> tuple[Any, ...]:
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
    item: _Received,
    contacts: dict[str, tuple[str, bool]],
    devices: dict[tuple[str, str], DeviceRef],
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
    )
    return envelope(item.event_id, "sms.received", now, data)


def _message_row(item: _Received, data: dict[str, Any], now: datetime) -> tuple[Any, ...]:
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
