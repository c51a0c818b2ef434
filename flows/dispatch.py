"""Dispatch: turn one hub event into run activity (DESIGN.md "The way an event travels", 2).

An inbound SMS first goes to the run waiting for that contact's reply on that channel;
only if there is none (or it no longer waits) is it matched against the triggers of
published flows, each match starting a run pinned to the published version. Run ids are
derived from the event id, so dispatching the same event twice starts nothing new.
A ``flow.run.failed`` event starts the ``trigger.run_failed`` flows with the failed run's
contact; a schedule's tick starts its run through :func:`start_scheduled_run`, its run id
derived from the tick.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.executor import Executor
from flows.nodes import trigger_run_failed, trigger_schedule
from flows.ports import ContactView, sms_data
from flows.runs import Run
from flows.triggers import ScheduleEntry, TriggerIndex

__all__ = [
    "DispatchResult",
    "dispatch_event",
    "run_id_for",
    "schedule_run_id",
    "start_http_run",
    "start_scheduled_run",
]


@dataclass(frozen=True)
class DispatchResult:
    """What an event did: continued a waiting run, and/or started runs."""

    reply_run_id: str | None = None
    started: tuple[Run, ...] = ()


def run_id_for(event_id: str, flow_id: str, node_id: str) -> str:
    """Deterministic run id for (event, flow, trigger node): a retried dispatch is a no-op."""
    digest = hashlib.sha256(f"{event_id}\x00{flow_id}\x00{node_id}".encode()).hexdigest()
    return f"run_{digest[:26]}"


async def dispatch_event(
    event: Mapping[str, Any],
    *,
    executor: Executor,
    index: TriggerIndex,
    contact: ContactView | None = None,
) -> DispatchResult:
    """Deliver ``event`` to the waiting run of its contact, else start the matching flows.

    ``contact`` is the hub's contact record for the event's number (templates see it; its
    ``groups`` decide group-limited triggers: without a contact the sender is in none).
    A failed run's event starts runs for the failed run's contact when none is given."""
    if event.get("type") == "sms.received":
        data = sms_data(event)
        phone: str | None = data.get("from")
        if phone:
            channel: str | None = data.get("channel_id")
            waiting = await executor.store.find_waiting_run(
                str(phone), str(channel) if channel else None
            )
            if waiting is not None and await executor.deliver_reply(waiting.id, event):
                return DispatchResult(reply_run_id=waiting.id)
    event_id = event.get("id")
    if contact is None and event.get("type") == trigger_run_failed.RUN_FAILED_EVENT:
        contact = trigger_run_failed.contact_of(event)
    started: list[Run] = []
    for match in index.match(event, contact.groups if contact is not None else ()):
        run = await executor.start_run(
            match.flow_id,
            match.version,
            event,
            trigger_node_id=match.node_id,
            contact=contact,
            run_id=run_id_for(str(event_id), match.flow_id, match.node_id) if event_id else None,
        )
        started.append(run)
    return DispatchResult(started=tuple(started))


def schedule_run_id(flow_id: str, node_id: str, tick: datetime) -> str:
    """The run a schedule's tick starts (the same however often the tick is fired)."""
    return run_id_for(f"schedule:{trigger_schedule.iso_tick(tick)}", flow_id, node_id)


async def start_scheduled_run(
    entry: ScheduleEntry, tick: datetime, *, executor: Executor, fired_at: datetime
) -> Run:
    """Start the run of a schedule's tick (no contact); a tick fired again (a retried job,
    a second process) returns the run the first one started."""
    match = entry.match
    trigger = trigger_schedule.schedule_event(
        flow_id=match.flow_id, node_id=match.node_id, tick=tick, fired_at=fired_at
    )
    return await executor.start_run(
        match.flow_id,
        match.version,
        trigger,
        trigger_node_id=match.node_id,
        run_id=schedule_run_id(match.flow_id, match.node_id, tick),
    )


async def start_http_run(
    flow_id: str,
    body: Mapping[str, Any],
    *,
    executor: Executor,
    index: TriggerIndex,
    request_id: str | None = None,
) -> Run | None:
    """Start a run of ``flow_id`` from its trigger.http with ``body`` as ``trigger``; None
    if the flow has no published HTTP trigger. ``request_id`` (e.g. an Idempotency-Key
    header) makes a retried call return the same run."""
    match = index.match_http(flow_id)
    if match is None:
        return None
    return await executor.start_run(
        match.flow_id,
        match.version,
        body,
        trigger_node_id=match.node_id,
        run_id=run_id_for(request_id, match.flow_id, match.node_id) if request_id else None,
    )
