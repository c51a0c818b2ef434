"""trigger.schedule in the hub: each tick of a published schedule is a queue job.

What holds, and where the code makes it hold:

* The next tick of every published schedule is a ``schedule_tick`` job (a row in
  ``jobs``, ``run_at`` = the tick, key ``schedule:{flow_id}:{node_id}:{tick}``), written
  by :func:`ensure_schedules` when a flow is published or resumed
  (``hub.services.flows``) and every :data:`ENSURE_S` by the periodic ``schedule_ensure``
  job, so a lost job heals within a minute. The key makes a second copy of a pending
  tick a no-op.
* A tick job first queues the next tick (the first after *now*), then fires. A tick
  fired twice (a job re-run after a crash, two processes) starts one run: the run id is
  :func:`flows.schedule_run_id` of the tick; a group tick is one broadcast whose id
  derives from the tick (:func:`hub.services.broadcasts.insert_broadcast` writes an id
  once), which starts one run per member, paced like any flow broadcast.
* A stale tick job — its flow no longer published or paused, the node gone, its time no
  longer a tick of the schedule (the config changed) — does nothing; the publish that
  changed the schedule queued the new one.
* Missed ticks (the hub was down, the queue was behind): no backlog. A late tick job fires
  only the latest tick due, and only if it is at most ``schedule_missed_grace_s`` old
  (default 300 s); otherwise it is skipped (logged) and the next tick is queued.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from flows import (
    ScheduleEntry,
    TriggerMatch,
    parse_flow,
    start_scheduled_run,
)
from flows.nodes import trigger_schedule
from flows.nodes.trigger_schedule import due_tick, is_tick, iso_tick, next_tick
from hub.context import Hub
from hub.event_data import iso
from hub.models import utcnow
from hub.queue.base import Retry, enqueue_job
from hub.services.broadcasts import BroadcastSpec, insert_broadcast
from hub.store import Unit, as_json, fetch_one

log = logging.getLogger("smshub.flows")

#: Job: one tick of a published schedule (fire it, queue the next).
SCHEDULE_TICK = "schedule_tick"
#: Periodic job: every published schedule has its next tick queued.
SCHEDULE_ENSURE = "schedule_ensure"
#: Seconds between two ``schedule_ensure`` runs.
ENSURE_S = 60.0


def tick_key(flow_id: str, node_id: str, tick: datetime) -> str:
    """The job key of one tick (one pending job per tick)."""
    return f"schedule:{flow_id}:{node_id}:{iso_tick(tick)}"[:200]


def _queue_tick(hub: Hub, flow_id: str, node_id: str, tick: datetime) -> Unit[str | None]:
    return enqueue_job(
        SCHEDULE_TICK,
        {"flow_id": flow_id, "node_id": node_id, "tick": iso_tick(tick)},
        run_at=tick,
        key=tick_key(flow_id, node_id, tick),
        lease=hub.queue.lease(),
    )


async def ensure_schedules(hub: Hub) -> None:
    """Queue the next tick of every published schedule (a no-op for ticks already queued)."""
    entries = (await hub.flows.index()).schedules()
    if entries:
        await hub.store.write(_ensure(hub, entries, hub.clock()))


def _ensure(hub: Hub, entries: list[ScheduleEntry], now: datetime) -> Unit[None]:
    for entry in entries:
        tick = next_tick(entry.config, now)
        yield from _queue_tick(hub, entry.match.flow_id, entry.match.node_id, tick)


async def schedule_ensure(hub: Hub) -> None:
    """Periodic job: the next tick of every published schedule is queued (self-healing)."""
    await ensure_schedules(hub)


async def schedule_tick(hub: Hub, flow_id: str, node_id: str, tick: str) -> None:
    """Job: a schedule's tick is due: queue the next one, then fire this one (once)."""
    at = datetime.fromisoformat(tick)
    found = await hub.store.read(_published_schedule(flow_id, node_id))
    if found is None:
        return  # unpublished, paused, deleted, or the node is no schedule any more
    name, entry = found
    if not is_tick(entry.config, at):
        return  # the schedule changed: its publish queued the new ticks
    now = hub.clock()
    if now < at:
        raise Retry((at - now).total_seconds(), count_attempt=False, reason="not yet")
    await hub.store.write(_queue_tick(hub, flow_id, node_id, next_tick(entry.config, now)))
    fire = due_tick(entry.config, now, timedelta(seconds=hub.settings.schedule_missed_grace_s))
    if fire is None:
        log.info("schedule %s.%s: tick %s skipped (%s late)", flow_id, node_id, tick, now - at)
        return
    if entry.config.group_id is None:
        await start_scheduled_run(entry, fire, executor=hub.flows.executor, fired_at=now)
    else:
        await hub.store.write(_group_broadcast(hub, name, entry, fire))


def _published_schedule(flow_id: str, node_id: str) -> Unit[tuple[str, ScheduleEntry] | None]:
    """Unit: the flow's name and the schedule node of its published version, if it is one
    of an enabled, live flow."""
    row = yield from fetch_one(
        "SELECT f.name, f.published_version, v.definition FROM flows f "
        "JOIN flow_versions v ON v.flow_id = f.id AND v.version = f.published_version "
        "WHERE f.id = ? AND f.enabled AND f.deleted_at IS NULL",
        (flow_id,),
    )
    if row is None:
        return None
    node = parse_flow(as_json(row[2])).node(node_id)
    if node is None or node.type != trigger_schedule.SPEC.type:
        return None
    config = trigger_schedule.Config.model_validate(node.config)
    return str(row[0]), ScheduleEntry(TriggerMatch(flow_id, int(row[1]), node_id), config)


def broadcast_id_for(flow_id: str, node_id: str, tick: datetime) -> str:
    """The broadcast of a group schedule's tick (the same however often it is fired)."""
    key = f"schedule\x00{flow_id}\x00{node_id}\x00{iso_tick(tick)}"
    return f"bc_{hashlib.sha256(key.encode()).hexdigest()[:26]}"


def tick_trigger(hub: Hub, trigger: dict[str, Any]) -> str | None:
    """A group tick's broadcast starts a member's run with a ``schedule.tick`` trigger at the
    schedule's node: turn the broadcast's recipient ``trigger`` into that (in place) and
    return the node id; None (nothing changed) for other broadcasts."""
    data = trigger["data"]
    tick = data.pop("schedule", None)
    if not isinstance(tick, dict):
        return None
    trigger["type"] = trigger_schedule.SCHEDULE_EVENT
    trigger["data"] = {**data, **tick, "fired_at": iso(hub.clock())}
    return str(tick["node_id"])


def _group_broadcast(hub: Hub, name: str, entry: ScheduleEntry, tick: datetime) -> Unit[bool]:
    """Unit: the flow broadcast of a group tick (written once; its start job with it)."""
    match = entry.match
    origin: dict[str, Any] = {
        "schedule": {
            "scheduled_at": iso_tick(tick),
            "flow_id": match.flow_id,
            "node_id": match.node_id,
            "group_id": entry.config.group_id,
        }
    }
    spec = BroadcastSpec(
        name=f"{name[:150]} · {match.node_id} {iso_tick(tick)}",
        flow_id=match.flow_id,
        group_ids=(str(entry.config.group_id),),
        origin=origin,
    )
    broadcast_id = broadcast_id_for(match.flow_id, match.node_id, tick)
    # The broadcast's own times are the queue's (real) time: its jobs are due at once.
    written = utcnow()
    return (yield from insert_broadcast(hub, broadcast_id, spec, None, written, written))
