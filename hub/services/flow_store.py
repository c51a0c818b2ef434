"""The engine's ports (flows.ports) on the hub's store (``hub.store``) and queue.

A run is one ``runs`` row (the engine's whole Run record as JSON, plus the columns the
hub queries: status, the contact waited on, the wait's end) and one ``run_steps`` row per
step. Every save is one unit, group-committed with the hub's other writes: the run's
compare-and-swap on ``revision``, its changed steps, and — for the save that ends it —
the ``flow.run.completed`` / ``flow.run.failed`` event with its sinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flows.ports import RunExistsError, StaleRunError
from flows.runs import Run, Step
from hub.context import Hub
from hub.event_data import flow_run
from hub.models import FlowRun
from hub.queue.base import enqueue_job
from hub.services.events import emit
from hub.services.flow_dispatch import FLOW_TIMER
from hub.store import Json, Unit, as_json, execute, fetch_all, fetch_one, fetch_value, insert_rows

_RUN_COLUMNS = (
    "flow_id",
    "flow_version",
    "status",
    "contact_phone",
    "wait_phone",
    "wait_channel_id",
    "wait_until",
    "doc",
    "updated_at",
    "finished_at",
)
_STEP_COLUMNS = ("run_id", "seq", "node_id", "status", "doc", "started_at", "finished_at")
_UPSERT_STEPS = (
    "ON CONFLICT (run_id, seq) DO UPDATE SET node_id = excluded.node_id, "
    "status = excluded.status, doc = excluded.doc, started_at = excluded.started_at, "
    "finished_at = excluded.finished_at"
)
_SET_RUN = ", ".join(f"{name} = ?" for name in _RUN_COLUMNS)


def _run_values(run: Run) -> tuple[Any, ...]:
    wait = run.wait
    reply = wait is not None and wait.kind == "reply"
    return (
        run.flow_id,
        run.flow_version,
        run.status,
        (run.contact or {}).get("phone"),
        wait.contact_phone if wait is not None and reply else None,
        wait.channel_id if wait is not None and reply else None,
        wait.until if wait is not None else None,
        Json(run.to_dict()),
        run.updated_at,
        run.finished_at,
    )


def _step_values(step: Step) -> tuple[Any, ...]:
    return (
        step.run_id,
        step.seq,
        step.node_id,
        step.status,
        Json(step.to_dict()),
        step.started_at,
        step.finished_at,
    )


def run_of(row: FlowRun) -> Run:
    """The engine's Run from an ORM row (the row's revision is the truth)."""
    run = Run.from_dict(dict(row.doc))
    run.revision = row.revision
    return run


def _run_from(doc: Any, revision: Any) -> Run:
    run = Run.from_dict(as_json(doc))
    run.revision = int(revision)
    return run


class SqlRunStore:
    """RunStore on the ``runs`` and ``run_steps`` tables (compare-and-swap on revision)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def create_run(self, run: Run, steps: Sequence[Step]) -> None:
        """Insert a new run and its first steps; RunExistsError if the id exists."""
        await self.hub.store.write(self._create(run, steps))

    def _create(self, run: Run, steps: Sequence[Step]) -> Unit[None]:
        inserted = yield from insert_rows(
            "runs",
            ("id", "revision", "created_at", *_RUN_COLUMNS),
            [(run.id, 0, run.created_at, *_run_values(run))],
            conflict="ON CONFLICT (id) DO NOTHING",
            returning="id",
        )
        if not inserted:
            raise RunExistsError(run.id)
        yield from _put_steps(steps)
        yield from _announce(self.hub, run, steps)

    async def get_run(self, run_id: str) -> Run | None:
        """The run, or None."""
        row = await self.hub.store.read(
            fetch_one("SELECT doc, revision FROM runs WHERE id = ?", (run_id,))
        )
        return _run_from(*row) if row is not None else None

    async def save_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        """Update the run if nobody else did since we read it, and upsert the steps."""
        await self.hub.store.write(self._save(run, steps))

    def _save(self, run: Run, steps: Sequence[Step]) -> Unit[None]:
        result = yield from execute(
            f"UPDATE runs SET revision = ?, {_SET_RUN} WHERE id = ? AND revision = ?",
            (run.revision + 1, *_run_values(run), run.id, run.revision),
        )
        if result.rowcount != 1:
            raise StaleRunError(run.id)
        yield from _put_steps(steps)
        yield from _announce(self.hub, run, steps)

    async def get_step(self, run_id: str, seq: int) -> Step | None:
        """One step by sequence number."""
        doc = await self.hub.store.read(
            fetch_value("SELECT doc FROM run_steps WHERE run_id = ? AND seq = ?", (run_id, seq))
        )
        return Step.from_dict(as_json(doc)) if doc is not None else None

    async def list_steps(self, run_id: str) -> list[Step]:
        """Every step of a run in order."""
        rows = await self.hub.store.read(
            fetch_all("SELECT doc FROM run_steps WHERE run_id = ? ORDER BY seq", (run_id,))
        )
        return [Step.from_dict(as_json(doc)) for (doc,) in rows]

    async def find_waiting_run(self, contact_phone: str, channel_id: str | None) -> Run | None:
        """The latest run waiting for this contact's reply on this channel (or any channel)."""
        sql = "SELECT doc, revision FROM runs WHERE status = 'waiting' AND wait_phone = ?"
        params: tuple[Any, ...] = (contact_phone,)
        if channel_id is not None:
            sql += " AND (wait_channel_id = ? OR wait_channel_id IS NULL)"
            params = (*params, channel_id)
        row = await self.hub.store.read(
            fetch_one(sql + " ORDER BY created_at DESC LIMIT 1", params)
        )
        return _run_from(*row) if row is not None else None


def _announce(hub: Hub, run: Run, steps: Sequence[Step]) -> Unit[None]:
    """``flow.run.completed`` / ``flow.run.failed`` in the save that ends the run (once:
    the dedupe key is the run and its outcome); a failure names its trigger's node type
    and the step it failed in (``trigger.run_failed`` reads them)."""
    if run.status in ("completed", "failed"):
        trigger_type: str | None = None
        failed: tuple[str, str] | None = None
        if run.status == "failed":
            trigger_type = yield from _step_type(run.id, 0, steps)
            if run.current_seq is not None:
                failed = yield from _step_node(run.id, run.current_seq, steps)
        yield from emit(
            hub,
            type=f"flow.run.{run.status}",
            channel_id="hub",
            dedupe_key=f"run:{run.id}:{run.status}",
            data=flow_run(
                run_id=run.id,
                flow_id=run.flow_id,
                flow_version=run.flow_version,
                status=run.status,
                error=run.error,
                contact=run.contact,
                vars=run.vars,
                finished_at=run.finished_at,
                trigger_node_type=trigger_type,
                failed_node_id=failed[0] if failed else None,
                failed_node_type=failed[1] if failed else None,
            ),
        )


def _step_node(run_id: str, seq: int, steps: Sequence[Step]) -> Unit[tuple[str, str] | None]:
    """Unit: (node id, node type) of a run's step: from the steps being saved, else stored."""
    for step in steps:
        if step.seq == seq:
            return step.node_id, step.node_type
    doc = yield from fetch_value(
        "SELECT doc FROM run_steps WHERE run_id = ? AND seq = ?", (run_id, seq)
    )
    if doc is None:
        return None
    found = as_json(doc)
    return str(found.get("node_id")), str(found.get("node_type"))


def _step_type(run_id: str, seq: int, steps: Sequence[Step]) -> Unit[str | None]:
    """Unit: the node type of a run's step (the trigger's: seq 0), if known."""
    node = yield from _step_node(run_id, seq, steps)
    return node[1] if node else None


def _put_steps(steps: Sequence[Step]) -> Unit[None]:
    if steps:
        yield from insert_rows(
            "run_steps", _STEP_COLUMNS, [_step_values(s) for s in steps], conflict=_UPSERT_STEPS
        )


class SqlFlowSource:
    """FlowSource on ``flow_versions`` (versions are immutable, so they are cached)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._cache: dict[tuple[str, int], Mapping[str, Any]] = {}

    async def get_definition(self, flow_id: str, version: int) -> Mapping[str, Any] | None:
        """The flow document of that version, or None."""
        key = (flow_id, version)
        if key in self._cache:
            return self._cache[key]
        raw = await self.hub.store.read(
            fetch_value(
                "SELECT definition FROM flow_versions WHERE flow_id = ? AND version = ?",
                (flow_id, version),
            )
        )
        if raw is None:
            return None
        if len(self._cache) > 1000:
            self._cache.clear()
        definition: Mapping[str, Any] = as_json(raw)
        self._cache[key] = definition
        return definition


class QueueScheduler:
    """Timers as delayed ``flow_timer`` jobs, one per (run, token)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def schedule(self, run_id: str, at: datetime, token: str) -> None:
        """Arrange one ``fire_timer(run_id, token)`` at ``at`` (idempotent per token)."""
        await self.hub.store.write(
            enqueue_job(
                FLOW_TIMER,
                {"run_id": run_id, "token": token},
                run_at=at,
                key=f"flow-timer:{run_id}:{token}"[:200],
                lease=self.hub.queue.lease(),
            )
        )


class HubClock:
    """The hub's clock (frozen in some tests)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def now(self) -> datetime:
        """Now, timezone-aware UTC."""
        return self.hub.clock()
