"""Long inbound SMS: the parts of one message joined into ONE ``sms.received``.

Gateways that hand over a long SMS part by part (Vonage) say which part each event is
(``InboundEvent.part``: the message's reference, its number of parts, this part's number).
Nothing downstream — flows, webhooks, conversations, keywords — sees a part: it sees the
message joined from them. What holds, and where the code makes it hold:

- **A part is on disk before its webhook is answered.** :func:`stash_parts` runs in the
  ingest unit: the part's ``events`` row (type ``sms.part``, never published; unique on
  channel + the gateway's id of the part, so a retried part is a no-op exactly like a
  retried SMS) and its ``concat_parts`` row.
- **One message, once.** The parts of (channel, sender, reference) meet in one
  ``concat_groups`` row (unique on those three). Every writer locks that row (an
  ``UPDATE`` of it) before it adds a part or releases the group, so two processes on
  PostgreSQL serialize per message: the one that adds the last part sees every other
  part. Releasing DELETEs the group and its parts in the unit that creates the message,
  so whoever releases it — the last part, or the timeout job — is the only one; the
  message's event is keyed ``concat:<group id>`` besides.
- **Nothing waits for ever.** The group's ``concat_release`` job (key ``concat:<group
  id>``, due at the first part + ``SMSHUB_CONCAT_WAIT_S``) is written with the group, so a
  restart loses none; it releases what arrived as one message with ``data.incomplete``.
- **A part that comes after its message was released** finds no group and opens a new one:
  it becomes a message of its own (incomplete) when that group's window ends. It is not
  dropped (nothing acknowledged is lost), and not merged into the earlier message (that
  was published already). A part whose number (or total) does not fit the open group is a
  new message reusing the reference (handsets count references round): the open group is
  released as it stands and the part starts a new one.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from connectors.base import InboundEvent
from connectors.segments import segment_info
from flows.ports import DeviceRef
from hub.context import ChannelRuntime, Hub
from hub.event_data import ConcatPartsRef
from hub.ids import new_id
from hub.models import utcnow
from hub.queue.base import Retry, enqueue_job
from hub.services.received import Devices, Received, store_received, upsert_contacts
from hub.store import Json, Unit, as_datetime, as_json, execute, fetch_all, fetch_one

log = logging.getLogger("smshub.concat")

#: Job: release a long SMS whose parts did not all arrive within the window.
CONCAT_RELEASE = "concat_release"
#: The events type of a stored part (kept for dedupe and history, never published).
PART_EVENT = "sms.part"
#: Longest reference kept (the column's size).
_REF_LIMIT = 64

_INSERT_PART_EVENT = (
    "INSERT INTO events (id, channel_id, type, dedupe_key, message_id, payload, created_at) "
    "VALUES (?, ?, ?, ?, NULL, ?, ?) ON CONFLICT (channel_id, dedupe_key) DO NOTHING "
    "RETURNING id"
)
_INSERT_GROUP = (
    "INSERT INTO concat_groups (id, channel_id, sender, ref, total, first_at, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, sender, ref) DO NOTHING RETURNING id"
)
#: Locks the open group of a reference (an UPDATE takes the row lock on PostgreSQL).
_LOCK_GROUP = (
    "UPDATE concat_groups SET total = total WHERE channel_id = ? AND sender = ? AND ref = ? "
    "RETURNING id, total"
)
_LOCK_GROUP_BY_ID = "UPDATE concat_groups SET total = total WHERE id = ? RETURNING total"


@dataclasses.dataclass(frozen=True)
class _Group:
    """An open group, locked by this unit."""

    id: str
    channel: ChannelRuntime
    sender: str
    total: int


def stash_parts(
    hub: Hub, parts: list[Received], clock_now: datetime, now: datetime
) -> Unit[tuple[set[str], list[Received]]]:
    """Unit (in the ingest unit): store each part (a repeat skipped); the ids of the parts
    stored, and the messages joined from groups now complete (or replaced by a new message
    reusing their reference), for the caller to store like any inbound SMS."""
    stored: set[str] = set()
    joined: list[Received] = []
    # One order for every writer: concurrent batches lock groups alike (PostgreSQL).
    for item in sorted(parts, key=_lock_order):
        fresh = yield from _stash(hub, item, clock_now, now, joined)
        if fresh:
            stored.add(item.event_id)
    return stored, joined


def _lock_order(item: Received) -> tuple[str, str, str, int]:
    part = item.event.part
    assert part is not None
    return (item.channel.id, item.sender, part.ref, part.number)


def _stash(
    hub: Hub, item: Received, clock_now: datetime, now: datetime, joined: list[Received]
) -> Unit[bool]:
    """Store one part; release its group when that completes it. False for a repeat."""
    part = item.event.part
    assert part is not None
    found = yield from fetch_all(
        _INSERT_PART_EVENT,
        (
            item.event_id,
            item.channel.id,
            PART_EVENT,
            item.event.dedupe_key[:200],
            Json(_part_payload(item)),
            now,
        ),
    )
    if not found:
        return False
    group = yield from _open_group(hub, item, clock_now)
    fits = group.total == part.total and (yield from _insert_part(group, item, now))
    if not fits:
        # Another message under the same reference: release the open one as it stands.
        joined.append((yield from _release(group, now)))
        group = yield from _open_group(hub, item, clock_now)
        yield from _insert_part(group, item, now)
    counted = yield from fetch_one(
        "SELECT COUNT(*) FROM concat_parts WHERE group_id = ?", (group.id,)
    )
    if counted is not None and int(counted[0]) >= group.total:
        joined.append((yield from _release(group, now)))
    return True


def _part_payload(item: Received) -> dict[str, Any]:
    """What the part's events row keeps: where it belongs, not its text (which the joined
    message holds, under the body retention)."""
    part = item.event.part
    assert part is not None
    return {
        "type": PART_EVENT,
        "data": {
            "from": item.sender,
            "provider_message_id": item.event.provider_message_id,
            "part": dataclasses.asdict(part),
        },
    }


def _open_group(hub: Hub, item: Received, clock_now: datetime) -> Unit[_Group]:
    """The open group of the part's reference, locked: an existing one, or a new one with
    its release job."""
    part = item.event.part
    assert part is not None
    ref = part.ref[:_REF_LIMIT]
    for _ in range(3):
        group_id = new_id("cgr")
        created = yield from fetch_all(
            _INSERT_GROUP,
            (group_id, item.channel.id, item.sender, ref, part.total, clock_now, clock_now),
        )
        if created:
            yield from enqueue_job(
                CONCAT_RELEASE,
                {"group_id": group_id},
                run_at=clock_now + timedelta(seconds=hub.settings.concat_wait_s),
                key=f"concat:{group_id}",
            )
            return _Group(group_id, item.channel, item.sender, part.total)
        # Someone else's group: lock it (after its writer committed, on PostgreSQL).
        locked = yield from fetch_one(_LOCK_GROUP, (item.channel.id, item.sender, ref))
        if locked is not None:
            return _Group(str(locked[0]), item.channel, item.sender, int(locked[1]))
        # Released between the two statements: open a new one.
    raise RuntimeError(f"the concat group of {ref!r} kept vanishing")


def _insert_part(group: _Group, item: Received, now: datetime) -> Unit[bool]:
    """Add the part to its group; False when the group has that part number already."""
    part = item.event.part
    assert part is not None
    found = yield from fetch_all(
        "INSERT INTO concat_parts (id, group_id, number, event, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_id, number) DO NOTHING RETURNING id",
        # The normalized recipient kept for the message (the sender is the group's).
        (new_id("cpt"), group.id, part.number, Json(_part_json(item)), now),
    )
    return bool(found)


def _part_json(item: Received) -> dict[str, Any]:
    return dataclasses.replace(item.event, to_number=item.recipient).to_json()


def _release(group: _Group, now: datetime) -> Unit[Received]:
    """Delete the (locked) group and its parts; the one message they make."""
    rows = yield from fetch_all(
        "DELETE FROM concat_parts WHERE group_id = ? RETURNING number, event", (group.id,)
    )
    yield from execute("DELETE FROM concat_groups WHERE id = ?", (group.id,))
    parts = sorted((int(number), InboundEvent.from_json(as_json(raw))) for number, raw in rows)
    return _joined(group, parts)


def _joined(group: _Group, parts: list[tuple[int, InboundEvent]]) -> Received:
    """The message of a group's parts: their texts in part order, the first part's id,
    sender, device and time."""
    first = parts[0][1]
    body = "".join(event.body or "" for _, event in parts)
    numbers = {number for number, _ in parts}
    info: ConcatPartsRef = {
        "total": group.total,
        "received": len(parts),
        "missing": [n for n in range(1, group.total + 1) if n not in numbers],
        "provider_message_ids": [event.provider_message_id for _, event in parts],
    }
    # The public event's key: the parts' own keys are taken by their sms.part rows.
    event = dataclasses.replace(
        first, dedupe_key=f"concat:{group.id}", body=body, part=None, segments=None
    )
    return Received(
        request=-1,
        channel=group.channel,
        event=event,
        event_id=new_id("evt"),
        message_id=new_id("msg"),
        sender=group.sender,
        recipient=first.to_number,
        body=body,
        segments=len(parts),
        encoding=segment_info(body).encoding,
        parts=info,
    )


# --- the window ---------------------------------------------------------------------------


async def concat_release(hub: Hub, group_id: str) -> None:
    """Job: release a group whose window has passed as one message of what arrived (gone
    already when its last part completed it)."""
    channel_id = await hub.store.read(_fetch_channel_id(group_id))
    if channel_id is None:
        return
    channel = await hub.channels.get(channel_id)
    if channel is None:
        log.warning("dropping the parts of %s: channel %s is gone", group_id, channel_id)
        await hub.store.write(_drop(group_id))
        return
    await hub.flows.index()  # fresh enough for the flows sink, which cannot wait
    left = await hub.store.write(_release_due(hub, group_id, channel))
    if left > 0:
        raise Retry(left, count_attempt=False, reason="the concat window has not passed")


def _fetch_channel_id(group_id: str) -> Unit[str | None]:
    row = yield from fetch_one("SELECT channel_id FROM concat_groups WHERE id = ?", (group_id,))
    return str(row[0]) if row else None


def _release_due(hub: Hub, group_id: str, channel: ChannelRuntime) -> Unit[float]:
    """Unit: release the group if its window has passed (else the seconds left).

    Locks as an ingest batch does, so the two cannot deadlock on PostgreSQL: the contact
    first (upserted), then the group. Sender and first part's time never change, so they
    are read before either lock."""
    found = yield from fetch_one(
        "SELECT sender, first_at FROM concat_groups WHERE id = ?", (group_id,)
    )
    if found is None:
        return 0.0  # completed (or released) meanwhile
    sender, first_at = str(found[0]), as_datetime(found[1])
    assert first_at is not None
    left = (first_at + timedelta(seconds=hub.settings.concat_wait_s) - hub.clock()).total_seconds()
    if left > 0:
        return left
    now = utcnow()
    contacts = yield from upsert_contacts({sender}, now)
    locked = yield from fetch_one(_LOCK_GROUP_BY_ID, (group_id,))
    if locked is None:
        return 0.0  # its last part completed it while we waited for the lock
    item = yield from _release(_Group(group_id, channel, sender, int(locked[0])), now)
    devices = yield from _device(channel, item.event.device_id)
    yield from store_received(hub, [item], contacts, devices, now)
    log.info("released %s incomplete: %s", group_id, item.parts)
    return 0.0


def _device(channel: ChannelRuntime, external: str | None) -> Unit[Devices]:
    """The device of a message joined by the job (its parts' ingest recorded it)."""
    if not external:
        return {}
    found = yield from fetch_one(
        "SELECT id, name FROM devices WHERE channel_id = ? AND external_id = ?",
        (channel.id, external),
    )
    if found is None:
        return {}
    ref: DeviceRef = {"id": found[0], "gateway_id": external, "name": found[1] or None}
    return {(channel.id, external): ref}


def _drop(group_id: str) -> Unit[None]:
    yield from execute("DELETE FROM concat_parts WHERE group_id = ?", (group_id,))
    yield from execute("DELETE FROM concat_groups WHERE id = ?", (group_id,))
