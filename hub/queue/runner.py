"""Claiming job rows and recording how they went — shared by both queue engines.

A job row is claimed by one worker at a time (status ``running`` with a lease); when the
lease expires (a crashed worker) another may claim it again, which is why job functions
must be idempotent. The outcome is written back: done (row deleted), retry later, or dead.
"""

from __future__ import annotations

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

log = logging.getLogger("smshub.queue")

#: Longest wait between retries of a failing job.
MAX_BACKOFF_S = 300.0

_JOBS = Job.__table__  # type: ignore[attr-defined]


def backoff_s(attempt: int) -> float:
    """Exponential backoff with jitter: ~1 s, 2 s, 4 s … capped at MAX_BACKOFF_S."""
    base = min(MAX_BACKOFF_S, 2.0 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.2)


def claimable(now: Any) -> Any:
    """Rows a worker may take: pending and due, or running with an expired lease."""
    return sa.or_(
        sa.and_(_JOBS.c.status == "pending", _JOBS.c.run_at <= now),
        sa.and_(_JOBS.c.status == "running", _JOBS.c.lease_until < now),
    )


class UnknownJob(LookupError):
    """A job row names a job the wiring does not list."""


class JobRunner:
    """Claims rows for one worker identity and runs them to an outcome."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.worker_id = f"{os.uname().nodename}:{os.getpid()}:{id(self):x}"

    async def claim(self, limit: int, *, job_id: str | None = None) -> list[Any]:
        """Take up to ``limit`` claimable rows (or exactly ``job_id`` if it is claimable)."""
        now = utcnow()
        lease = now + timedelta(seconds=self.hub.settings.job_lease_s)
        pick = sa.select(_JOBS.c.id).where(claimable(now))
        if job_id is not None:
            pick = pick.where(_JOBS.c.id == job_id)
        pick = pick.order_by(_JOBS.c.run_at).limit(limit)
        if self.hub.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            sa.update(_JOBS)
            .where(_JOBS.c.id.in_(pick.scalar_subquery()))
            .values(
                status="running",
                attempts=_JOBS.c.attempts + 1,
                lease_until=lease,
                locked_by=self.worker_id,
            )
            .returning(
                _JOBS.c.id, _JOBS.c.name, _JOBS.c.args, _JOBS.c.attempts, _JOBS.c.max_attempts
            )
        )
        async with self.hub.db.write() as session:
            result = await session.execute(stmt)
            return list(result.all())

    async def has_due(self, *, include_expired: bool = False) -> bool:
        """Whether a job is due (pending and due, or running; with ``include_expired``,
        only running jobs whose lease has expired count)."""
        now = utcnow()
        due = sa.and_(_JOBS.c.status == "pending", _JOBS.c.run_at <= now)
        running = _JOBS.c.status == "running"
        if include_expired:
            running = sa.and_(running, _JOBS.c.lease_until < now)
        async with self.hub.db.read() as session:
            stmt = sa.select(_JOBS.c.id).where(sa.or_(due, running)).limit(1)
            return (await session.execute(stmt)).first() is not None

    async def run(self, row: Any) -> None:
        """Run one claimed job and record the outcome."""
        started = time.perf_counter()
        try:
            await self._call(row.name, dict(row.args))
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

    async def _call(self, name: str, args: dict[str, Any]) -> None:
        """Run the job function the wiring lists under ``name``."""
        func = self.hub.wiring.jobs.get(name)
        if func is None:
            # Rolling upgrades: a newer process may have queued a job this one does not
            # know. It fails (and is retried, then buried) instead of being dropped.
            raise UnknownJob(f"no job named {name!r} in this process's wiring")
        await func(self.hub, **args)

    async def _complete(self, row: Any) -> None:
        async with self.hub.db.write() as session:
            await session.execute(
                sa.delete(_JOBS).where(_JOBS.c.id == row.id, _JOBS.c.locked_by == self.worker_id)
            )

    async def _reschedule(self, row: Any, delay: float, error: str, *, count_attempt: bool) -> None:
        values: dict[str, Any] = {
            "status": "pending",
            "run_at": utcnow() + timedelta(seconds=delay),
            "lease_until": None,
            "locked_by": None,
            "last_error": error[:2000],
            # A new run time is a new arq job: the pusher sends it again.
            "enqueued_at": None,
        }
        if not count_attempt:
            values["attempts"] = _JOBS.c.attempts - 1
        async with self.hub.db.write() as session:
            await session.execute(
                sa.update(_JOBS)
                .where(_JOBS.c.id == row.id, _JOBS.c.locked_by == self.worker_id)
                .values(**values)
            )

    async def _bury(self, row: Any, error: str) -> None:
        log.error("job %s %s is dead after %s attempts: %s", row.name, row.id, row.attempts, error)
        async with self.hub.db.write() as session:
            await session.execute(
                sa.update(_JOBS)
                .where(_JOBS.c.id == row.id)
                .values(status="dead", lease_until=None, last_error=error[:2000])
            )


class PeriodicClock:
    """Queues each periodic job when its interval has passed (one pending copy at most)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._due: dict[str, float] = {}

    async def tick(self) -> bool:
        """Enqueue what is due; True when something was written."""
        now = time.monotonic()
        periodic = self.hub.wiring.periodic
        due = [name for name in periodic if now >= self._due.get(name, 0.0)]
        if not due:
            return False
        try:
            async with self.hub.db.write() as session:
                for name in due:
                    await enqueue(session, name, {}, key=f"periodic:{name}")
        except Exception:
            log.exception("queueing periodic jobs failed")
            return False
        for name in due:
            self._due[name] = now + periodic[name]
        return True
