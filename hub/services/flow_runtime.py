"""One process's flow engine: the executor on the hub's ports, and the trigger index.

``hub.app.build_hub`` creates one :class:`FlowsRuntime` as ``Hub.flows``. The trigger
index (which published flow wants which event) lives in memory. A flow published, paused
or deleted in this process rebuilds it at once; other processes learn of it by
notification, not by polling:

* on PostgreSQL every process LISTENs on :data:`CHANNEL` (a dedicated asyncpg
  connection, :class:`IndexListener`, reconnecting after a drop) and the process that
  changed a flow NOTIFYs after its transaction committed; a notification rebuilds the
  index at once. A missed one is caught by the safety net: the flows table's stamp (count
  and newest ``updated_at``) is checked every :data:`SAFETY_NET_S`, and the index is
  rebuilt whenever the listener (re)connects. While it is not connected, the stamp is
  checked every :data:`POLL_S` as before;
* on SQLite (one machine, no notifications) the stamp is checked every :data:`POLL_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
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

log = logging.getLogger("smshub.flows")

#: The PostgreSQL notification channel of "a flow was published, paused or deleted".
CHANNEL = "smshub_flows"
#: Seconds between stamp checks without notifications (SQLite; listener not connected).
POLL_S = 2.0
#: Seconds between stamp checks while notifications arrive (the safety net).
SAFETY_NET_S = 45.0
#: Seconds between a lost listener connection and the next attempt; and between pings.
RECONNECT_S = 1.0
PING_S = 10.0


class FlowsRuntime:
    """One process's engine: the executor on the hub's ports, and the trigger index."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store: SqlRunStore = SqlRunStore(hub)
        effects = HubEffects(hub)
        self.executor: Executor = Executor(
            store=self.store,
            flows=SqlFlowSource(hub),
            effects=effects,
            scheduler=QueueScheduler(hub),
            clock=HubClock(hub),
            step_limit=hub.settings.flow_step_limit,
            new_run_id=lambda: new_id("run"),
            observer=FlowMetrics(),
            secrets=effects.secret_tokens,
        )
        self._index: TriggerIndex | None = None
        self._index_stamp: tuple[Any, ...] | None = None
        self._index_checked = 0.0
        #: Notifications seen, and how many of them the index was checked after.
        self._changes = 0
        self._checked_changes = 0
        self._listener: IndexListener | None = None
        self._rebuild: asyncio.Task[TriggerIndex] | None = None

    def cached_index(self) -> TriggerIndex:
        """The index as last built (what a sink inside a unit, which cannot wait, uses)."""
        if self._index is None:
            self._index = TriggerIndex.build([])  # nothing built yet: empty until index()
            self._index_checked = 0.0
        return self._index

    async def refresh(self) -> None:
        """Rebuild the index now (a flow was published, paused or deleted here) and tell
        the other processes."""
        self._index_stamp = None
        self._index_checked = 0.0
        await self.index()
        if self.hub.db.dialect == "postgresql":
            try:
                async with self.hub.db.write() as session:
                    await session.execute(sa.text(f"NOTIFY {CHANNEL}"))
            except Exception as exc:  # the others' safety net finds the change
                log.warning("could not notify other processes of a flow change: %s", exc)

    def changed(self) -> None:
        """Another process changed a flow (or notifications were away): rebuild soon."""
        self._changes += 1
        if self._rebuild is None or self._rebuild.done():
            self._rebuild = asyncio.get_running_loop().create_task(self.index())

    @property
    def check_period_s(self) -> float:
        """How long the index is trusted without a notification."""
        listening = self._listener is not None and self._listener.connected
        return SAFETY_NET_S if listening else POLL_S

    async def index(self) -> TriggerIndex:
        """The trigger index of every enabled flow's published version."""
        self._listen()
        now = time.monotonic()
        fresh = now - self._index_checked < self.check_period_s
        if self._index is not None and fresh and self._changes == self._checked_changes:
            return self._index
        self._index_checked = now
        self._checked_changes = self._changes
        async with self.hub.db.read() as session:
            stamp = tuple(
                (
                    await session.execute(sa.select(sa.func.count(), sa.func.max(Flow.updated_at)))
                ).one()
            )
            if self._index is not None and stamp == self._index_stamp:
                return self._index
            published = await _published(session)
        self._index = TriggerIndex.build(published)
        self._index_stamp = stamp
        return self._index

    def _listen(self) -> None:
        """Start listening for other processes' changes (PostgreSQL; once)."""
        if self._listener is None and self.hub.db.dialect == "postgresql":
            self._listener = IndexListener(self.hub.db.url, self.changed)
            self._listener.start()

    async def close(self) -> None:
        """Stop listening."""
        if self._rebuild is not None:
            self._rebuild.cancel()
            with contextlib.suppress(BaseException):
                await self._rebuild
        if self._listener is not None:
            await self._listener.stop()


async def _published(session: Any) -> list[PublishedFlow]:
    rows = await session.execute(
        sa.select(col(FlowVersion.flow_id), col(FlowVersion.version), col(FlowVersion.definition))
        .join(Flow, col(Flow.id) == col(FlowVersion.flow_id))
        .where(
            col(Flow.published_version) == col(FlowVersion.version),
            col(Flow.enabled).is_(True),
            col(Flow.deleted_at).is_(None),
        )
    )
    return [PublishedFlow(fid, version, definition) for fid, version, definition in rows.all()]


class IndexListener:
    """LISTEN on :data:`CHANNEL` over a dedicated asyncpg connection; reconnects after a
    drop, and calls ``on_change`` for every notification and after every (re)connect."""

    def __init__(self, url: str, on_change: Callable[[], None]) -> None:
        self.dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
        self.on_change = on_change
        self.connected = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run in the background until :meth:`stop`."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _run(self) -> None:
        """Connect, listen until the connection is lost, wait a moment, again."""
        warned = False
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not warned:  # one line per outage, not one per second
                    log.warning("flow change notifications unavailable: %s", exc)
                    warned = True
            else:
                warned = False
            await asyncio.sleep(RECONNECT_S)

    async def _listen_once(self) -> None:
        """One connection's life: listen, rebuild once (anything missed), ping until lost."""
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, lambda *_args: self.on_change())
            self.connected = True
            self.on_change()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), PING_S)
                if not lost.is_set():
                    await conn.execute("SELECT 1")  # a dead peer shows itself here
        finally:
            self.connected = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
