"""The embedded queue engine: jobs in the database, run by asyncio tasks with leases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import traceback
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from hub.context import Hub
from hub.metrics import JOB_SECONDS, JOBS
from hub.models import Job, utcnow
from hub.queue.base import Retry, enqueue
from hub.queue.jobs import PERIODIC, load_all, run_job

log = logging.getLogger("smshub.queue")

#: Longest wait between retries of a failing job.
MAX_BACKOFF_S = 300.0


def backoff_s(attempt: int) -> float:
    """Exponential backoff with jitter: ~1 s, 2 s, 4 s … capped at MAX_BACKOFF_S."""
    base = min(MAX_BACKOFF_S, 2.0 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.2)


class InlineQueue:
    """Runs due job rows with ``concurrency`` asyncio tasks inside this process."""

    def __init__(self, hub: Hub, *, concurrency: int | None = None) -> None:
        self.hub = hub
        self.concurrency = concurrency or hub.settings.workers
        self.worker_id = f"{os.uname().nodename}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._periodic_due: dict[str, float] = {}

    def notify(self) -> None:
        """Wake the poller: rows were committed."""
        self._wake.set()

    async def start(self) -> None:
        """Start the poller task."""
        load_all()
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
        load_all()
        while not self._stopping:
            claimed = await self._poll_iteration()
            if burst and not claimed and not self._running and not await self._has_due_jobs():
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
        await self._queue_periodic()
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        try:
            jobs = await self._claim(free)
        except Exception:  # the database is down or busy: try again next round
            log.exception("claiming jobs failed")
            return 0
        for row in jobs:
            task = asyncio.create_task(self._run(row))
            self._running.add(task)
            task.add_done_callback(self._finished)
        return len(jobs)

    async def _queue_periodic(self) -> None:
        """Enqueue each periodic job whose interval has passed (one pending copy at most)."""
        now = time.monotonic()
        due = [name for name, every in PERIODIC.items() if now >= self._periodic_due.get(name, 0.0)]
        if not due or self.concurrency <= 0:
            return
        try:
            async with self.hub.db.write() as session:
                for name in due:
                    await enqueue(session, name, {}, key=f"periodic:{name}")
        except Exception:
            log.exception("queueing periodic jobs failed")
            return
        for name in due:
            self._periodic_due[name] = now + PERIODIC[name]

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _claim(self, limit: int) -> list[Any]:
        """Take up to ``limit`` due jobs (and jobs whose lease expired) for this worker."""
        if not await self._has_due_jobs(include_expired=True):
            return []  # a cheap read first: an idle poll must not take the write lock
        now = utcnow()
        lease = now + timedelta(seconds=self.hub.settings.job_lease_s)
        jobs = Job.__table__  # type: ignore[attr-defined]
        due = sa.or_(
            sa.and_(jobs.c.status == "pending", jobs.c.run_at <= now),
            sa.and_(jobs.c.status == "running", jobs.c.lease_until < now),
        )
        pick = sa.select(jobs.c.id).where(due).order_by(jobs.c.run_at).limit(limit)
        if self.hub.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id.in_(pick.scalar_subquery()))
            .values(
                status="running",
                attempts=jobs.c.attempts + 1,
                lease_until=lease,
                locked_by=self.worker_id,
            )
            .returning(jobs.c.id, jobs.c.name, jobs.c.args, jobs.c.attempts, jobs.c.max_attempts)
        )
        async with self.hub.db.write() as session:
            result = await session.execute(stmt)
            return list(result.all())

    async def _has_due_jobs(self, *, include_expired: bool = False) -> bool:
        """Whether a job is due (pending and due, or running; with ``include_expired``,
        only running jobs whose lease has expired count)."""
        jobs = Job.__table__  # type: ignore[attr-defined]
        now = utcnow()
        due = sa.and_(jobs.c.status == "pending", jobs.c.run_at <= now)
        running = jobs.c.status == "running"
        if include_expired:
            running = sa.and_(running, jobs.c.lease_until < now)
        async with self.hub.db.read() as session:
            stmt = sa.select(jobs.c.id).where(sa.or_(due, running)).limit(1)
            return (await session.execute(stmt)).first() is not None

    async def _run(self, row: Any) -> None:
        """Run one claimed job and record the outcome."""
        started = time.perf_counter()
        try:
            await run_job(self.hub, row.name, dict(row.args))
        except Retry as exc:
            JOBS.labels(row.name, "retry").inc()
            await self._reschedule(row, exc.delay_s, str(exc), count_attempt=exc.count_attempt)
        except Exception as exc:
            JOBS.labels(row.name, "error").inc()
            log.warning("job %s %s failed (attempt %s): %s", row.name, row.id, row.attempts, exc)
            error = "".join(traceback.format_exception_only(exc)).strip()
            if row.attempts >= row.max_attempts:
                await self._bury(row, error)
            else:
                await self._reschedule(row, backoff_s(row.attempts), error, count_attempt=True)
        else:
            JOBS.labels(row.name, "done").inc()
            await self._complete(row)
        finally:
            JOB_SECONDS.labels(row.name).observe(time.perf_counter() - started)

    async def _complete(self, row: Any) -> None:
        jobs = Job.__table__  # type: ignore[attr-defined]
        async with self.hub.db.write() as session:
            await session.execute(
                sa.delete(jobs).where(jobs.c.id == row.id, jobs.c.locked_by == self.worker_id)
            )

    async def _reschedule(self, row: Any, delay: float, error: str, *, count_attempt: bool) -> None:
        jobs = Job.__table__  # type: ignore[attr-defined]
        values: dict[str, Any] = {
            "status": "pending",
            "run_at": utcnow() + timedelta(seconds=delay),
            "lease_until": None,
            "locked_by": None,
            "last_error": error[:2000],
        }
        if not count_attempt:
            values["attempts"] = jobs.c.attempts - 1
        async with self.hub.db.write() as session:
            await session.execute(
                sa.update(jobs)
                .where(jobs.c.id == row.id, jobs.c.locked_by == self.worker_id)
                .values(**values)
            )

    async def _bury(self, row: Any, error: str) -> None:
        jobs = Job.__table__  # type: ignore[attr-defined]
        log.error("job %s %s is dead after %s attempts: %s", row.name, row.id, row.attempts, error)
        async with self.hub.db.write() as session:
            await session.execute(
                sa.update(jobs)
                .where(jobs.c.id == row.id)
                .values(status="dead", lease_until=None, last_error=error[:2000])
            )
