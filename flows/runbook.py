"""The run book: loading and saving runs, writing their next steps, reading their flow.

The lowest layer of the :class:`~flows.executor.Executor`. A run is moved in memory as a
:class:`Walk`: the run record, its current step, and the steps changed since the run was
last saved (``pending``). :meth:`RunBook._stage` records a change in the walk only;
:meth:`RunBook._flush` is a *durable point*: one ``RunStore.save_run`` of the run and
every pending step, atomic and compare-and-swap on ``Run.revision`` (the
:class:`~flows.ports.RunStore` contract) — or, for a new run the store has never seen,
one ``create_run`` of the run and all its steps so far. The in-memory revision moves on
only once the store took the save. Steps are only ever written together with their run,
so no step is stored without the run state that leads to it, and what a walk holds
unsaved is always recomputed, identically, from the last save (see
:mod:`flows.stepping` for when the durable points come). The per-run step limit is
enforced here, and so are the flow's ``settings``: a *finished* step is saved without its
input / output (``store_step_data: false``) or with the ``redact`` keys' values replaced
— a running or waiting step keeps them, as a resume after a crash or a reply reads them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from flows.model import Flow, FlowSettings, Node, parse_flow
from flows.ports import Clock, FlowSource, ReplyTo, RunObserver, RunStore
from flows.registry import get_spec
from flows.runs import Run, Step, idempotency_key

__all__ = ["REDACTED", "FlowNotFoundError", "RunBook", "RunNotFoundError", "Walk", "stored_step"]

#: Parsed flow versions kept in memory (versions never change, so caching is safe).
_FLOW_CACHE = 256
#: What a ``redact`` key's value is stored as.
REDACTED = "[redacted]"
#: Step statuses the engine never reads the input / output of again.
_DONE = frozenset({"succeeded", "failed", "cancelled"})


class RunNotFoundError(LookupError):
    """No run with that id."""


class FlowNotFoundError(LookupError):
    """The flow source has no such flow version."""


@dataclass(eq=False)
class Walk:
    """A run being moved in memory, and what of it the store does not have yet."""

    run: Run
    #: False for a new run the store has never seen: its first flush creates it.
    stored: bool = True
    #: Steps changed since the last save, by ``seq``; saved with the run at the next flush.
    pending: dict[int, Step] = field(default_factory=dict)
    #: Whether the run changed since the last save (with or without pending steps).
    dirty: bool = False
    #: The steps of the run this walk holds, by ``seq`` (no store read for them).
    known: dict[int, Step] = field(default_factory=dict)
    #: How many times this walk saved the run (0: nothing it did is stored yet).
    saves: int = 0
    #: ``(run.inbound, reply_to(run.inbound))`` of the last step (``inbound`` is only ever
    #: replaced, never changed in place).
    reply: tuple[object, ReplyTo | None] | None = None
    #: What templates see as ``run`` (built once per walk).
    run_view: dict[str, Any] | None = None


class RunBook:
    """Runs and steps in the store, flow versions from the source, the step limit.

    A layer of one object: :class:`~flows.executor.Executor` sets these attributes."""

    store: RunStore
    flows: FlowSource
    clock: Clock
    step_limit: int
    #: Told of steps run and runs ended (None: nobody watches).
    observer: RunObserver | None
    _flow_cache: dict[tuple[str, int], Flow]

    # -- the next step -----------------------------------------------------------------

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

    def _mark_failed(self, run: Run, error: str) -> None:
        run.status = "failed"
        run.error = error
        run.wait = None
        run.finished_at = self.clock.now()

    def _fail_run(self, walk: Walk, error: str, steps: list[Step] | None = None) -> None:
        self._mark_failed(walk.run, error)
        self._stage(walk, steps or [])

    # -- the store ---------------------------------------------------------------------

    def _stage(self, walk: Walk, steps: list[Step]) -> None:
        """Record a change of the run (and of ``steps``) for the next flush."""
        walk.dirty = True
        for step in steps:
            walk.pending[step.seq] = step
            walk.known[step.seq] = step

    async def _flush(self, walk: Walk) -> None:
        """A durable point: save the run with every pending step (create a new run)."""
        if not walk.dirty:
            return
        run = walk.run
        run.updated_at = self.clock.now()
        steps = await self._stored(run, list(walk.pending.values()))
        if walk.stored:
            await self.store.save_run(run, steps)
            run.revision += 1
        else:
            await self.store.create_run(run, steps)
            walk.stored = True
        walk.pending.clear()
        walk.dirty = False
        walk.saves += 1
        self._saved(run)

    async def _step_of(self, walk: Walk, seq: int | None) -> Step:
        """A step of the walk's run: from the walk if it holds it, else from the store."""
        step = walk.known.get(seq) if seq is not None else None
        if step is None:
            step = await self._get_step(walk.run, seq)
            walk.known[step.seq] = step
        return step

    async def _save(self, run: Run, steps: list[Step]) -> None:
        run.updated_at = self.clock.now()
        await self.store.save_run(run, await self._stored(run, steps))
        run.revision += 1
        self._saved(run)

    async def _stored(self, run: Run, steps: list[Step]) -> list[Step]:
        """The steps as the store is to keep them (the flow's ``settings`` applied to the
        finished ones); the walk keeps the originals."""
        if not steps:
            return steps
        try:
            settings = (await self._flow(run.flow_id, run.flow_version)).settings
        except (FlowNotFoundError, ValidationError):
            return steps  # the run fails on it elsewhere; nothing to strip by
        if not settings.strips:
            return steps
        return [stored_step(step, settings) if step.status in _DONE else step for step in steps]

    def _saved(self, run: Run) -> None:
        """The store took a save of ``run``: if it ended the run, say so (a run that ended
        is never saved again, so each end is told once)."""
        if run.is_terminal and self.observer is not None:
            self.observer.run_ended(run.status)

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

    # -- the flow ----------------------------------------------------------------------

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

    async def _flow_or_fail(self, walk: Walk) -> Flow | None:
        run = walk.run
        try:
            return await self._flow(run.flow_id, run.flow_version)
        except (FlowNotFoundError, ValidationError) as exc:
            self._fail_run(walk, f"flow version cannot be loaded: {exc}")
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


def stored_step(step: Step, settings: FlowSettings) -> Step:
    """A copy of a finished step as ``settings`` let it be stored."""
    if not settings.store_step_data:
        return replace(step, input=None, output=None, redacted=True)
    keys = frozenset(settings.redact)
    found: list[bool] = []
    stripped = replace(
        step, input=_redact(step.input, keys, found), output=_redact(step.output, keys, found)
    )
    stripped.redacted = bool(found)
    return stripped


def _redact(value: Any, keys: Collection[str], found: list[bool]) -> Any:
    """``value`` with the values of ``keys`` replaced by REDACTED, at any depth."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in keys:
                found.append(True)
                out[key] = REDACTED
            else:
                out[key] = _redact(item, keys, found)
        return out
    if isinstance(value, list | tuple):
        return [_redact(item, keys, found) for item in value]
    return value
