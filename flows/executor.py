"""The durable executor: walks a run through its pinned flow version one step at a time.

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
key, so the send pipeline dedupes its effects) or after it (the next step runs). Calling
:meth:`Executor.advance` again is always safe; so is calling it from two workers at once:
saves are compare-and-swap on ``Run.revision``, the loser sees :class:`StaleRunError` and
stops. A timer is requested after the wait is saved, and ``advance`` on a waiting run
requests it again (idempotent per token), so a crash between the two loses nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError

from flows.expressions import Renderer, TemplateError, template_context
from flows.model import ERROR_PORT, Flow, Node, RetryPolicy, parse_flow
from flows.nodes._common import event_data, normalize_phone
from flows.ports import (
    Clock,
    ContactView,
    EffectError,
    Effects,
    FlowSource,
    ReplyTo,
    RunExistsError,
    RunStore,
    Scheduler,
    StaleRunError,
)
from flows.registry import NodeConfig, NodeContext, NodeError, NodeResult, NodeSpec, get_spec
from flows.runs import Run, Step, Wait, idempotency_key

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
#: Parsed flow versions kept in memory (versions never change, so caching is safe).
_FLOW_CACHE = 256
_NO_RETRY = RetryPolicy()


class RunNotFoundError(LookupError):
    """No run with that id."""


class FlowNotFoundError(LookupError):
    """The flow source has no such flow version."""


class ReplayError(ValueError):
    """The run cannot be replayed that way (says why)."""


@dataclass
class _Failure:
    message: str
    retryable: bool
    output: dict[str, Any] | None = None


def contact_phone_of(event: Mapping[str, Any]) -> str | None:
    """The contact an event is about: the sender of an inbound SMS, the recipient of a
    delivery report; None for other events (HTTP bodies)."""
    data = event_data(event)
    kind = str(event.get("type") or "")
    if kind == "sms.received":
        phone = data.get("from")
    elif kind.startswith("sms."):
        phone = data.get("to")
    else:
        return None
    return str(phone) if phone else None


class Executor:
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
    ) -> None:
        self.store = store
        self.flows = flows
        self.effects = effects
        self.scheduler = scheduler
        self.clock = clock
        self.renderer = renderer or Renderer()
        self.step_limit = step_limit
        self._new_run_id = new_run_id or (lambda: f"run_{uuid.uuid4().hex}")
        self._flow_cache: dict[tuple[str, int], Flow] = {}

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
        idempotent: starting the same run twice returns the existing one."""
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
            contact=contact.to_dict() if contact else _bare_contact(phone),
            inbound=_inbound_of(trigger),
            replay_of=replay_of,
        )
        first = self._new_step(run, node, attempt=1)
        try:
            await self.store.create_run(run, [first])
        except RunExistsError:
            existing = await self._load(run.id)
            return await self.advance(existing.id) if advance else existing
        return await self.advance(run.id) if advance else run

    async def advance(self, run_id: str) -> Run:
        """Execute steps until the run waits or ends; safe to call at any time, repeatedly."""
        run = await self._load(run_id)
        while True:
            if run.status == "waiting":
                # Just entered the wait, or called again after a crash that may have come
                # between saving the wait and requesting its timer: (re)arm, idempotently.
                await self._arm(run)
                return run
            if run.status != "running":
                return run
            try:
                run = await self._step(run)
            except StaleRunError:
                # Another worker is moving this run; it will carry on from here.
                return await self._load(run_id)

    async def deliver_reply(self, run_id: str, event: Mapping[str, Any]) -> bool:
        """Hand an inbound SMS to a run waiting for a reply; False if it is not waiting
        (then the hub treats the SMS as a new message for the triggers)."""
        event_id = _event_id(event)
        for _ in range(_CAS_RETRIES):
            run = await self._load(run_id)
            if event_id is not None and event_id in run.seen_events:
                # A redelivery of a reply this run already took (the dispatch job ran
                # again after a crash): make sure the run carries on, take nothing.
                if run.status == "running":
                    await self.advance(run_id)
                return True
            wait = run.wait
            if run.status != "waiting" or wait is None or wait.kind != "reply":
                return False
            data = dict(event_data(event))
            sender = normalize_phone(str(data.get("from") or ""))
            if wait.contact_phone and sender != normalize_phone(wait.contact_phone):
                return False
            step = await self._get_step(run, wait.step_seq)
            output = {
                **(step.output or {}),
                **{
                    k: data.get(k)
                    for k in (
                        "body",
                        "from",
                        "to",
                        "message_id",
                        "channel_id",
                        "device_id",
                        "sim_slot",
                        "received_at",
                    )
                },
                "event_id": event_id,
                "timed_out": False,
            }
            run.inbound = _inbound_of(event) or run.inbound
            if event_id is not None:
                run.seen_events = [*run.seen_events, event_id][-_SEEN_EVENTS:]
            try:
                await self._leave_wait(run, step, wait.reply_port, output)
            except StaleRunError:
                continue
            await self.advance(run_id)
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
                return await self.advance(run_id) if run.status == "running" else run
            try:
                if wait.kind == "retry":
                    await self._end_backoff(run, wait)
                else:
                    step = await self._get_step(run, wait.step_seq)
                    output = dict(step.output or {})
                    if wait.kind == "reply":
                        output["timed_out"] = True
                    await self._leave_wait(run, step, wait.timeout_port, output)
            except StaleRunError:
                continue
            return await self.advance(run_id)
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

    # -- bookkeeping -------------------------------------------------------------------

    def _follow(self, run: Run, flow: Flow, node_id: str, port: str) -> list[Step]:
        """Create the step the edge leads to, or end the run if no edge (or no steps) left."""
        target_id = flow.next_node(node_id, port)
        target = flow.node(target_id) if target_id else None
        if target is None:
            run.status = "completed"
            run.finished_at = self.clock.now()
            return []
        if run.step_count >= self.step_limit:
            self._mark_failed(run, f"step limit of {self.step_limit} reached (a loop?)")
            return []
        return [self._new_step(run, target, attempt=1)]

    def _retry_step(self, run: Run, node: Node, failed: Step) -> list[Step]:
        if run.step_count >= self.step_limit:
            self._mark_failed(run, f"step limit of {self.step_limit} reached while retrying")
            return []
        return [self._new_step(run, node, attempt=failed.attempt + 1, visit=failed.visit)]

    def _new_step(self, run: Run, node: Node, *, attempt: int, visit: int | None = None) -> Step:
        if visit is None:
            visit = run.visits.get(node.id, 0) + 1
            run.visits[node.id] = visit
        seq = run.step_count
        run.step_count += 1
        run.current_seq = seq
        return Step(
            run_id=run.id,
            seq=seq,
            node_id=node.id,
            node_type=node.type,
            attempt=attempt,
            visit=visit,
            idempotency_key=idempotency_key(run.id, node.id, visit),
            status="running",
            started_at=self.clock.now(),
        )

    def _absorb(self, run: Run, step: Step, result: NodeResult) -> None:
        run.outputs[step.node_id] = result.output
        if result.vars:
            run.vars.update(result.vars)
        if result.contact is not None:
            run.contact = result.contact.to_dict()

    def _mark_failed(self, run: Run, error: str) -> None:
        run.status = "failed"
        run.error = error
        run.wait = None
        run.finished_at = self.clock.now()

    async def _fail_run(self, run: Run, error: str, steps: list[Step] | None = None) -> None:
        self._mark_failed(run, error)
        await self._save(run, steps or [])

    async def _save(self, run: Run, steps: list[Step]) -> None:
        run.updated_at = self.clock.now()
        await self.store.save_run(run, steps)
        run.revision += 1

    async def _load(self, run_id: str) -> Run:
        run = await self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    async def _get_step(self, run: Run, seq: int | None) -> Step:
        step = await self.store.get_step(run.id, seq) if seq is not None else None
        if step is None:
            raise RunNotFoundError(f"run {run.id} has no step {seq}")
        return step

    async def _flow(self, flow_id: str, version: int) -> Flow:
        key = (flow_id, version)
        flow = self._flow_cache.get(key)
        if flow is None:
            raw = await self.flows.get_definition(flow_id, version)
            if raw is None:
                raise FlowNotFoundError(f"flow {flow_id} version {version} not found")
            flow = parse_flow(raw)
            if len(self._flow_cache) >= _FLOW_CACHE:
                self._flow_cache.pop(next(iter(self._flow_cache)))
            self._flow_cache[key] = flow
        return flow

    async def _flow_or_fail(self, run: Run) -> Flow | None:
        try:
            return await self._flow(run.flow_id, run.flow_version)
        except (FlowNotFoundError, ValidationError) as exc:
            await self._fail_run(run, f"flow version cannot be loaded: {exc}")
            return None

    def _trigger_node(self, flow: Flow, node_id: str | None) -> Node:
        candidates = [
            node
            for node in flow.nodes
            if (spec := get_spec(node.type)) is not None and spec.is_trigger
        ]
        if node_id is not None:
            candidates = [node for node in candidates if node.id == node_id]
        if not candidates:
            raise ValueError(f"flow has no trigger node {node_id or ''}".strip())
        return candidates[0]

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
            reply_to=_reply_to(run.inbound),
            now=self.clock.now(),
            effects=self.effects,
        )


class _ConfigError(Exception):
    """The node's config did not render or validate (never retried)."""


def _bare_contact(phone: str | None) -> dict[str, Any] | None:
    if not phone:
        return None
    return ContactView(phone=phone).to_dict()


def _inbound_of(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The reply route an event offers: the sender of an inbound SMS, or the recipient
    (and original route) of a delivery report."""
    phone = contact_phone_of(event)
    if phone is None:
        return None
    data = event_data(event)
    return {
        "phone": phone,
        "message_id": data.get("message_id"),
        "channel_id": data.get("channel_id"),
        "device_id": data.get("device_id"),
        "sim_slot": data.get("sim_slot"),
    }


def _reply_to(inbound: Mapping[str, Any] | None) -> ReplyTo | None:
    if not inbound or not inbound.get("phone"):
        return None
    sim = inbound.get("sim_slot")
    return ReplyTo(
        phone=str(inbound["phone"]),
        message_id=_str_or_none(inbound.get("message_id")),
        channel_id=_str_or_none(inbound.get("channel_id")),
        device_id=_str_or_none(inbound.get("device_id")),
        sim_slot=sim if isinstance(sim, int) and not isinstance(sim, bool) else None,
    )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _event_id(event: Mapping[str, Any]) -> str | None:
    value = event.get("id") or event_data(event).get("message_id")
    return str(value) if value else None
