"""The engine's ports (flows.ports) on the hub's database and queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows.ports import RunExistsError, StaleRunError
from flows.runs import Run, Step
from hub.context import Hub
from hub.dbutil import insert_ignore
from hub.models import FlowRun, FlowStep, FlowVersion
from hub.queue.base import enqueue
from hub.services.flow_dispatch import FLOW_TIMER


def _run_columns(run: Run) -> dict[str, Any]:
    wait = run.wait
    contact = run.contact or {}
    return {
        "flow_id": run.flow_id,
        "flow_version": run.flow_version,
        "status": run.status,
        "contact_phone": contact.get("phone"),
        "wait_phone": wait.contact_phone if wait and wait.kind == "reply" else None,
        "wait_channel_id": wait.channel_id if wait and wait.kind == "reply" else None,
        "wait_until": wait.until if wait else None,
        "doc": run.to_dict(),
        "updated_at": run.updated_at,
        "finished_at": run.finished_at,
    }


def _step_row(step: Step) -> dict[str, Any]:
    return {
        "run_id": step.run_id,
        "seq": step.seq,
        "node_id": step.node_id,
        "status": step.status,
        "doc": step.to_dict(),
        "started_at": step.started_at,
        "finished_at": step.finished_at,
    }


def run_of(row: FlowRun) -> Run:
    """The engine's Run from a row (the row's revision is the truth)."""
    run = Run.from_dict(dict(row.doc))
    run.revision = row.revision
    return run


class SqlRunStore:
    """RunStore on the ``runs`` and ``run_steps`` tables (compare-and-swap on revision)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def create_run(self, run: Run, steps: Sequence[Step]) -> None:
        """Insert a new run and its first steps; RunExistsError if the id exists."""
        async with self.hub.db.write() as session:
            inserted = await insert_ignore(
                session,
                FlowRun,
                {"id": run.id, "revision": 0, "created_at": run.created_at, **_run_columns(run)},
                conflict=["id"],
            )
            if not inserted:
                raise RunExistsError(run.id)
            await self._put_steps(session, steps)

    async def get_run(self, run_id: str) -> Run | None:
        """The run, or None."""
        async with self.hub.db.read() as session:
            row = await session.get(FlowRun, run_id)
            return run_of(row) if row is not None else None

    async def save_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        """Update the run if nobody else did since we read it, and upsert the steps."""
        async with self.hub.db.write() as session:
            result = await session.execute(
                sa.update(FlowRun)
                .where(col(FlowRun.id) == run.id, col(FlowRun.revision) == run.revision)
                .values(revision=run.revision + 1, **_run_columns(run))
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise StaleRunError(run.id)
            await self._put_steps(session, steps)

    async def _put_steps(self, session: AsyncSession, steps: Sequence[Step]) -> None:
        for step in steps:
            values = _step_row(step)
            found = await session.get(FlowStep, (step.run_id, step.seq))
            if found is None:
                session.add(FlowStep(**values))
            else:
                for key, value in values.items():
                    setattr(found, key, value)
                session.add(found)

    async def get_step(self, run_id: str, seq: int) -> Step | None:
        """One step by sequence number."""
        async with self.hub.db.read() as session:
            row = await session.get(FlowStep, (run_id, seq))
            return Step.from_dict(dict(row.doc)) if row is not None else None

    async def list_steps(self, run_id: str) -> list[Step]:
        """Every step of a run in order."""
        async with self.hub.db.read() as session:
            rows = await session.execute(
                sa.select(FlowStep)
                .where(col(FlowStep.run_id) == run_id)
                .order_by(col(FlowStep.seq))
            )
            return [Step.from_dict(dict(r.doc)) for r in rows.scalars()]

    async def find_waiting_run(self, contact_phone: str, channel_id: str | None) -> Run | None:
        """The latest run waiting for this contact's reply on this channel (or any channel)."""
        stmt = sa.select(FlowRun).where(
            col(FlowRun.status) == "waiting", col(FlowRun.wait_phone) == contact_phone
        )
        if channel_id is not None:
            stmt = stmt.where(
                sa.or_(
                    col(FlowRun.wait_channel_id) == channel_id,
                    col(FlowRun.wait_channel_id).is_(None),
                )
            )
        async with self.hub.db.read() as session:
            row = (
                await session.execute(stmt.order_by(col(FlowRun.created_at).desc()).limit(1))
            ).scalar()
            return run_of(row) if row is not None else None


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
        async with self.hub.db.read() as session:
            row = (
                await session.execute(
                    sa.select(FlowVersion).where(
                        col(FlowVersion.flow_id) == flow_id, col(FlowVersion.version) == version
                    )
                )
            ).scalar()
        if row is None:
            return None
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[key] = row.definition
        return row.definition


class QueueScheduler:
    """Timers as delayed ``flow_timer`` jobs, one per (run, token)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def schedule(self, run_id: str, at: datetime, token: str) -> None:
        """Arrange one ``fire_timer(run_id, token)`` at ``at`` (idempotent per token)."""
        async with self.hub.db.write() as session:
            await enqueue(
                session,
                FLOW_TIMER,
                {"run_id": run_id, "token": token},
                run_at=at,
                key=f"flow-timer:{run_id}:{token}"[:200],
            )
        self.hub.queue.notify()


class HubClock:
    """The hub's clock (frozen in some tests)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def now(self) -> datetime:
        """Now, timezone-aware UTC."""
        return self.hub.clock()
