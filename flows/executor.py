"""The durable executor: walks a run through its pinned flow version one step at a time.

:class:`Executor` is what the hub calls: start a run, advance it, hand it a reply or a
fired timer, cancel it, replay it. It is one object in three layers, each built on
the one below: these entry points, over :class:`~flows.stepping.StepMachine` (how one
step goes, and what a crash in the middle of it leaves, stated where the code makes it
hold), over :class:`~flows.runbook.RunBook` (loading and saving runs, the next step).
What a run reads from its event is in :mod:`flows.events`.

Calling :meth:`Executor.advance` again is always safe; so is calling it from two workers
at once: saves are compare-and-swap on ``Run.revision``, the loser sees
:class:`StaleRunError`, drops what it had not saved and stops. A run is saved at its
durable points only (before an effect, when it waits, when it ends: see
:mod:`flows.stepping`), so a keyword run that posts to a hook and replies costs three
store writes. A timer is requested after the wait is saved, and ``advance`` on a waiting
run requests it again (idempotent per token), so a crash between the two loses nothing.
A reply or timer is taken in memory and saved with what follows it; if the process dies
first, the run is still waiting when the job runs again. A reply handed over again (its
dispatch job re-ran after a crash) is known by its event id and not taken twice; a timer
whose wait is over changes nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from flows.configs import ConfigCache
from flows.events import bare_contact, contact_phone_of, event_id, inbound_of, reply_fields
from flows.expressions import Renderer
from flows.nodes._common import normalize_phone
from flows.ports import (
    Clock,
    ContactView,
    Effects,
    FlowSource,
    RunExistsError,
    RunObserver,
    RunStore,
    Scheduler,
    StaleRunError,
    sms_data,
)
from flows.runbook import FlowNotFoundError, RunNotFoundError, Walk
from flows.runs import Run, Step
from flows.secrets import SecretTokens
from flows.stepping import StepMachine

__all__ = [
    "DEFAULT_STEP_LIMIT",
    "Executor",
    "FlowNotFoundError",
    "ReplayError",
    "RunNotFoundError",
    "contact_phone_of",
]

#: Steps one run may take before it is failed (guards loops).
DEFAULT_STEP_LIMIT = 1000
#: Reply event ids remembered per run, so a redelivered reply is not consumed twice.
_SEEN_EVENTS = 50
#: How often an operation that lost a compare-and-swap race reloads and tries again.
_CAS_RETRIES = 5


class ReplayError(ValueError):
    """The run cannot be replayed that way (says why)."""


class Executor(StepMachine):
    """Entry points the hub calls: start_run, advance, deliver_reply, fire_timer, cancel,
    replay. Each returns (or re-reads) the run as stored."""

    def __init__(
        self,
        *,
        store: RunStore,
        flows: FlowSource,
        effects: Effects,
        scheduler: Scheduler,
        clock: Clock,
        renderer: Renderer | None = None,
        step_limit: int = DEFAULT_STEP_LIMIT,
        new_run_id: Callable[[], str] | None = None,
        observer: RunObserver | None = None,
        secrets: SecretTokens | None = None,
    ) -> None:
        self.store = store
        self.flows = flows
        self.effects = effects
        self.scheduler = scheduler
        self.clock = clock
        self.renderer = renderer or Renderer()
        self.step_limit = step_limit
        self._new_run_id = new_run_id or (lambda: f"run_{uuid.uuid4().hex}")
        self.observer = observer
        # Without the Effects' tokens, placeholders resolve nowhere (sent as they are).
        self.secret_tokens = secrets or SecretTokens(os.urandom(32))
        self._flow_cache = {}
        self._configs = ConfigCache()

    # -- entry points ------------------------------------------------------------------

    async def start_run(
        self,
        flow_id: str,
        version: int,
        trigger: Mapping[str, Any],
        *,
        trigger_node_id: str | None = None,
        contact: ContactView | None = None,
        run_id: str | None = None,
        replay_of: str | None = None,
        advance: bool = True,
    ) -> Run:
        """Create a run of ``flow_id`` pinned to ``version`` and (by default) advance it.

        Pass a deterministic ``run_id`` (e.g. from the event id) to make dispatch
        idempotent: starting the same run twice continues and returns the existing one.
        With ``advance`` the run is stored at its first durable point, with every step up
        to it (one ``create_run``); without, it is stored at once with its first step."""
        flow = await self._flow(flow_id, version)
        node = self._trigger_node(flow, trigger_node_id)
        now = self.clock.now()
        phone = contact.phone if contact else contact_phone_of(trigger)
        run = Run(
            id=run_id or self._new_run_id(),
            flow_id=flow_id,
            flow_version=version,
            status="running",
            trigger=dict(trigger),
            trigger_node_id=node.id,
            created_at=now,
            updated_at=now,
            contact=contact.to_dict() if contact else bare_contact(phone),
            inbound=inbound_of(trigger),
            replay_of=replay_of,
        )
        walk = Walk(run, stored=False)
        self._stage(walk, [self._new_step(run, node, attempt=1)])
        try:
            if not advance:
                await self._flush(walk)
                return run
            return await self._drive(walk)
        except RunExistsError:
            # Another worker (or an earlier try of this dispatch) has the run: what this
            # walk did was pure (it stops before any effect), so drop it and go on there.
            return await self.advance(run.id) if advance else await self._load(run.id)
        except StaleRunError:
            return await self._load(run.id)

    async def advance(self, run_id: str) -> Run:
        """Execute steps until the run waits or ends; safe to call at any time, repeatedly."""
        return await self._carry_on(Walk(await self._load(run_id)))

    async def _carry_on(self, walk: Walk) -> Run:
        try:
            return await self._drive(walk)
        except StaleRunError:
            # Another worker is moving this run; it will carry on from here.
            return await self._load(walk.run.id)

    async def deliver_reply(self, run_id: str, event: Mapping[str, Any]) -> bool:
        """Hand an inbound SMS to a run waiting for a reply; False if it is not waiting
        (then the hub treats the SMS as a new message for the triggers)."""
        seen_id = event_id(event)
        for _ in range(_CAS_RETRIES):
            run = await self._load(run_id)
            if seen_id is not None and seen_id in run.seen_events:
                # A redelivery of a reply this run already took (the dispatch job ran
                # again after a crash): make sure the run carries on, take nothing.
                if run.status == "running":
                    await self._carry_on(Walk(run))
                return True
            wait = run.wait
            if run.status != "waiting" or wait is None or wait.kind != "reply":
                return False
            data = sms_data(event)
            sender: str | None = data.get("from")
            phone = normalize_phone(str(sender or ""))
            if wait.contact_phone and phone != normalize_phone(wait.contact_phone):
                return False
            walk = Walk(run)
            step = await self._step_of(walk, wait.step_seq)
            output = {
                **(step.output or {}),
                **reply_fields(data),
                "event_id": seen_id,
                "timed_out": False,
            }
            run.inbound = inbound_of(event) or run.inbound
            if seen_id is not None:
                run.seen_events = [*run.seen_events, seen_id][-_SEEN_EVENTS:]
            await self._leave_wait(walk, step, wait.reply_port, output)
            try:
                await self._drive(walk)
            except StaleRunError:
                if not walk.saves:
                    continue  # someone moved the run before the reply was saved: look again
                # Saved, and then another worker moved the run on: it carries on.
            return True
        return False

    async def fire_timer(self, run_id: str, token: str) -> Run:
        """A timer fired: end the wait it belongs to; a stale timer (the run moved on,
        or was cancelled) changes nothing."""
        for _ in range(_CAS_RETRIES):
            run = await self._load(run_id)
            wait = run.wait
            if run.status != "waiting" or wait is None or wait.token != token:
                # Stale. If the run is mid-flight (this timer job ran again after a crash
                # that followed its save), finishing the walk is all that is left to do.
                return await self._carry_on(Walk(run)) if run.status == "running" else run
            walk = Walk(run)
            if wait.kind == "retry":
                await self._end_backoff(walk, wait)
            else:
                step = await self._step_of(walk, wait.step_seq)
                output = dict(step.output or {})
                if wait.kind == "reply":
                    output["timed_out"] = True
                await self._leave_wait(walk, step, wait.timeout_port, output)
            try:
                return await self._drive(walk)
            except StaleRunError:
                if walk.saves:
                    return await self._load(run_id)  # another worker carries on
        return await self._load(run_id)

    async def cancel(self, run_id: str, reason: str = "cancelled") -> Run:
        """Stop a run that has not ended; its timers become stale, its wait is released."""
        for _ in range(_CAS_RETRIES):
            run = await self._load(run_id)
            if run.is_terminal:
                return run
            now = self.clock.now()
            changed: list[Step] = []
            if run.current_seq is not None:
                step = await self.store.get_step(run.id, run.current_seq)
                if step is not None and step.status in ("running", "waiting"):
                    step.status = "cancelled"
                    step.finished_at = now
                    changed.append(step)
            run.status = "cancelled"
            run.error = reason
            run.wait = None
            run.finished_at = now
            try:
                await self._save(run, changed)
            except StaleRunError:
                continue
            return run
        return await self._load(run_id)

    async def replay(
        self,
        run_id: str,
        mode: Literal["from_failed", "from_start"] = "from_failed",
        *,
        version: int | None = None,
        contact: ContactView | None = None,
    ) -> Run:
        """Replay a run.

        ``from_failed``: the same run continues at its failed step (a new attempt, same
        idempotency key); steps that succeeded keep their outputs and are not re-run.
        ``from_start``: a new run (``replay_of`` = this one) with the same trigger, on
        ``version`` if given, else the same version; its effects are new."""
        run = await self._load(run_id)
        if mode == "from_start":
            return await self.start_run(
                run.flow_id,
                version if version is not None else run.flow_version,
                run.trigger,
                trigger_node_id=run.trigger_node_id,
                contact=contact,
                replay_of=run.id,
            )
        if mode != "from_failed":
            raise ReplayError(f"unknown replay mode {mode!r}")
        return await self._replay_failed(run)

    # -- replay ------------------------------------------------------------------------

    async def _replay_failed(self, run: Run) -> Run:
        if run.status != "failed":
            raise ReplayError(f"run is {run.status}; only failed runs replay from_failed")
        step = await self._get_step(run, run.current_seq)
        if step.status != "failed":
            raise ReplayError(
                "the run did not fail in a step (step limit or missing flow); replay it from_start"
            )
        if run.step_count >= self.step_limit:
            raise ReplayError(f"the run has used its {self.step_limit} steps; replay from_start")
        flow = await self._flow(run.flow_id, run.flow_version)
        node = flow.node(step.node_id)
        if node is None:
            raise ReplayError(f"node {step.node_id!r} is not in the flow")
        run.status = "running"
        run.error = None
        run.finished_at = None
        fresh = self._new_step(run, node, attempt=1, visit=step.visit)
        await self._save(run, [fresh])
        return await self.advance(run.id)
