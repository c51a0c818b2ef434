"""The run book: loading and saving runs, writing their next steps, reading their flow.

The lowest layer of the :class:`~flows.executor.Executor`. Every change to a run is
saved by :meth:`RunBook._save`: one ``RunStore.save_run`` of the run and its changed
steps, atomic and compare-and-swap on ``Run.revision`` (the :class:`~flows.ports.RunStore`
contract); the in-memory revision moves on only once the store took the save. Steps are only ever
written together with their run (``create_run``, ``_save``), so no step is stored without
the run state that leads to it. The per-run step limit is enforced here.
"""

from __future__ import annotations

from pydantic import ValidationError

from flows.model import Flow, Node, parse_flow
from flows.ports import Clock, FlowSource, RunStore
from flows.registry import get_spec
from flows.runs import Run, Step, idempotency_key

__all__ = ["FlowNotFoundError", "RunBook", "RunNotFoundError"]

#: Parsed flow versions kept in memory (versions never change, so caching is safe).
_FLOW_CACHE = 256


class RunNotFoundError(LookupError):
    """No run with that id."""


class FlowNotFoundError(LookupError):
    """The flow source has no such flow version."""


class RunBook:
    """Runs and steps in the store, flow versions from the source, the step limit.

    A layer of one object: :class:`~flows.executor.Executor` sets these attributes."""

    store: RunStore
    flows: FlowSource
    clock: Clock
    step_limit: int
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

    async def _fail_run(self, run: Run, error: str, steps: list[Step] | None = None) -> None:
        self._mark_failed(run, error)
        await self._save(run, steps or [])

    # -- the store ---------------------------------------------------------------------

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
