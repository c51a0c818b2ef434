"""Stepping: moves a run's current step to its next saved state.

State lives in the :class:`~flows.runs.Run` record plus an append-only list of
:class:`~flows.runs.Step` records, saved through the :class:`~flows.ports.RunStore`.

How a step goes (every arrow is one atomic ``save_run``):

1. The step is created as ``running`` in the same save that finished the previous step.
2. Its config templates are rendered; for nodes with effects the rendered ``input`` is
   saved before the handler runs (the history shows what was in flight, and a resumed
   step reuses exactly that input).
3. The handler runs. Its effects carry the step's idempotency key.
4. The outcome is saved together with the next step: ``succeeded`` + next step ``running``;
   or ``waiting`` (reply / delay) with the run's :class:`~flows.runs.Wait`; or ``failed`` +
   a retry (immediately, or after a backoff timer), the ``error`` edge, or a failed run.

A crash anywhere leaves the run either before a save (the step runs again, with the same
key, so the send pipeline dedupes its effects) or after it (the next step runs). A wait's
timer is requested only after the wait is saved (:meth:`StepMachine._arm`, which
``Executor.advance`` calls on every waiting run). This is the middle layer of the
:class:`~flows.executor.Executor`, over :class:`~flows.runbook.RunBook`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from flows.events import reply_to
from flows.expressions import Renderer, TemplateError, template_context
from flows.model import ERROR_PORT, Flow, Node, RetryPolicy
from flows.ports import EffectError, Effects, Scheduler
from flows.registry import NodeConfig, NodeContext, NodeError, NodeResult, NodeSpec, get_spec
from flows.runbook import RunBook
from flows.runs import Run, Step, Wait

__all__ = ["StepMachine"]

_NO_RETRY = RetryPolicy()


@dataclass
class _Failure:
    message: str
    retryable: bool
    output: dict[str, Any] | None = None


class _ConfigError(Exception):
    """The node's config did not render or validate (never retried)."""


class StepMachine(RunBook, abc.ABC):
    """Runs one step (render, handler, outcome) and ends waits; saves through the run book.

    A layer of one object: :class:`~flows.executor.Executor` sets these attributes."""

    effects: Effects
    scheduler: Scheduler
    renderer: Renderer

    @abc.abstractmethod
    async def cancel(self, run_id: str, reason: str = "cancelled") -> Run:
        """Stop a run that has not ended (a newer wait supersedes an older run with it)."""

    # -- one step ----------------------------------------------------------------------

    async def _step(self, run: Run) -> Run:
        """Run the current step to its next saved state."""
        step = await self._get_step(run, run.current_seq)
        flow = await self._flow_or_fail(run)
        if flow is None:
            return run
        node = flow.node(step.node_id)
        spec = get_spec(node.type) if node else None
        if node is None or spec is None:
            await self._fail_run(run, f"node {step.node_id!r} cannot run (missing or unknown type)")
            return run
        if step.status in ("succeeded", "failed"):
            # Unreachable with an atomic store (the next step is saved with the result);
            # tolerated so a store that split the save still makes progress.
            return await self._after_finished(run, flow, node, step)
        if step.status != "running":
            await self._fail_run(run, f"inconsistent run: step {step.seq} is {step.status}")
            return run
        try:
            config, rendered = self._config(spec, node, run, step)
        except _ConfigError as exc:
            return await self._failed(run, flow, node, step, _Failure(str(exc), False))
        if spec.effectful and step.input is None:
            step.input = rendered
            await self._save(run, [step])
        step.input = rendered
        try:
            result = await spec.handler(config, self._context(run, step))
        except (NodeError, EffectError) as exc:
            output = exc.output if isinstance(exc, NodeError) else None
            return await self._failed(
                run, flow, node, step, _Failure(str(exc), exc.retryable, output)
            )
        if result.wait is not None:
            return await self._wait(run, step, result)
        return await self._succeeded(run, flow, step, result)

    def _config(
        self, spec: NodeSpec[Any], node: Node, run: Run, step: Step
    ) -> tuple[NodeConfig, dict[str, Any]]:
        """The node's config with templates rendered (or the input saved before a crash)."""
        model = spec.config_model
        try:
            if step.input is not None:
                return model.model_validate(step.input), step.input
            data = model.model_validate(node.config).model_dump(mode="json")
            context = self._template_context(run)
            with self.renderer.budget():
                for name, kind in model.template_fields().items():
                    if data.get(name) is not None:
                        try:
                            data[name] = self.renderer.render_value(
                                data[name], context, native=kind == "value"
                            )
                        except TemplateError as exc:
                            raise _ConfigError(f"config.{name}: {exc}") from exc
            return model.model_validate(data), data
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "config"
            raise _ConfigError(f"config.{where}: {first['msg']}") from exc

    async def _succeeded(self, run: Run, flow: Flow, step: Step, result: NodeResult) -> Run:
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
        await self._save(run, changed)
        return run

    async def _wait(self, run: Run, step: Step, result: NodeResult) -> Run:
        request = result.wait
        assert request is not None
        step.status = "waiting"
        step.output = result.output
        self._absorb(run, step, result)
        if request.kind == "reply" and request.contact_phone:
            await self._supersede(run, request.contact_phone, request.channel_id)
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
        await self._save(run, [step])
        return run  # advance() arms the timer

    async def _failed(self, run: Run, flow: Flow, node: Node, step: Step, failure: _Failure) -> Run:
        """Record a failed attempt; then retry, take the error edge, or fail the run."""
        now = self.clock.now()
        step.status = "failed"
        step.error = failure.message
        step.output = failure.output or {"error": failure.message}
        step.finished_at = now
        policy = node.retry or _NO_RETRY
        if failure.retryable and step.attempt < policy.attempts:
            delay = policy.delay_before(step.attempt)
            if delay > 0:
                run.status = "waiting"
                run.wait = Wait(
                    kind="retry",
                    token=f"retry:{step.seq}",
                    until=now + timedelta(seconds=delay),
                    step_seq=step.seq,
                )
                await self._save(run, [step])
                return run  # advance() arms the timer
            changed = [step, *self._retry_step(run, node, step)]
            await self._save(run, changed)
            return run
        return await self._after_finished(run, flow, node, step)

    async def _after_finished(self, run: Run, flow: Flow, node: Node, step: Step) -> Run:
        """Continue after a finished step: by its port, the error edge, or end the run."""
        changed = [step]
        if step.status == "failed":
            if flow.next_node(node.id, ERROR_PORT) is None:
                await self._fail_run(run, f"{node.id}: {step.error}", changed)
                return run
            step.port = ERROR_PORT
            run.outputs[node.id] = step.output
            changed += self._follow(run, flow, node.id, ERROR_PORT)
        elif step.port is not None:
            changed += self._follow(run, flow, node.id, step.port)
        else:
            run.status = "completed"
            run.finished_at = self.clock.now()
        await self._save(run, changed)
        return run

    # -- waits -------------------------------------------------------------------------

    async def _leave_wait(self, run: Run, step: Step, port: str, output: dict[str, Any]) -> None:
        """End a reply / delay wait: the step succeeds by ``port`` and the next one starts."""
        flow = await self._flow(run.flow_id, run.flow_version)
        step.status = "succeeded"
        step.port = port
        step.output = output
        step.finished_at = self.clock.now()
        run.outputs[step.node_id] = output
        run.status = "running"
        run.wait = None
        await self._save(run, [step, *self._follow(run, flow, step.node_id, port)])

    async def _end_backoff(self, run: Run, wait: Wait) -> None:
        """A retry backoff is over: start the next attempt."""
        flow = await self._flow(run.flow_id, run.flow_version)
        failed = await self._get_step(run, wait.step_seq)
        node = flow.node(failed.node_id)
        assert node is not None
        run.status = "running"
        run.wait = None
        await self._save(run, self._retry_step(run, node, failed))

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

    def _template_context(self, run: Run) -> dict[str, Any]:
        return template_context(
            trigger=run.trigger,
            vars=run.vars,
            steps=run.outputs,
            contact=run.contact,
            run={
                "id": run.id,
                "flow_id": run.flow_id,
                "version": run.flow_version,
                "started_at": run.created_at.isoformat(),
            },
        )

    def _context(self, run: Run, step: Step) -> NodeContext:
        return NodeContext(
            run_id=run.id,
            flow_id=run.flow_id,
            flow_version=run.flow_version,
            node_id=step.node_id,
            attempt=step.attempt,
            idempotency_key=step.idempotency_key,
            trigger=run.trigger,
            vars=run.vars,
            contact=run.contact,
            reply_to=reply_to(run.inbound),
            now=self.clock.now(),
            effects=self.effects,
        )
