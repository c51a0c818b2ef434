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

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn

from flows.dispatch import DispatchResult
from flows.executor import DEFAULT_STEP_LIMIT
from flows.harness import FlowHarness, FlowLike, load_flow_file
from flows.memory import (
    DEFAULT_LOOP_LIMIT,
    DEFAULT_LOOP_WINDOW_S,
    DEFAULT_START,
    HttpCall,
    SentSms,
)
from flows.nodes._common import normalize_phone
from flows.ports import ContactUpdate
from flows.runs import Run

__all__ = ["FlowConversation", "FlowHarness", "load_flow_file"]


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
        secrets: Mapping[str, str] | None = None,
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
        for name, value in (secrets or {}).items():
            self.set_secret(name, value)
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

    async def tick(self, flow_id: str | None = None, node_id: str | None = None) -> list[Run]:
        """A schedule's next tick comes (the first schedule by default): the runs it started."""
        return await self.harness.tick(flow_id, node_id)

    async def another_run_fails(self, **fields: Any) -> DispatchResult:
        """A run of some other flow fails for the contact (``flow_id=``, ``error=``…)."""
        return await self.harness.run_failure(self.contact, **fields)

    async def device_status(self, **fields: Any) -> DispatchResult:
        """A phone goes offline (``status="online"``: comes back; ``channel_id=``…)."""
        return await self.harness.device_status(**fields)

    async def join_group(self, group_id: str) -> None:
        """The contact becomes a member of ``group_id`` (group triggers and schedules see it)."""
        self.harness.effects.add_group(group_id)
        await self.harness.effects.update_contact(
            ContactUpdate(phone=self.contact, add_groups=(group_id,))
        )

    def set_secret(self, name: str, value: str | None) -> None:
        """What ``{{ secrets.NAME }}`` sends from now on (None: no such secret, the step
        fails). Runs keep placeholders; requests carry the value (:meth:`expect_http`)."""
        if value is None:
            self.harness.effects.secrets.pop(name, None)
        else:
            self.harness.effects.secrets[name] = value

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
        headers: Mapping[str, str] | None = None,
    ) -> HttpCall:
        """Some not yet expected HTTP request matches: same url/method, its JSON body
        contains ``json_contains`` (recursively, as a subset), it has ``headers`` (names in
        any case). What was sent: secrets in."""
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
            sent = {k.lower(): v for k, v in command.headers.items()}
            if headers is not None and any(sent.get(k.lower()) != v for k, v in headers.items()):
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


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
