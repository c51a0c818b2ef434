"""One process's flow engine: the executor on the hub's ports, and the trigger index.

``hub.app.build_hub`` creates one :class:`FlowsRuntime` as ``Hub.flows``. The trigger
index (which published flow wants which event) lives in memory; a flow published,
paused or deleted in this process invalidates it at once, and other processes' changes
are noticed within :data:`INDEX_TTL_S`.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from flows import Executor, PublishedFlow, TriggerIndex
from hub.context import Hub
from hub.ids import new_id
from hub.metrics import FlowMetrics
from hub.models import Flow, FlowVersion
from hub.services.flow_effects import HubEffects
from hub.services.flow_store import HubClock, QueueScheduler, SqlFlowSource, SqlRunStore

#: Seconds a process trusts its trigger index before checking for newly published flows.
INDEX_TTL_S = 2.0


class FlowsRuntime:
    """One process's engine: the executor on the hub's ports, and the trigger index."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store: SqlRunStore = SqlRunStore(hub)
        self.executor: Executor = Executor(
            store=self.store,
            flows=SqlFlowSource(hub),
            effects=HubEffects(hub),
            scheduler=QueueScheduler(hub),
            clock=HubClock(hub),
            step_limit=hub.settings.flow_step_limit,
            new_run_id=lambda: new_id("run"),
            observer=FlowMetrics(),
        )
        self._index: TriggerIndex | None = None
        self._index_stamp: tuple[Any, ...] | None = None
        self._index_checked = 0.0

    def cached_index(self) -> TriggerIndex:
        """The index as last built (what a sink inside a unit, which cannot wait, uses)."""
        if self._index is None:
            self._index = TriggerIndex.build([])  # nothing built yet: empty until index()
            self._index_checked = 0.0
        return self._index

    async def refresh(self) -> None:
        """Rebuild the index now (a flow was published, paused or deleted here)."""
        self._index_stamp = None
        self._index_checked = 0.0
        await self.index()

    async def index(self) -> TriggerIndex:
        """The trigger index of every enabled flow's published version."""
        now = time.monotonic()
        if self._index is not None and now - self._index_checked < INDEX_TTL_S:
            return self._index
        self._index_checked = now
        async with self.hub.db.read() as session:
            stamp = tuple(
                (
                    await session.execute(sa.select(sa.func.count(), sa.func.max(Flow.updated_at)))
                ).one()
            )
            if self._index is not None and stamp == self._index_stamp:
                return self._index
            rows = await session.execute(
                sa.select(
                    col(FlowVersion.flow_id), col(FlowVersion.version), col(FlowVersion.definition)
                )
                .join(Flow, col(Flow.id) == col(FlowVersion.flow_id))
                .where(
                    col(Flow.published_version) == col(FlowVersion.version),
                    col(Flow.enabled).is_(True),
                    col(Flow.deleted_at).is_(None),
                )
            )
            published = [
                PublishedFlow(fid, version, definition) for fid, version, definition in rows.all()
            ]
        self._index = TriggerIndex.build(published)
        self._index_stamp = stamp
        return self._index
