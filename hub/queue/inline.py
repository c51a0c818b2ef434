"""The embedded queue engine: jobs in the database, run by asyncio tasks with leases.

A due job written by this process while its workers run is written already leased to
them (:func:`hub.queue.base.enqueue_job` with :meth:`InlineQueue.lease`) and handed over
in memory once its transaction commits — no poll, no claim round trip. Everything else
(delayed jobs, retries, jobs of another process, jobs a crash left behind) is found by
polling and claimed with a lease. The table stays the outbox and the recovery path.

With SQLite, the process whose workers hold the database's lock file is the only one
running jobs: on start it takes back at once every job a previous, dead process had
leased, instead of waiting out the leases (a second process finds the lock taken and
keeps to the leases, as with PostgreSQL).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
from typing import Any

from hub.context import Hub
from hub.db import Outage
from hub.queue.base import JOB_NOTE, JobNote, JobRow, Lease
from hub.queue.runner import JobRunner, PeriodicClock, backoff_s
from hub.store import Note

log = logging.getLogger("smshub.queue")

#: Jobs handed over in memory and waiting for a worker, per worker, at most. Beyond that
#: new jobs are written pending and claimed by polling as workers free up: a burst then
#: waits in the table, not in memory, and no job waits in memory for longer than its lease.
READY_PER_WORKER = 8

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
        #: Jobs leased to this process, waiting for a free worker.
        self._ready: collections.deque[JobRow] = collections.deque()
        self._stopping = False
        self._accepting = False
        self._lock: int | None = None
        self._outage = Outage(log, "claiming jobs")
        hub.store.on_commit(self._committed)

    def notify(self) -> None:
        """Wake the poller: rows were committed."""
        self._wake.set()

    def lease(self) -> Lease | None:
        """Where new due jobs go: straight to this process's workers while they run."""
        if not self._accepting or len(self._ready) >= self.concurrency * READY_PER_WORKER:
            return None
        return Lease(self.runner.worker_id, self.runner.lease_until())

    @property
    def exclusive(self) -> bool:
        """True while this process holds the SQLite file's worker lock."""
        return self._lock is not None

    async def start(self) -> None:
        """Start the poller task (and take over a dead predecessor's jobs)."""
        self._stopping = False
        if self.concurrency > 0 and self._take_lock():
            released = await self.runner.release_dead_leases()
            if released:
                log.info("resuming %d jobs a previous process had leased", released)
        self._accepting = self.concurrency > 0
        self._main = asyncio.create_task(self.main(), name="smshub-inline-queue")

    async def stop(self) -> None:
        """Stop polling and wait briefly for running jobs."""
        self._accepting = False
        self._stopping = True
        self._wake.set()
        if self._main is not None:
            await self._main
            self._main = None
        if self._running:
            await asyncio.wait(self._running, timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.runner.flushed(), 5)
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    async def main(self, *, burst: bool = False) -> None:
        """Poll, claim and run jobs until stopped (or, with ``burst``, until idle)."""
        while not self._stopping:
            claimed = await self._poll_iteration()
            if burst and not claimed and self._idle() and not await self.runner.has_due():
                await self.runner.flushed()
                return
            if claimed == 0:
                await self._sleep()

    async def drain(self, *, timeout: float = 30.0) -> None:
        """Run until no job is due or running (tests)."""
        await asyncio.wait_for(self.main(burst=True), timeout)

    def _take_lock(self) -> bool:
        """True when this process is now the only one running jobs on an SQLite file."""
        path = getattr(self.hub.store, "path", None)
        if self.hub.store.dialect != "sqlite" or not path:
            return False
        if self._lock is None:
            fd = os.open(f"{path}.workers.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                log.info("another process runs jobs on %s; leases guard them", path)
                return False
            self._lock = fd  # held while this queue runs
        return True

    def _idle(self) -> bool:
        return not self._running and not self._ready

    async def _sleep(self) -> None:
        """Wait for a wake-up, a finished job or the poll interval."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.hub.settings.job_poll_s)

    def _committed(self, notes: list[Note]) -> None:
        """After a commit: take the jobs leased to us; wake the poller for the others."""
        wake = False
        for item in notes:
            if item.kind != JOB_NOTE:
                continue
            job: JobNote = item.value
            if job.row is not None and self._accepting:
                self.runner.held.add(job.row.id)  # leased to us at write: ours to run
                self._ready.append(job.row)
            else:
                wake = True
        self._start_ready()
        if wake:
            self._wake.set()

    def _start_ready(self) -> None:
        while self._ready and len(self._running) < self.concurrency:
            self._spawn(self._ready.popleft())

    def _spawn(self, row: JobRow) -> None:
        task = asyncio.create_task(self.runner.run(row))
        self._running.add(task)
        task.add_done_callback(self._finished)

    async def _poll_iteration(self) -> int:
        """Queue due periodic jobs, then claim as many due jobs as there are free slots."""
        if self.concurrency <= 0:
            return 0  # HTTP only: another process runs the jobs
        await self.periodic.tick()
        self._start_ready()
        busy = len(self._running) + len(self._ready)
        free = self.concurrency * READY_PER_WORKER - busy
        if free <= 0 or (busy and free < self.concurrency):
            return 0  # claim in bulk, once there is room for a worker's worth of jobs
        try:
            # A cheap read first: an idle poll must not take the write lock.
            if not await self.runner.has_due(include_expired=True):
                return 0
            jobs = await self.runner.claim(free)
        except Exception as exc:  # the database is down or busy: try again next round
            self._outage.failed(exc)
            return 0
        self._outage.worked()
        self._ready.extend(jobs)  # claimed (leased) now; they start as workers free up
        self._start_ready()
        return len(jobs)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        self._start_ready()
        self._wake.set()
