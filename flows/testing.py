"""Test your flows as code: script a conversation against an in-memory engine.

::

    from flows.testing import FlowConversation

    async def test_join():
        convo = FlowConversation("flows/examples/join_keyword.json", contact="+15550001234")
        await convo.says("join news")
        convo.expect_reply(r"Welcome")
        convo.expect_http(url="https://hooks.zapier.com/hooks/catch/1/abc/",
                          json_contains={"body": "join news"})
        await convo.wait(hours=1)          # the fake clock moves; due timers fire
        convo.expect_no_reply()

Everything runs in memory through the real executor, trigger index and dispatch, with
fakes at the boundary (:mod:`flows.memory`): SMS are deduplicated by idempotency key,
opted-out contacts and the loop breaker come back ``suppressed``, HTTP answers 200 unless
scripted. A failed expectation raises AssertionError with the transcript so far.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from flows.dispatch import DispatchResult, dispatch_event, start_http_run
from flows.executor import DEFAULT_STEP_LIMIT, Executor
from flows.memory import (
    DEFAULT_LOOP_LIMIT,
    DEFAULT_LOOP_WINDOW_S,
    DEFAULT_START,
    FakeClock,
    FakeEffects,
    HttpCall,
    InMemoryFlowSource,
    InMemoryRunStore,
    InMemoryScheduler,
    SentSms,
)
from flows.model import Flow, dump_flow
from flows.nodes._common import normalize_phone
from flows.ports import FLOW_STARTED, EffectError, StartFlowCommand, TriggerEvent
from flows.runs import Run, Step
from flows.triggers import PublishedFlow, TriggerIndex
from flows.validation import load_flow

__all__ = ["FlowConversation", "FlowHarness", "load_flow_file"]

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
        )
        self.index = TriggerIndex()
        self.effects.flow_starter = self._start_child
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
        """Hand an event to the engine as the hub's dispatch job would."""
        return await dispatch_event(event, executor=self.executor, index=self.index)

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
        now = self._now_iso()
        self.log.append(f"{from_} says: {text}")
        event: TriggerEvent = {
            "id": f"evt_{self._events}",
            "type": "sms.received",
            "timestamp": now,
            "data": {
                "message_id": f"msg_in_{self._events}",
                "from": from_,
                "to": self.our_number,
                "body": text,
                "channel_id": channel_id or self.channel_id,
                "device_id": device_id,
                "sim_slot": sim_slot,
                "segments": 1,
                "encoding": "GSM-7",
                "received_at": now,
            },
        }
        return await self.dispatch(event)

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
        event: TriggerEvent = {
            "id": f"evt_{self._events}",
            "type": f"sms.{status}",
            "timestamp": self._now_iso(),
            "data": {
                "message_id": message_id or f"msg_{self._events}",
                "from": self.our_number,
                "to": to,
                "body": body,
                "channel_id": channel_id or self.channel_id,
                "device_id": device_id,
                "sim_slot": sim_slot,
                "status": status,
                "error": error,
            },
        }
        return await self.dispatch(event)

    def _now_iso(self) -> str:
        """The fake time as ISO 8601 (remembered: the clock stands still between moves)."""
        now = self.clock.now()
        if self._iso is None or self._iso[0] != now:
            self._iso = (now, now.isoformat())
        return self._iso[1]

    async def http(self, flow_id: str, body: Mapping[str, Any]) -> Run | None:
        """Call a flow's trigger.http URL with ``body``."""
        self.log.append(f"HTTP call to flow {flow_id}: {json.dumps(body)}")
        return await start_http_run(flow_id, body, executor=self.executor, index=self.index)

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

    def runs(self) -> list[Run]:
        """All runs in the order they were started."""
        return list(self.store.runs.values())  # dicts keep insertion order

    async def steps(self, run_id: str) -> list[Step]:
        """A run's steps in order."""
        return await self.store.list_steps(run_id)


class FlowConversation:
    """A scripted dialogue between one contact and your flows."""

    def __init__(
        self,
        *flows: FlowLike,
        contact: str = "+15550001234",
        channel_id: str = "ch_test",
        our_number: str = "+15559876543",
        opted_out: bool = False,
        loop_limit: int = DEFAULT_LOOP_LIMIT,
        loop_window_s: float = DEFAULT_LOOP_WINDOW_S,
        step_limit: int = DEFAULT_STEP_LIMIT,
        start: datetime = DEFAULT_START,
    ) -> None:
        self.contact = contact
        self.harness = FlowHarness(
            start=start,
            step_limit=step_limit,
            loop_limit=loop_limit,
            loop_window_s=loop_window_s,
            channel_id=channel_id,
            our_number=our_number,
        )
        self.flow_ids = [self.harness.publish(flow)[0] for flow in flows]
        if opted_out:
            self.opt_out()
        self._used_sms: set[int] = set()
        self._used_http: set[int] = set()

    # -- acting ------------------------------------------------------------------------

    async def says(self, text: str, *, channel_id: str | None = None) -> DispatchResult:
        """The contact sends ``text``; returns once the engine is idle."""
        return await self.harness.inbound(text, from_=self.contact, channel_id=channel_id)

    async def wait(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> None:
        """Let time pass; timers (delays, reply timeouts, retries) fire on the way."""
        total = seconds + 60 * minutes + 3600 * hours + 86_400 * days
        self.harness.log.append(f"... {_duration(total)} pass")
        await self.harness.advance_time(total)

    async def delivery_status(
        self, status: str, *, body: str = "", sim_slot: int | None = 0, error: str | None = None
    ) -> DispatchResult:
        """A delivery report arrives for a message to the contact."""
        return await self.harness.delivery(
            status, to=self.contact, body=body, sim_slot=sim_slot, error=error
        )

    async def http_trigger(self, body: Mapping[str, Any], *, flow_id: str | None = None) -> Run:
        """Call the flow's trigger.http with ``body`` (the first flow by default)."""
        run = await self.harness.http(flow_id or self.flow_ids[0], body)
        if run is None:
            self._fail("the flow has no trigger.http")
        return run

    def opt_out(self) -> None:
        """From now on the contact is opted out: sends to them are suppressed."""
        self.harness.effects.opt_out(self.contact)

    def opt_in(self) -> None:
        """Undo :meth:`opt_out`."""
        self.harness.effects.opt_in(self.contact)

    # -- expecting ---------------------------------------------------------------------

    def expect_reply(self, pattern: str, *, flags: int = re.IGNORECASE) -> SentSms:
        """The next SMS the contact received matches ``pattern`` (re.search)."""
        sent = self._next_sms(suppressed=False)
        if sent is None:
            self._fail(f"expected a reply matching {pattern!r}, but the flow sent nothing more")
        if not re.search(pattern, sent.command.text, flags):
            self._fail(
                f"expected a reply matching {pattern!r}, but the next reply was "
                f"{sent.command.text!r}"
            )
        return sent

    def expect_no_reply(self) -> None:
        """The contact received nothing since the last expectation."""
        sent = self._next_sms(suppressed=False)
        if sent is not None:
            self._fail(f"expected no reply, but the flow sent {sent.command.text!r}")

    def expect_suppressed(self, reason: str | None = None) -> SentSms:
        """The next send to the contact was suppressed (by ``reason``, if given)."""
        sent = self._next_sms(suppressed=True)
        if sent is None:
            self._fail("expected a suppressed send, but there was none")
        if reason is not None and sent.outcome.reason != reason:
            self._fail(f"expected suppression by {reason!r}, got {sent.outcome.reason!r}")
        return sent

    def expect_sms(
        self,
        *,
        to: str | None = None,
        pattern: str | None = None,
        sim_slot: int | None = None,
        channel_id: str | None = None,
    ) -> SentSms:
        """Some not yet expected SMS (to anyone) matches all the given filters."""
        for index, sent in enumerate(self.harness.effects.sms):
            if index in self._used_sms:
                continue
            command = sent.command
            if to is not None and normalize_phone(command.to) != normalize_phone(to):
                continue
            if pattern is not None and not re.search(pattern, command.text, re.IGNORECASE):
                continue
            if sim_slot is not None and command.sim_slot != sim_slot:
                continue
            if channel_id is not None and sent.outcome.channel_id != channel_id:
                continue
            self._used_sms.add(index)
            return sent
        wanted = {"to": to, "pattern": pattern, "sim_slot": sim_slot, "channel_id": channel_id}
        shown = {k: v for k, v in wanted.items() if v is not None}
        self._fail(f"expected an SMS with {shown}, found none")

    def expect_http(
        self,
        *,
        url: str | None = None,
        method: str | None = None,
        json_contains: Mapping[str, Any] | None = None,
    ) -> HttpCall:
        """Some not yet expected HTTP request matches: same url/method, and its JSON body
        contains ``json_contains`` (recursively, as a subset)."""
        for index, call in enumerate(self.harness.effects.http):
            if index in self._used_http:
                continue
            command = call.command
            if url is not None and command.url != url:
                continue
            if method is not None and command.method.upper() != method.upper():
                continue
            if json_contains is not None and not _contains(command.json, json_contains):
                continue
            self._used_http.add(index)
            return call
        wanted = {"url": url, "method": method, "json_contains": json_contains}
        shown = {k: v for k, v in wanted.items() if v is not None}
        self._fail(f"expected an HTTP request with {shown}, found none")

    def expect_no_http(self) -> None:
        """No HTTP request was made that an expectation has not accounted for."""
        left = [c for i, c in enumerate(self.harness.effects.http) if i not in self._used_http]
        if left:
            self._fail(f"expected no HTTP request, but the flow called {left[0].command.url}")

    def expect_run(self, status: str) -> Run:
        """The latest run has ``status`` (completed / waiting / failed / cancelled…)."""
        run = self.run
        if run is None:
            self._fail(f"expected a {status} run, but no run was started")
        if run.status != status:
            detail = f" ({run.error})" if run.error else ""
            self._fail(f"expected the run to be {status}, it is {run.status}{detail}")
        return run

    # -- looking -----------------------------------------------------------------------

    @property
    def run(self) -> Run | None:
        """The latest run."""
        runs = self.harness.runs()
        return runs[-1] if runs else None

    @property
    def vars(self) -> dict[str, Any]:
        """The latest run's variables."""
        run = self.run
        return dict(run.vars) if run else {}

    @property
    def transcript(self) -> str:
        """Everything that happened so far, one line per event."""
        return "\n".join(f"  {line}" for line in self.harness.log) or "  (nothing happened)"

    def _next_sms(self, *, suppressed: bool) -> SentSms | None:
        phone = normalize_phone(self.contact)
        for index, sent in enumerate(self.harness.effects.sms):
            if index in self._used_sms or normalize_phone(sent.command.to) != phone:
                continue
            if (sent.outcome.status == "suppressed") != suppressed:
                continue
            self._used_sms.add(index)
            return sent
        return None

    def _fail(self, message: str) -> NoReturn:
        raise AssertionError(f"{message}\ntranscript:\n{self.transcript}")


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_") or "flow"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
