"""Stepping: moves a run from step to step, and says what a crash anywhere leaves.

State lives in the :class:`~flows.runs.Run` record plus an append-only list of
:class:`~flows.runs.Step` records, saved through the :class:`~flows.ports.RunStore`.
A run is moved in memory (a :class:`~flows.runbook.Walk`); what changed is saved at
*durable points* only, each one atomic ``save_run`` (compare-and-swap on
``Run.revision``) of the run and every step changed since the last one — for a new run,
one ``create_run`` of the run and all its steps so far. The durable points:

a. **Before anything leaves the run**: before an effectful node's handler runs (``sms.*``,
   ``http.request``, ``contact.update``; the save holds the run up to that step and the
   step's rendered ``input``, its intent) and before a newer reply wait cancels an
   older run (:meth:`StepMachine._supersede`).
b. **When the run waits** (reply, delay, retry backoff): the wait is saved before its
   timer is requested (:meth:`StepMachine._arm`, which ``Executor.advance`` calls on
   every waiting run, so a timer lost to a crash is requested again).
c. **When the run ends** (completed or failed; ``cancel`` and ``replay`` save at once).

A durable point with nothing new to save (an effect resumed from its stored intent)
writes nothing. Everything between two durable points is pure — triggers, ``logic.*``,
``data.set``, ``flow.stop``, ``flow.delay`` until it waits, the outcome of an effect,
leaving a wait — and is only staged (a long stretch of it yields to the event loop now
and then, :data:`_YIELD_EVERY`). So:

* an effect's outcome is saved no later than the next durable point: it is stored before
  the next effect, wait or end of the run, together with what follows from it;
* a crash anywhere loses at most the staged steps since the last save. The run resumes
  from that save (``advance``, the recovery sweep, or the same job run again): pure steps
  run again and, being deterministic over the saved state, go the same way; an effect
  whose intent was saved but whose outcome was not runs again from the saved ``input``
  with the same idempotency key, so the send pipeline answers with the first outcome
  (never a second SMS) and an HTTP request carries the same webhook id (at least once,
  as before); a reply or timer whose leaving of the wait was not saved finds the run
  still waiting when its job runs again;
* a new run is not stored before its first durable point; a crash before it loses
  nothing but pure work, and dispatching the event again (deterministic run id) starts
  it afresh. If the id turns out to exist (``RunExistsError``), another worker has the
  run: the walk is dropped and the stored run continued;
* two workers on one run cannot both save: the loser of a compare-and-swap
  (:class:`~flows.ports.StaleRunError`) drops its staged work and stops; compare-and-swap
  is exactly as strict as when every step was a save, there are only fewer saves.

What is *not* durable any more between two durable points: the history of pure steps
(``run_steps`` rows, ``updated_at``) shows up only with the next save, and a crash in
between is invisible in it (those steps are simply run again).

How one step goes: it is created ``running`` (staged) when the previous one finished;
its config is rendered (:mod:`flows.configs`; a resumed effect reuses its saved input);
the handler runs, its effects carrying the step's idempotency key; the outcome is staged
with the next step — ``succeeded`` + the next step ``running``, or ``waiting`` with the
run's :class:`~flows.runs.Wait`, or ``failed`` + a retry (immediately, or after a backoff
wait), the ``error`` edge, or a failed run. This is the middle layer of the
:class:`~flows.executor.Executor`, over :class:`~flows.runbook.RunBook`.
"""

from __future__ import annotations

import abc
import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flows.configs import ConfigCache, ConfigError, validate_config
from flows.events import reply_to
from flows.expressions import Renderer
from flows.model import ERROR_PORT, Flow, Node, RetryPolicy
from flows.ports import EffectError, Effects, Scheduler
from flows.registry import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeSpec,
    fast_node_context,
    get_spec,
)
from flows.runbook import RunBook, Walk
from flows.runs import Run, Step, Wait
from flows.secrets import SecretTokens

__all__ = ["StepMachine"]

_NO_RETRY = RetryPolicy()
#: Staged steps after which a walk yields to the event loop (at every further step).
_YIELD_EVERY = 50


@dataclass
class _Failure:
    message: str
    retryable: bool
    output: dict[str, Any] | None = None


class StepMachine(RunBook, abc.ABC):
    """Runs one step (render, handler, outcome) and ends waits; saves through the run book.

    A layer of one object: :class:`~flows.executor.Executor` sets these attributes."""

    effects: Effects
    scheduler: Scheduler
    renderer: Renderer
    #: Makes the placeholders ``{{ secrets.NAME }}`` renders to (resolved by the Effects).
    secret_tokens: SecretTokens
    _configs: ConfigCache

    @abc.abstractmethod
    async def cancel(self, run_id: str, reason: str = "cancelled") -> Run:
        """Stop a run that has not ended (a newer wait supersedes an older run with it)."""

    # -- the walk ----------------------------------------------------------------------

    async def _drive(self, walk: Walk) -> Run:
        """Step until the run waits or ends, saving at the durable points on the way;
        then (re)request the timer of a wait. Raises StaleRunError if another worker
        saved the run first, RunExistsError if a new run's id is already stored."""
        run = walk.run
        while run.status == "running":
            await self._step(walk)
            if len(walk.pending) >= _YIELD_EVERY:
                # A long stretch of pure steps (a loop) awaits nothing: let others run.
                await asyncio.sleep(0)
        await self._flush(walk)  # the wait (before its timer) or the end
        if run.status == "waiting":
            # Just entered the wait, or called again after a crash that may have come
            # between saving the wait and requesting its timer: (re)arm, idempotently.
            await self._arm(run)
        return run

    # -- one step ----------------------------------------------------------------------

    async def _step(self, walk: Walk) -> None:
        """Run the current step to its outcome (staged; saved before any effect)."""
        run = walk.run
        step = await self._step_of(walk, run.current_seq)
        flow = self._flow_cache.get((run.flow_id, run.flow_version))
        if flow is None and (flow := await self._flow_or_fail(walk)) is None:
            return
        node = flow.node(step.node_id)
        spec = get_spec(node.type) if node else None
        if node is None or spec is None:
            self._fail_run(walk, f"node {step.node_id!r} cannot run (missing or unknown type)")
            return
        if step.status in ("succeeded", "failed"):
            # Unreachable with an atomic store (the next step is saved with the result);
            # tolerated so a store that split the save still makes progress.
            self._after_finished(walk, flow, node, step)
            return
        if step.status != "running":
            self._fail_run(walk, f"inconsistent run: step {step.seq} is {step.status}")
            return
        try:
            config, rendered = self._config(spec, node, walk, step)
        except ConfigError as exc:
            self._failed(walk, flow, node, step, _Failure(str(exc), False))
            return
        if spec.effectful and (step.input is None or walk.dirty):
            # Durable point (a): the run up to here and the step's intent, then the effect.
            step.input = rendered
            self._stage(walk, [step])
            await self._flush(walk)
        step.input = rendered
        await self._run_handler(walk, flow, node, spec, step, config)

    async def _run_handler(
        self,
        walk: Walk,
        flow: Flow,
        node: Node,
        spec: NodeSpec[Any],
        step: Step,
        config: NodeConfig,
    ) -> None:
        started = time.perf_counter()
        try:
            result = await spec.handler(config, self._context(walk, step))
        except (NodeError, EffectError) as exc:
            self._timed(node, started)
            output = exc.output if isinstance(exc, NodeError) else None
            self._failed(walk, flow, node, step, _Failure(str(exc), exc.retryable, output))
            return
        self._timed(node, started)
        if result.wait is not None:
            await self._wait(walk, step, result)
        else:
            self._succeeded(walk, flow, step, result)

    def _timed(self, node: Node, started: float) -> None:
        if self.observer is not None:
            self.observer.step_ran(node.type, time.perf_counter() - started)

    def _config(
        self, spec: NodeSpec[Any], node: Node, walk: Walk, step: Step
    ) -> tuple[NodeConfig, dict[str, Any]]:
        """The node's config with templates rendered (or the input saved before a crash)."""
        run = walk.run
        if step.input is not None:
            return validate_config(spec.config_model, step.input), step.input
        static = self._configs.get(run.flow_id, run.flow_version, node, spec)
        return static.render(
            spec.config_model, self.renderer, lambda: self._template_context(walk, spec)
        )

    def _succeeded(self, walk: Walk, flow: Flow, step: Step, result: NodeResult) -> None:
        run = walk.run
        now = self.clock.now()
        step.status = "succeeded"
        step.output = result.output
        step.port = None if result.stop else result.port
        step.finished_at = now
        self._absorb(run, step, result)
        changed = [step]
        if result.stop is not None:
            run.status = result.stop
            run.error = result.stop_reason if result.stop == "failed" else None
            run.finished_at = now
        else:
            changed += self._follow(run, flow, step.node_id, result.port)
        self._stage(walk, changed)

    async def _wait(self, walk: Walk, step: Step, result: NodeResult) -> None:
        run = walk.run
        request = result.wait
        assert request is not None
        if request.kind == "reply" and request.contact_phone:
            await self._flush(walk)  # durable point (a): before touching another run
            await self._supersede(run, request.contact_phone, request.channel_id)
        step.status = "waiting"
        step.output = result.output
        self._absorb(run, step, result)
        run.status = "waiting"
        run.wait = Wait(
            kind=request.kind,
            token=f"wait:{step.seq}",
            until=request.until,
            step_seq=step.seq,
            contact_phone=request.contact_phone,
            channel_id=request.channel_id,
            timeout_port=request.timeout_port,
            reply_port=request.reply_port,
        )
        self._stage(walk, [step])  # _drive saves it, then arms the timer

    def _failed(self, walk: Walk, flow: Flow, node: Node, step: Step, failure: _Failure) -> None:
        """Record a failed attempt; then retry, take the error edge, or fail the run."""
        run = walk.run
        now = self.clock.now()
        step.status = "failed"
        step.error = failure.message
        step.output = failure.output or {"error": failure.message}
        step.finished_at = now
        policy = node.retry or _NO_RETRY
        if not failure.retryable or step.attempt >= policy.attempts:
            self._after_finished(walk, flow, node, step)
            return
        delay = policy.delay_before(step.attempt)
        if delay > 0:
            run.status = "waiting"
            run.wait = Wait(
                kind="retry",
                token=f"retry:{step.seq}",
                until=now + timedelta(seconds=delay),
                step_seq=step.seq,
            )
            self._stage(walk, [step])  # _drive saves it, then arms the timer
        else:
            self._stage(walk, [step, *self._retry_step(run, node, step)])

    def _after_finished(self, walk: Walk, flow: Flow, node: Node, step: Step) -> None:
        """Continue after a finished step: by its port, the error edge, or end the run."""
        run = walk.run
        changed = [step]
        if step.status == "failed":
            if flow.next_node(node.id, ERROR_PORT) is None:
                self._fail_run(walk, f"{node.id}: {step.error}", changed)
                return
            step.port = ERROR_PORT
            run.outputs[node.id] = step.output
            changed += self._follow(run, flow, node.id, ERROR_PORT)
        elif step.port is not None:
            changed += self._follow(run, flow, node.id, step.port)
        else:
            run.status = "completed"
            run.finished_at = self.clock.now()
        self._stage(walk, changed)

    # -- waits -------------------------------------------------------------------------

    async def _leave_wait(self, walk: Walk, step: Step, port: str, output: dict[str, Any]) -> None:
        """End a reply / delay wait: the step succeeds by ``port`` and the next one starts
        (staged: saved at the next durable point)."""
        run = walk.run
        flow = await self._flow(run.flow_id, run.flow_version)
        step.status = "succeeded"
        step.port = port
        step.output = output
        step.finished_at = self.clock.now()
        run.outputs[step.node_id] = output
        run.status = "running"
        run.wait = None
        self._stage(walk, [step, *self._follow(run, flow, step.node_id, port)])

    async def _end_backoff(self, walk: Walk, wait: Wait) -> None:
        """A retry backoff is over: start the next attempt (staged)."""
        run = walk.run
        flow = await self._flow(run.flow_id, run.flow_version)
        failed = await self._step_of(walk, wait.step_seq)
        node = flow.node(failed.node_id)
        assert node is not None
        run.status = "running"
        run.wait = None
        self._stage(walk, self._retry_step(run, node, failed))

    async def _supersede(self, run: Run, phone: str, channel_id: str | None) -> None:
        """One waiting run per contact and channel: the newer wait cancels the older run."""
        older = await self.store.find_waiting_run(phone, channel_id)
        if older is not None and older.id != run.id:
            await self.cancel(older.id, reason=f"superseded by run {run.id}")

    async def _arm(self, run: Run) -> None:
        if run.wait is not None:
            await self.scheduler.schedule(run.id, run.wait.until, run.wait.token)

    # -- what a step sees and leaves ---------------------------------------------------

    def _absorb(self, run: Run, step: Step, result: NodeResult) -> None:
        run.outputs[step.node_id] = result.output
        if result.vars:
            run.vars.update(result.vars)
        if result.contact is not None:
            run.contact = result.contact.to_dict()

    def _template_context(self, walk: Walk, spec: NodeSpec[Any]) -> dict[str, Any]:
        # What flows.expressions.template_context builds, without its copies: the run's
        # trigger, vars and contact are plain dicts already, a template cannot change them
        # (immutable sandbox) and a native result is rebuilt from them (never aliased).
        # ``secrets`` only for node types that allow them: elsewhere it renders empty.
        run = walk.run
        if walk.run_view is None:
            walk.run_view = {
                "id": run.id,
                "flow_id": run.flow_id,
                "version": run.flow_version,
                "started_at": run.created_at.isoformat(),
            }
        names: dict[str, Any] = {
            "trigger": _plain_dict(run.trigger),
            "vars": _plain_dict(run.vars),
            "steps": {node_id: {"output": output} for node_id, output in run.outputs.items()},
            "contact": _plain_dict(run.contact or {}),
            "run": walk.run_view,
        }
        if spec.secret_fields:
            names["secrets"] = self.secret_tokens.refs(run.id)
        return names

    def _context(self, walk: Walk, step: Step) -> NodeContext:
        run = walk.run
        if walk.reply is None or walk.reply[0] is not run.inbound:
            walk.reply = (run.inbound, reply_to(run.inbound))
        return fast_node_context(
            run_id=run.id,
            flow_id=run.flow_id,
            flow_version=run.flow_version,
            node_id=step.node_id,
            attempt=step.attempt,
            idempotency_key=step.idempotency_key,
            trigger=run.trigger,
            vars=run.vars,
            contact=run.contact,
            reply_to=walk.reply[1],
            now=self.clock.now(),
            effects=self.effects,
        )


def _plain_dict(value: dict[str, Any]) -> dict[str, Any]:
    return value if type(value) is dict else dict(value)
