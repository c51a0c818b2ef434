"""The work of a broadcast, as queue jobs: start (resolve the recipients once), batches of
recipients (a message or a flow run each), the finish check, and the units behind pause,
resume and cancel (:func:`hub.services.broadcasts.change_state`).

Each batch job takes the next pending recipients in contact order, and writes what they
get together with the next job (the next batch, or the finish check when the batch was
not full) in one unit: a crash re-runs a batch that finds the recipients it did already
done, so every recipient is handled once. Jobs carry the broadcast's ``generation``; a
resume starts a new generation, and a job of an older one (queued before a pause) stops.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from flows import FlowNotFoundError
from flows.ports import FLOW_STARTED
from hub.context import Hub
from hub.event_data import broadcast as broadcast_data
from hub.event_data import iso
from hub.models import utcnow
from hub.queue.base import Retry, enqueue_job
from hub.services.broadcasts import (
    NOT_HANDED,
    contact_context,
    counts,
    lock_status,
    render_text,
    write,
)
from hub.services.events import emit
from hub.services.flow_contacts import view_from_row
from hub.services.flow_schedules import tick_trigger
from hub.services.sending import MAX_TEXT_CHARS, create_outbound
from hub.store import (
    Unit,
    as_datetime,
    as_json,
    execute,
    fetch_all,
    fetch_one,
    placeholders,
)

log = logging.getLogger("smshub.broadcasts")

#: Job: one batch of a broadcast's recipients.
BROADCAST_BATCH = "broadcast_batch"
#: Job: mark a broadcast completed once every message has been handed over.
BROADCAST_FINISH = "broadcast_finish"
#: Recipients one text batch writes messages for (one unit).
BATCH_SIZE = 100
#: Recipients one flow batch starts runs for (each run runs to its first wait at once).
FLOW_BATCH_SIZE = 20
#: How often the finish check looks again while messages wait to be handed over: soon
#: when few are left, less often while many wait (a big list at a SIM's pace takes hours).
FINISH_POLL_S = 2.0
FINISH_POLL_MANY_S = 15.0

CONTACT_COLUMNS = (
    "c.id, c.phone, c.name, c.language, c.timezone, c.opted_out, c.tags, c.fields, "
    "c.deleted_at, c.blocked"
)


@dataclass(frozen=True)
class _Broadcast:
    id: str
    name: str
    status: str
    generation: int
    text: str | None
    flow_id: str | None
    flow_version: int | None
    channel_id: str | None
    quiet_hours: dict[str, Any] | None
    #: The parent run of a broadcast a ``flow.start`` node made (its runs' trigger data).
    origin: dict[str, Any] | None


def _load(broadcast_id: str) -> Unit[_Broadcast | None]:
    found = yield from fetch_one(
        "SELECT id, name, status, generation, text, flow_id, flow_version, channel_id, "
        "quiet_hours, origin FROM broadcasts WHERE id = ?",
        (broadcast_id,),
    )
    if found is None:
        return None
    values = list(found)
    values[8] = as_json(values[8]) if values[8] is not None else None
    values[9] = as_json(values[9]) if values[9] is not None else None
    return _Broadcast(*values)


# -- start ------------------------------------------------------------------------------


async def broadcast_start(hub: Hub, broadcast_id: str) -> None:
    """Job: at ``send_at``, resolve the recipients once and start the first batch."""
    await write(hub, lambda: _start(hub, broadcast_id))


def _start(hub: Hub, broadcast_id: str) -> Unit[None]:
    state = yield from lock_status(hub, broadcast_id)
    if state is None or state[0] != "scheduled":
        return  # cancelled before its time, or a re-run after it started
    row = yield from fetch_one(
        "SELECT group_ids, contact_ids, channel_id, flow_id FROM broadcasts WHERE id = ?",
        (broadcast_id,),
    )
    assert row is not None
    yield from _resolve(broadcast_id, as_json(row[0]), as_json(row[1]), row[2])
    version = None
    if row[3]:
        version = yield from fetch_one(
            "SELECT published_version FROM flows WHERE id = ?", (row[3],)
        )
    now = utcnow()
    yield from execute(
        "UPDATE broadcasts SET status = 'running', started_at = ?, updated_at = ?, "
        "flow_version = ? WHERE id = ?",
        (now, now, version[0] if version else None, broadcast_id),
    )
    yield from announce(hub, broadcast_id, "broadcast.started")
    yield from next_job(hub, broadcast_id, 0, 0, full=True)


def _resolve(
    broadcast_id: str, group_ids: list[str], contact_ids: list[str], channel_id: str | None
) -> Unit[None]:
    """Unit: the recipients, once: every contact named or in a group, each one row;
    blocked, opted-out and deleted contacts are stored ``skipped`` with the reason."""
    where: list[str] = []
    params: list[Any] = [broadcast_id, channel_id]
    if contact_ids:
        where.append(f"c.id IN ({placeholders(len(contact_ids))})")
        params += contact_ids
    if group_ids:
        where.append(
            "c.id IN (SELECT contact_id FROM group_members "
            f"WHERE group_id IN ({placeholders(len(group_ids))}))"
        )
        params += group_ids
    if not where:
        return
    yield from execute(
        "INSERT INTO broadcast_recipients (broadcast_id, contact_id, channel_id, status, "
        "skipped_reason) SELECT ?, c.id, ?, "
        "CASE WHEN c.blocked OR c.opted_out OR c.deleted_at IS NOT NULL THEN 'skipped' "
        "ELSE 'pending' END, CASE WHEN c.blocked THEN 'blocked' "
        "WHEN c.opted_out THEN 'opted_out' WHEN c.deleted_at IS NOT NULL THEN 'deleted' "
        f"END FROM contacts c WHERE {' OR '.join(where)} "
        "ON CONFLICT (broadcast_id, contact_id) DO NOTHING",
        params,
    )


def announce(hub: Hub, broadcast_id: str, type_: str) -> Unit[None]:
    """Unit: emit ``broadcast.started`` / ``broadcast.completed`` (once each)."""
    row = yield from fetch_one(
        "SELECT name, status, channel_id, flow_id, started_at, finished_at FROM broadcasts "
        "WHERE id = ?",
        (broadcast_id,),
    )
    assert row is not None
    found = yield from counts(broadcast_id)
    yield from emit(
        hub,
        type=type_,
        channel_id=row[2] or "hub",
        dedupe_key=f"{type_}:{broadcast_id}",
        data=broadcast_data(
            broadcast_id=broadcast_id,
            name=row[0],
            status=row[1],
            channel_id=row[2],
            flow_id=row[3],
            counts=found,
            started_at=as_datetime(row[4]),
            finished_at=as_datetime(row[5]),
        ),
    )


def next_job(hub: Hub, broadcast_id: str, generation: int, batch: int, *, full: bool) -> Unit[None]:
    """Unit: queue the next batch after a full one, else the finish check."""
    if full:
        yield from enqueue_job(
            BROADCAST_BATCH,
            {"broadcast_id": broadcast_id, "generation": generation, "batch": batch},
            key=f"bcast:{broadcast_id}:g{generation}:b{batch}",
            lease=hub.queue.lease(),
        )
    else:
        yield from enqueue_job(
            BROADCAST_FINISH,
            {"broadcast_id": broadcast_id, "generation": generation},
            key=f"bcast-done:{broadcast_id}:g{generation}",
            lease=hub.queue.lease(),
        )


# -- batches ----------------------------------------------------------------------------


async def broadcast_batch(hub: Hub, broadcast_id: str, generation: int, batch: int) -> None:
    """Job: the next pending recipients of a running broadcast get their message or run."""
    b = await hub.store.read(_load(broadcast_id))
    if b is None or b.status != "running" or b.generation != generation:
        return  # paused, cancelled, or a job of an earlier generation
    if b.flow_id:
        await _flow_batch(hub, b, batch)
    else:
        await _text_batch(hub, b, batch)


def _pending(broadcast_id: str, limit: int) -> Unit[list[tuple[Any, ...]]]:
    rows = yield from fetch_all(
        f"SELECT {CONTACT_COLUMNS} FROM broadcast_recipients r "
        "JOIN contacts c ON c.id = r.contact_id "
        "WHERE r.broadcast_id = ? AND r.status = 'pending' ORDER BY r.contact_id LIMIT ?",
        (broadcast_id, limit),
    )
    return rows


def text_for(template: str, row: tuple[Any, ...]) -> tuple[str | None, str | None]:
    """(text, None), or (None, why this contact is skipped)."""
    if row[9]:
        return None, "blocked"
    if row[5]:
        return None, "opted_out"
    if row[8] is not None:
        return None, "deleted"
    try:
        text = render_text(template, contact_context(row))
    except Exception as exc:  # a template error for this contact's data only
        return None, f"template: {exc}"[:300]
    if not text:
        return None, "template: the text is empty for this contact"
    if len(text) > MAX_TEXT_CHARS:
        return None, f"template: the text is longer than {MAX_TEXT_CHARS} characters"
    return text, None


async def _text_batch(hub: Hub, b: _Broadcast, batch: int) -> None:
    # Rendered here, outside the write: a slow template never holds the batching writer.
    rows = await hub.store.read(_pending(b.id, BATCH_SIZE))
    items = [(str(row[0]), str(row[1]), *text_for(b.text or "", row)) for row in rows]
    channel = await hub.channels.get(b.channel_id) if b.channel_id else None
    from_number = channel.phone_number if channel else None
    # The broadcast's quiet hours, else the channel's default (as API sends get).
    quiet_hours = b.quiet_hours or (channel.quiet_hours if channel else None)
    await write(hub, lambda: _queue_batch(hub, b, batch, items, from_number, quiet_hours))


def _queue_batch(
    hub: Hub,
    b: _Broadcast,
    batch: int,
    items: list[tuple[str, str, str | None, str | None]],
    from_number: str | None,
    quiet_hours: dict[str, Any] | None,
) -> Unit[None]:
    """Unit: per still-pending recipient a message (or its skip), then the next job."""
    state = yield from lock_status(hub, b.id)
    if state != ("running", b.generation):
        return  # paused or cancelled since the batch read its recipients
    ids = [item[0] for item in items]
    live: list[tuple[Any, ...]] = []
    if ids:
        live = yield from fetch_all(
            "SELECT c.id, c.opted_out, c.blocked FROM broadcast_recipients r JOIN contacts c "
            "ON c.id = r.contact_id WHERE r.broadcast_id = ? AND r.status = 'pending' "
            f"AND r.contact_id IN ({placeholders(len(ids))})",
            (b.id, *ids),
        )
    # Blocked or opted out since the batch read it: the reason, else None.
    pending = {
        str(row[0]): "blocked" if row[2] else "opted_out" if row[1] else None for row in live
    }
    now = utcnow()
    for contact_id, phone, text, reason in items:
        if contact_id not in pending:
            continue
        if pending[contact_id]:
            text, reason = None, pending[contact_id]
        if text is None:
            yield from _skip(b.id, contact_id, reason or "skipped")
            continue
        message = yield from create_outbound(
            hub,
            channel_id=b.channel_id or "",
            contact_id=contact_id,
            to=phone,
            text=text,
            from_number=from_number,
            idempotency_key=f"broadcast:{b.id}:{contact_id}",
            source="broadcast",
            quiet_hours=quiet_hours,
        )
        yield from execute(
            "UPDATE broadcast_recipients SET status = 'queued', message_id = ?, queued_at = ? "
            "WHERE broadcast_id = ? AND contact_id = ?",
            (message.id, now, b.id, contact_id),
        )
    yield from next_job(hub, b.id, b.generation, batch + 1, full=len(items) == BATCH_SIZE)


def _skip(broadcast_id: str, contact_id: str, reason: str) -> Unit[None]:
    yield from execute(
        "UPDATE broadcast_recipients SET status = 'skipped', skipped_reason = ? "
        "WHERE broadcast_id = ? AND contact_id = ? AND status = 'pending'",
        (reason[:300], broadcast_id, contact_id),
    )


def run_id_for(broadcast_id: str, contact_id: str) -> str:
    """The run a flow broadcast starts for a contact (the same on a re-run after a crash)."""
    digest = hashlib.sha256(f"broadcast\x00{broadcast_id}\x00{contact_id}".encode()).hexdigest()
    return f"run_{digest[:26]}"


async def _flow_batch(hub: Hub, b: _Broadcast, batch: int) -> None:
    rows = await hub.store.read(_pending(b.id, FLOW_BATCH_SIZE))
    for row in rows:
        # Checked before each run: a pause holds the rest of the batch within a run's time.
        state = await hub.store.read(
            fetch_one("SELECT status, generation FROM broadcasts WHERE id = ?", (b.id,))
        )
        if state is None or (state[0], state[1]) != ("running", b.generation):
            return
        await _start_run(hub, b, row)
    full = len(rows) == FLOW_BATCH_SIZE
    await write(hub, lambda: _flow_next(hub, b, batch + 1, full=full))


def _flow_next(hub: Hub, b: _Broadcast, batch: int, *, full: bool) -> Unit[None]:
    state = yield from lock_status(hub, b.id)
    if state == ("running", b.generation):
        yield from next_job(hub, b.id, b.generation, batch, full=full)


async def _start_run(hub: Hub, b: _Broadcast, row: tuple[Any, ...]) -> None:
    """Start the flow for one recipient and record the run (a re-run continues it)."""
    contact_id = str(row[0])
    if row[9] or row[5] or row[8] is not None:
        reason = "blocked" if row[9] else "opted_out" if row[5] else "deleted"
        await write(hub, lambda: _skip(b.id, contact_id, reason))
        return
    contact = contact_context(row)
    trigger = {
        "id": f"{b.id}:{contact_id}",
        # A flow.start node's group start: the runs see their parent (flows.ports).
        "type": FLOW_STARTED if b.origin is not None else "broadcast.recipient",
        "timestamp": iso(utcnow()),
        "data": {
            **(b.origin or {}),
            "broadcast_id": b.id,
            "broadcast_name": b.name,
            "contact_id": contact_id,
            "phone": contact["phone"],
            "channel_id": b.channel_id,
        },
    }
    node_id = tick_trigger(hub, trigger)  # a trigger.schedule group tick's runs
    run_id = run_id_for(b.id, contact_id)
    problem = await start_contact_run(
        hub, b.flow_id or "", b.flow_version or 0, trigger, row, run_id, node_id
    )
    if problem:
        log.warning("broadcast %s: flow run for %s not started: %s", b.id, contact_id, problem)
        why: str = problem
        await write(hub, lambda: _skip(b.id, contact_id, why))
        return
    await write(hub, lambda: _mark_started(b.id, contact_id, run_id))


async def start_contact_run(
    hub: Hub,
    flow_id: str,
    version: int,
    trigger: dict[str, Any],
    row: tuple[Any, ...],
    run_id: str,
    node_id: str | None = None,
) -> str | None:
    """Start (or, on a re-run, continue) the run ``run_id`` of a flow for the contact of a
    :data:`CONTACT_COLUMNS` row (at trigger ``node_id``, else the first); None, or why it
    could not start (``flow: …``)."""
    view = view_from_row(row)
    executor = hub.flows.executor
    try:
        await executor.start_run(
            flow_id, version, trigger, contact=view, run_id=run_id, trigger_node_id=node_id
        )
    except (FlowNotFoundError, ValueError) as exc:
        return f"flow: {exc}"[:300]
    return None


def _mark_started(broadcast_id: str, contact_id: str, run_id: str) -> Unit[None]:
    yield from execute(
        "UPDATE broadcast_recipients SET status = 'started', run_id = ?, queued_at = ? "
        "WHERE broadcast_id = ? AND contact_id = ? AND status = 'pending'",
        (run_id, utcnow(), broadcast_id, contact_id),
    )


# -- finish -----------------------------------------------------------------------------


async def broadcast_finish(hub: Hub, broadcast_id: str, generation: int) -> None:
    """Job: completed once no recipient is pending and every message was handed over."""
    left = await write(hub, lambda: _finish(hub, broadcast_id, generation))
    if left:
        delay = FINISH_POLL_S if left <= BATCH_SIZE else FINISH_POLL_MANY_S
        raise Retry(delay, count_attempt=False, reason=f"{left} messages still to hand over")


def _finish(hub: Hub, broadcast_id: str, generation: int) -> Unit[int]:
    """Unit: completed (0), or how many recipients are still to be handed over."""
    state = yield from lock_status(hub, broadcast_id)
    if state != ("running", generation):
        return 0  # paused (resume checks again), cancelled, or already completed
    left = yield from fetch_one(
        "SELECT count(*) FROM broadcast_recipients r LEFT JOIN messages m "
        "ON m.id = r.message_id WHERE r.broadcast_id = ? AND (r.status = 'pending' "
        f"OR m.status IN ('sending', {placeholders(len(NOT_HANDED))}))",
        (broadcast_id, *NOT_HANDED),
    )
    if left and left[0]:
        return int(left[0])
    now = utcnow()
    yield from execute(
        "UPDATE broadcasts SET status = 'completed', finished_at = ?, updated_at = ? WHERE id = ?",
        (now, now, broadcast_id),
    )
    yield from announce(hub, broadcast_id, "broadcast.completed")
    return 0
