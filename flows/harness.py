"""The whole engine in memory (:class:`FlowHarness`): publish flows, feed events, move
time — what :class:`flows.testing.FlowConversation` drives, and the editor's test run.

Everything runs through the real executor, trigger index and dispatch, with the fakes of
:mod:`flows.memory` at the boundary; the events it feeds are built by
:mod:`flows.testing_events`, which also fires schedule ticks and announces failed runs as
the hub does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flows.dispatch import DispatchResult, dispatch_event, start_http_run
from flows.events import contact_phone_of
from flows.executor import DEFAULT_STEP_LIMIT, Executor
from flows.memory import (
    DEFAULT_LOOP_LIMIT,
    DEFAULT_LOOP_WINDOW_S,
    DEFAULT_START,
    FakeClock,
    FakeEffects,
    InMemoryFlowSource,
    InMemoryRunStore,
    InMemoryScheduler,
)
from flows.model import Flow, dump_flow
from flows.nodes import trigger_run_failed
from flows.ports import FLOW_STARTED, EffectError, StartFlowCommand, TriggerEvent
from flows.runs import Run, Step
from flows.testing_events import (
    TriggerDriver,
    delivery_report,
    sample_device_event,
    sample_failure,
    sms_received,
)
from flows.triggers import PublishedFlow, TriggerIndex
from flows.validation import load_flow

__all__ = ["FlowHarness", "FlowLike", "load_flow_file"]

FlowLike = Flow | Mapping[str, Any] | str | Path


def load_flow_file(flow: FlowLike) -> dict[str, Any]:
    """A flow document from a Flow, a dict, JSON text or a path to a JSON file (validated)."""
    if isinstance(flow, Flow):
        return dump_flow(flow)
    if isinstance(flow, Path) or (isinstance(flow, str) and not flow.lstrip().startswith("{")):
        raw: Any = json.loads(Path(flow).read_text(encoding="utf-8"))
    elif isinstance(flow, str):
        raw = json.loads(flow)
    else:
        raw = dict(flow)
    load_flow(raw)  # raises InvalidFlowError listing every problem
    return dict(raw)


class FlowHarness:
    """The whole engine in memory: publish flows, feed events, move time."""

    def __init__(
        self,
        *,
        start: datetime = DEFAULT_START,
        step_limit: int = DEFAULT_STEP_LIMIT,
        loop_limit: int = DEFAULT_LOOP_LIMIT,
        loop_window_s: float = DEFAULT_LOOP_WINDOW_S,
        channel_id: str = "ch_test",
        our_number: str = "+15559876543",
    ) -> None:
        self.channel_id = channel_id
        self.our_number = our_number
        self.log: list[str] = []
        self.clock = FakeClock(start)
        self.store = InMemoryRunStore()
        self.flows = InMemoryFlowSource()
        self.scheduler = InMemoryScheduler()
        self.effects = FakeEffects(
            self.clock,
            loop_limit=loop_limit,
            loop_window_s=loop_window_s,
            default_channel=channel_id,
            log=self.log,
        )
        self.executor = Executor(
            store=self.store,
            flows=self.flows,
            effects=self.effects,
            scheduler=self.scheduler,
            clock=self.clock,
            step_limit=step_limit,
            secrets=self.effects.secret_tokens,
        )
        self.index = TriggerIndex()
        self.effects.flow_starter = self._start_child
        #: Schedule ticks and failed runs, fired as the hub fires them (tick(), settle()).
        self.triggers = TriggerDriver(self)
        self._published: dict[str, int] = {}
        self._events = 0
        self._iso: tuple[datetime, str] | None = None

    def publish(self, flow: FlowLike, flow_id: str | None = None) -> tuple[str, int]:
        """Publish a (new version of a) flow and rebuild the trigger index."""
        document = load_flow_file(flow)
        flow_id = flow_id or _slug(str(document.get("name", "flow")))
        version = self.flows.publish(flow_id, document)
        self._published[flow_id] = version
        self.index = TriggerIndex.build(
            PublishedFlow(fid, ver, self.flows.versions[fid][ver - 1])
            for fid, ver in self._published.items()
        )
        return flow_id, version

    async def _start_child(
        self, command: StartFlowCommand, phone: str | None, run_id: str, broadcast_id: str | None
    ) -> str:
        """``flow.start``'s run: the flow's published version, a ``flow.started`` trigger."""
        version = self._published.get(command.flow_id)
        if version is None:
            raise EffectError(f"flow {command.flow_id!r} is not published", retryable=False)
        contact = self.effects.contact(phone) if phone else None
        data = {**command.trigger_data(), "phone": phone, "contact_id": None}
        if broadcast_id is not None:
            data["broadcast_id"] = broadcast_id
        trigger: TriggerEvent = {
            "id": f"{FLOW_STARTED}:{run_id}",
            "type": FLOW_STARTED,
            "timestamp": self._now_iso(),
            "data": data,
        }
        run = await self.executor.start_run(
            command.flow_id, version, trigger, contact=contact, run_id=run_id
        )
        return run.status

    async def dispatch(self, event: Mapping[str, Any]) -> DispatchResult:
        """Hand an event to the engine as the hub's dispatch job would (with the fake
        contact, whose groups group-limited triggers check), then announce failed runs."""
        phone = contact_phone_of(event)
        failed_for = trigger_run_failed.contact_of(event)
        phone = phone or (failed_for.phone if failed_for else None)
        contact = self.effects.contact(phone) if phone else None
        found = await dispatch_event(
            event, executor=self.executor, index=self.index, contact=contact
        )
        await self.triggers.settle()
        return found

    async def run_failure(self, phone: str | None, **fields: Any) -> DispatchResult:
        """A run of another flow failed for ``phone`` (``flow.run.failed``; ``fields``
        override the sample's ``flow_id``, ``error``…): the error flows run."""
        self._events += 1
        self.log.append(f"a run of {fields.get('flow_id', 'flw_sample')} fails for {phone}")
        return await self.dispatch(sample_failure(self._events, self._now_iso(), phone, fields))

    async def device_status(self, **fields: Any) -> DispatchResult:
        """A sample phone goes offline (or ``status="online"``): device-status flows run."""
        self._events += 1
        self.log.append(f"a phone is {fields.get('status', 'offline')}")
        return await self.dispatch(sample_device_event(self._events, self._now_iso(), fields))

    async def tick(self, flow_id: str | None = None, node_id: str | None = None) -> list[Run]:
        """Move the clock to a schedule's next tick (timers fire on the way) and fire it."""
        return await self.triggers.tick(flow_id, node_id)

    async def inbound(
        self,
        text: str,
        *,
        from_: str,
        channel_id: str | None = None,
        sim_slot: int = 0,
        device_id: str = "dev_test",
    ) -> DispatchResult:
        """An SMS arrives from ``from_``."""
        self._events += 1
        self.log.append(f"{from_} says: {text}")
        data = {"from": from_, "to": self.our_number, "body": text, "sim_slot": sim_slot}
        route = {"channel_id": channel_id or self.channel_id, "device_id": device_id}
        return await self.dispatch(sms_received(self._events, self._now_iso(), data | route))

    async def delivery(
        self,
        status: str,
        *,
        to: str,
        body: str = "",
        message_id: str | None = None,
        channel_id: str | None = None,
        sim_slot: int | None = 0,
        device_id: str = "dev_test",
        error: str | None = None,
    ) -> DispatchResult:
        """A delivery report (``sent`` / ``delivered`` / ``failed``) for a message to ``to``."""
        self._events += 1
        self.log.append(f"delivery report: message to {to} {status}")
        data = {"from": self.our_number, "to": to, "body": body, "sim_slot": sim_slot}
        route = {"channel_id": channel_id or self.channel_id, "device_id": device_id}
        report = {"message_id": message_id, "status": status, "error": error}
        return await self.dispatch(
            delivery_report(self._events, self._now_iso(), data | route | report)
        )

    def _now_iso(self) -> str:
        """The fake time as ISO 8601 (remembered: the clock stands still between moves)."""
        now = self.clock.now()
        if self._iso is None or self._iso[0] != now:
            self._iso = (now, now.isoformat())
        return self._iso[1]

    async def http(self, flow_id: str, body: Mapping[str, Any]) -> Run | None:
        """Call a flow's trigger.http URL with ``body``."""
        self.log.append(f"HTTP call to flow {flow_id}: {json.dumps(body)}")
        run = await start_http_run(flow_id, body, executor=self.executor, index=self.index)
        await self.triggers.settle()
        return run

    async def advance_time(self, seconds: float) -> None:
        """Move the clock forward, firing every timer that falls due on the way, in order."""
        end = self.clock.now() + timedelta(seconds=seconds)
        while True:
            due = self.scheduler.due(end)
            if not due:
                break
            at, run_id, token = due[0]
            self.clock.set(at)
            self.scheduler.pop(run_id, token)
            await self.executor.fire_timer(run_id, token)
        self.clock.set(end)
        await self.triggers.settle()

    def runs(self) -> list[Run]:
        """All runs in the order they were started."""
        return list(self.store.runs.values())  # dicts keep insertion order

    async def steps(self, run_id: str) -> list[Step]:
        """A run's steps in order."""
        return await self.store.list_steps(run_id)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_") or "flow"
