"""The events :mod:`flows.testing` hands the engine: inbound SMS and delivery reports as
the hub's dispatch job hands them over, and the triggers the hub fires on its own —
schedule ticks and failed runs.

* :meth:`TriggerDriver.tick` moves the fake clock to a schedule's next tick and fires it
  as the hub's tick job does: one run without a contact, or one run per member of the
  schedule's group (the fake contacts' groups). Moving the clock alone fires no schedule.
* After every harness action, :meth:`TriggerDriver.settle` hands each run that failed to
  the triggers as the ``flow.run.failed`` event the hub emits (same fields), so a
  ``trigger.run_failed`` flow runs in a conversation test as it would in the hub, with
  the same loop guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flows.dispatch import dispatch_event, run_id_for, start_scheduled_run
from flows.nodes import trigger_run_failed, trigger_schedule
from flows.ports import TriggerEvent
from flows.runs import Run, Step
from flows.triggers import ScheduleEntry

if TYPE_CHECKING:
    from flows.testing import FlowHarness

__all__ = [
    "TriggerDriver",
    "delivery_report",
    "run_failed_event",
    "sample_failure",
    "sms_received",
]


def sms_received(number: int, now: str, fields: Mapping[str, Any]) -> TriggerEvent:
    """The ``n``-th event of a harness: an inbound SMS (``from``, ``to``, ``body``, route)."""
    return {
        "id": f"evt_{number}",
        "type": "sms.received",
        "timestamp": now,
        "data": {
            "message_id": f"msg_in_{number}",
            **fields,
            "segments": 1,
            "encoding": "GSM-7",
            "received_at": now,
        },
    }


def delivery_report(number: int, now: str, fields: Mapping[str, Any]) -> TriggerEvent:
    """The ``n``-th event of a harness: a delivery report (``status``, ``error``, route)."""
    return {
        "id": f"evt_{number}",
        "type": f"sms.{fields['status']}",
        "timestamp": now,
        "data": {**fields, "message_id": fields.get("message_id") or f"msg_{number}"},
    }


def run_failed_event(
    run: Run, trigger_node_type: str | None, failed: Step | None
) -> dict[str, Any]:
    """The ``flow.run.failed`` event the hub emits for ``run`` (docs/events.md);
    ``failed`` is the failed step (or None)."""
    return {
        "id": f"evt_failed_{run.id}",
        "type": trigger_run_failed.RUN_FAILED_EVENT,
        "timestamp": (run.finished_at or run.updated_at).isoformat(),
        "data": {
            "run_id": run.id,
            "flow_id": run.flow_id,
            "flow_name": run.flow_id,
            "flow_version": run.flow_version,
            "status": run.status,
            "error": run.error,
            "contact": run.contact,
            "vars": dict(run.vars),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "trigger_node_type": trigger_node_type,
            "failed_node_id": failed.node_id if failed is not None else None,
            "failed_node_type": failed.node_type if failed is not None else None,
        },
    }


def sample_failure(
    number: int, now: str, phone: str | None, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A ``flow.run.failed`` event of some other flow's run for ``phone`` (to try an error
    flow on its own); ``fields`` override the sample's (``flow_id``, ``error``…)."""
    contact = {"phone": phone, "opted_out": False, "tags": [], "fields": {}} if phone else None
    data: dict[str, Any] = {
        "run_id": f"run_failed_sample_{number}",
        "flow_id": "flw_sample",
        "flow_name": "Sample flow",
        "flow_version": 1,
        "status": "failed",
        "error": "sample failure",
        "contact": contact,
        "vars": {},
        "finished_at": now,
        "trigger_node_type": "trigger.sms_received",
        "failed_node_id": "sample",
        "failed_node_type": "http.request",
        **fields,
    }
    return {
        "id": f"evt_{number}",
        "type": trigger_run_failed.RUN_FAILED_EVENT,
        "timestamp": now,
        "data": data,
    }


def sample_device_event(number: int, now: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A ``device.offline`` (``status`` "offline", the default) or ``device.online`` event of
    a sample phone; ``fields`` override the sample's (``channel_id``, ``device_id``…)."""
    status = str(fields.get("status") or "offline")
    if status not in ("offline", "online"):
        raise ValueError("a device's status is offline or online")
    data: dict[str, Any] = {
        "device_id": "dev_sample",
        "channel_id": "ch_test",
        "status": status,
        "last_seen_at": now,
        "offline_at": now,
        "offline_after_s": 900.0,
        "device": {"id": "dev_sample", "gateway_id": "sample-phone", "name": "Sample phone"},
        "channel": {"id": "ch_test", "name": "Test channel", "connector": "smsgate"},
        **fields,
    }
    return {"id": f"evt_{number}", "type": f"device.{status}", "timestamp": now, "data": data}


@dataclass
class TriggerDriver:
    """Fires schedule ticks and announces failed runs for a :class:`~flows.testing.FlowHarness`."""

    harness: FlowHarness
    _announced: set[str] = field(default_factory=set)

    def schedule(self, flow_id: str | None = None, node_id: str | None = None) -> ScheduleEntry:
        """A published schedule (the first one, or of that flow / node)."""
        for entry in self.harness.index.schedules():
            if flow_id in (None, entry.match.flow_id) and node_id in (None, entry.match.node_id):
                return entry
        raise AssertionError(f"no published trigger.schedule {flow_id or ''} {node_id or ''}")

    async def tick(self, flow_id: str | None = None, node_id: str | None = None) -> list[Run]:
        """Move the clock to the schedule's next tick and fire it; the runs it started."""
        harness = self.harness
        entry = self.schedule(flow_id, node_id)
        at = trigger_schedule.next_tick(entry.config, harness.clock.now())
        await harness.advance_time((at - harness.clock.now()).total_seconds())
        harness.log.append(f"... {entry.match.flow_id}.{entry.match.node_id} ticks at {at}")
        group = entry.config.group_id
        if group is None:
            executor = harness.executor
            runs = [await start_scheduled_run(entry, at, executor=executor, fired_at=at)]
        else:
            members = harness.effects.members(group)
            runs = [await self._member_run(entry, at, phone) for phone in members]
        await self.settle()
        return runs

    async def _member_run(self, entry: ScheduleEntry, at: datetime, phone: str) -> Run:
        """One member's run of a group tick (the hub starts them through a broadcast)."""
        match = entry.match
        trigger = trigger_schedule.schedule_event(
            flow_id=match.flow_id,
            node_id=match.node_id,
            tick=at,
            fired_at=at,
            group_id=entry.config.group_id,
            extra={"phone": phone},
        )
        return await self.harness.executor.start_run(
            match.flow_id,
            match.version,
            trigger,
            trigger_node_id=match.node_id,
            contact=self.harness.effects.contact(phone),
            run_id=run_id_for(f"{trigger['id']}:{phone}", match.flow_id, match.node_id),
        )

    async def settle(self) -> None:
        """Announce every run that failed since the last call (and what those start)."""
        harness = self.harness
        while True:
            failed = [
                run
                for run in harness.store.runs.values()
                if run.status == "failed" and run.id not in self._announced
            ]
            if not failed:
                return
            for run in failed:
                self._announced.add(run.id)
                event = await self._event_of(run)
                harness.log.append(f"run {run.id} of {run.flow_id} failed: {run.error}")
                await dispatch_event(event, executor=harness.executor, index=harness.index)

    async def _event_of(self, run: Run) -> Mapping[str, Any]:
        steps = await self.harness.store.list_steps(run.id)
        by_seq = {step.seq: step for step in steps}
        first = by_seq.get(0)
        current = by_seq.get(run.current_seq) if run.current_seq is not None else None
        return run_failed_event(run, first.node_type if first else None, current)
