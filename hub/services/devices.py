"""Devices going silent and coming back: ``device.offline`` and ``device.online``.

Every event a phone sends (an SMS, a delivery report, SMS Gateway for Android's
``system:ping``) marks its device seen at the hub's clock (``hub.services.ingest``). The
periodic ``device_watch`` job announces ``device.offline`` for a device of a heartbeat
gateway (``Capabilities.heartbeats``) silent for ``SMSHUB_DEVICE_OFFLINE_AFTER_S``; the
next event from it announces ``device.online``, in the same unit as the event.

Each is raised once per change, whatever crashes or concurrent hubs do: the state is
``devices.offline_at``, and only the statement that actually flips it (``offline_at IS
NULL`` → now, or back) emits, in the same unit; the event's dedupe key names the change
too, so a replayed unit cannot announce it twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from connectors.registry import all_connectors
from hub.context import Hub
from hub.event_data import ChannelRef, DeviceRef, device_status, iso
from hub.services.events import emit
from hub.store import Unit, as_datetime, execute, fetch_all, placeholders

log = logging.getLogger("smshub.devices")

#: Periodic job: announce the devices that went silent.
DEVICE_WATCH = "device_watch"
#: Seconds between two watches (a device is announced at most this late).
WATCH_INTERVAL_S = 60.0


async def device_watch(hub: Hub) -> None:
    """Job: ``device.offline`` for every watched device silent for too long."""
    after = hub.settings.device_offline_after_s
    if after <= 0:
        return
    now = hub.clock()
    count = await hub.store.write(mark_offline(hub, now, now - timedelta(seconds=after)))
    if count:
        log.info("%d device(s) offline: nothing heard for %g s", count, after)


def watched_connectors() -> list[str]:
    """Names of the connectors whose devices ping: their silence means trouble."""
    return sorted(c.name for c in all_connectors() if c.capabilities.heartbeats)


def mark_offline(hub: Hub, now: datetime, cutoff: datetime) -> Unit[int]:
    """Unit: flag the watched devices of live channels last seen before ``cutoff`` offline
    and emit ``device.offline`` for each; how many."""
    names = watched_connectors()
    if not names:
        return 0
    rows = yield from fetch_all(
        "UPDATE devices SET offline_at = ? WHERE offline_at IS NULL "
        "AND last_seen_at IS NOT NULL AND last_seen_at < ? AND channel_id IN "
        "(SELECT id FROM channels WHERE enabled = ? AND deleted_at IS NULL "
        f"AND connector IN ({placeholders(len(names))})) "
        "RETURNING id, channel_id, external_id, name, last_seen_at",
        (now, cutoff, True, *names),
    )
    channels = yield from _channel_refs({row[1] for row in rows})
    for device_id, channel_id, external_id, name, last_seen in rows:
        device: DeviceRef = {"id": device_id, "gateway_id": external_id, "name": name or None}
        yield from emit(
            hub,
            type="device.offline",
            channel_id=channel_id,
            dedupe_key=f"device.offline:{device_id}:{iso(now)}",
            data=device_status(
                status="offline",
                device=device,
                channel=channels[channel_id],
                last_seen_at=as_datetime(last_seen),
                offline_at=now,
                offline_after_s=hub.settings.device_offline_after_s,
            ),
            at=now,
        )
    return len(rows)


def mark_online(hub: Hub, device: DeviceRef, channel: ChannelRef, seen_at: datetime) -> Unit[bool]:
    """Unit: a device announced offline was heard at ``seen_at``: clear the flag and emit
    ``device.online``; False when another unit cleared it first."""
    row = yield from fetch_all(
        "SELECT offline_at FROM devices WHERE id = ? AND offline_at IS NOT NULL", (device["id"],)
    )
    if not row:
        return False
    offline_at = as_datetime(row[0][0])
    result = yield from execute(
        "UPDATE devices SET offline_at = NULL WHERE id = ? AND offline_at IS NOT NULL",
        (device["id"],),
    )
    if result.rowcount != 1:
        return False
    yield from emit(
        hub,
        type="device.online",
        channel_id=channel["id"],
        dedupe_key=f"device.online:{device['id']}:{iso(offline_at or seen_at)}",
        data=device_status(
            status="online",
            device=device,
            channel=channel,
            last_seen_at=seen_at,
            offline_at=offline_at,
            offline_after_s=hub.settings.device_offline_after_s,
        ),
        at=seen_at,
    )
    return True


def _channel_refs(channel_ids: set[str]) -> Unit[dict[str, ChannelRef]]:
    if not channel_ids:
        return {}
    ids = sorted(channel_ids)
    rows = yield from fetch_all(
        f"SELECT id, name, connector FROM channels WHERE id IN ({placeholders(len(ids))})", ids
    )
    return {id_: {"id": id_, "name": name, "connector": connector} for id_, name, connector in rows}
