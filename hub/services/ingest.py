"""Ingest: normalized gateway events into the database, in one short unit of work.

This is the hot path. Per event: the event row (unique on channel + dedupe key, so a
gateway's retry is a no-op), the message and contact changes, opt-out handling
(``hub.services.optouts``) and the event sinks of the wiring (flows, webhook deliveries)
through ``hub.services.received``, parts of long SMS through ``hub.services.concat``,
delivery reports (``hub.services.reports``), all in the same unit (``hub.store``),
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
from hub.event_data import channel_ref
from hub.ids import new_id
from hub.metrics import EVENTS
from hub.models import utcnow
from hub.phone import normalize_address
from hub.services.concat import stash_parts
from hub.services.devices import mark_online
from hub.services.received import Received, store_received, upsert_contacts
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
    contacts = yield from upsert_contacts({r.sender for r in received}, now)
    devices = yield from _upsert_devices(hub, requests, now)
    # Parts of long SMS wait in hub.services.concat; a message they complete is stored
    # here with the whole SMS of the batch.
    parts = [item for item in received if item.event.part is not None]
    whole = [item for item in received if item.event.part is None]
    stashed, joined = yield from stash_parts(hub, parts, hub.clock(), now)
    inserted = yield from store_received(hub, whole + joined, contacts, devices, now)
    for item in received:
        stored = item.event_id in (stashed if item.event.part else inserted)
        outcome.append((item.request, item.event, item.event_id if stored else None))
    for index, channel, event in reports:
        event_id = yield from store_report(hub, channel, event, now)
        outcome.append((index, event, event_id))
    return outcome


def _count(result: IngestResult, event: InboundEvent, event_id: str | None) -> None:
    if event_id == "":  # a heartbeat: taken, but no event row
        result.stored += 1
    elif event_id is None:
        result.duplicates += 1
    else:
        result.stored += 1
        result.event_ids.append(event_id)
    EVENTS.labels(event.type, "duplicate" if event_id is None else "stored").inc()


def _prepare(
    hub: Hub, requests: list[tuple[ChannelRuntime, list[InboundEvent]]]
) -> tuple[list[Received], list[tuple[int, ChannelRuntime, InboundEvent]], _Outcome]:
    """Normalize numbers and count segments; drop repeats of a key within the batch
    (they are counted as duplicates in the outcome)."""
    region = hub.settings.default_region
    received: list[Received] = []
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
            if event.type == "device.heartbeat":  # the device is marked seen, nothing stored
                outcome.append((index, event, ""))
                continue
            if event.type != "sms.received":
                reports.append((index, channel, event))
                continue
            body = event.body or ""
            info = segment_info(body)
            received.append(
                Received(
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


_DEVICE_COLUMNS = (
    "id",
    "channel_id",
    "external_id",
    "name",
    "sim_slots",
    "last_seen_at",
    "created_at",
)


def _upsert_devices(
    hub: Hub, requests: list[tuple[ChannelRuntime, list[InboundEvent]]], now: datetime
) -> Unit[dict[tuple[str, str], DeviceRef]]:
    """(channel, gateway device id) → the device; marks each seen (at the hub's clock, which
    the offline watch reads), learns SIM slots, and announces a device back online."""
    slots: dict[tuple[str, str], set[int]] = {}
    for channel, events in requests:
        for event in events:
            if event.device_id:
                seen = slots.setdefault((channel.id, event.device_id), set())
                if event.sim_slot is not None:
                    seen.add(event.sim_slot)
    if not slots:
        return {}
    seen_at = hub.clock()
    found = yield from insert_rows(
        "devices",
        _DEVICE_COLUMNS,
        [
            (new_id("dev"), ch, ext, "", Json(sorted(slots[(ch, ext)])), seen_at, now)
            for ch, ext in sorted(slots)
        ],
        conflict="ON CONFLICT (channel_id, external_id) "
        "DO UPDATE SET last_seen_at = excluded.last_seen_at",
        returning="id, channel_id, external_id, name, sim_slots, offline_at",
    )
    channels = {channel.id: channel for channel, _events in requests}
    devices: dict[tuple[str, str], DeviceRef] = {}
    for device_id, channel_id, external_id, name, raw_known, offline_at in found:
        device: DeviceRef = {"id": device_id, "gateway_id": external_id, "name": name or None}
        devices[(channel_id, external_id)] = device
        if offline_at is not None:  # rare: it was announced offline, and is heard again
            yield from mark_online(hub, device, channel_ref(channels[channel_id]), seen_at)
        known = set(as_json(raw_known) or [])
        new_slots = slots[(channel_id, external_id)] - known
        if new_slots:  # a SIM slot seen for the first time: rare, so one UPDATE each
            yield from execute(
                "UPDATE devices SET sim_slots = ? WHERE id = ?",
                (Json(sorted(known | new_slots)), device_id),
            )
    return devices
