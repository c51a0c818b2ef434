"""The embedded queue engine: jobs in the database, run by asyncio tasks with leases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from hub.context import Hub
from hub.queue.runner import JobRunner, PeriodicClock, backoff_s

log = logging.getLogger("smshub.queue")

__all__ = ["InlineQueue", "backoff_s"]


class InlineQueue:
    """Runs due job rows with ``concurrency`` asyncio tasks inside this process."""

    def __init__(self, hub: Hub, *, concurrency: int | None = None) -> None:
        self.hub = hub
        self.concurrency = hub.settings.workers if concurrency is None else concurrency
        self.runner = JobRunner(hub)
        self.periodic = PeriodicClock(hub)
        self._wake = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False

    def notify(self) -> None:
        """Wake the poller: rows were committed."""
        self._wake.set()

    async def start(self) -> None:
        """Start the poller task."""
        self._stopping = False
        self._main = asyncio.create_task(self.main(), name="smshub-inline-queue")

    async def stop(self) -> None:
        """Stop polling and wait briefly for running jobs."""
        self._stopping = True
        self._wake.set()
        if self._main is not None:
            await self._main
            self._main = None
        if self._running:
            await asyncio.wait(self._running, timeout=5)

    async def main(self, *, burst: bool = False) -> None:
        """Poll, claim and run jobs until stopped (or, with ``burst``, until idle)."""
        while not self._stopping:
            claimed = await self._poll_iteration()
            if burst and not claimed and not self._running and not await self.runner.has_due():
                return
            if claimed == 0:
                await self._sleep()

    async def drain(self, *, timeout: float = 30.0) -> None:
        """Run until no job is due or running (tests)."""
        await asyncio.wait_for(self.main(burst=True), timeout)

    async def _sleep(self) -> None:
        """Wait for a wake-up, a finished job or the poll interval."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.hub.settings.job_poll_s)

    async def _poll_iteration(self) -> int:
        """Queue due periodic jobs, then claim as many due jobs as there are free slots."""
        if self.concurrency <= 0:
            return 0  # HTTP only: another process runs the jobs
        await self.periodic.tick()
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        try:
            # A cheap read first: an idle poll must not take the write lock.
            if not await self.runner.has_due(include_expired=True):
                return 0
            jobs = await self.runner.claim(free)
        except Exception:  # the database is down or busy: try again next round
            log.exception("claiming jobs failed")
            return 0
        for row in jobs:
            task = asyncio.create_task(self._run(row))
            self._running.add(task)
            task.add_done_callback(self._finished)
        return len(jobs)

    async def _run(self, row: Any) -> None:
        await self.runner.run(row)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()
