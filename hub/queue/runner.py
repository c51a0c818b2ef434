"""Claiming job rows and recording how they went — shared by both queue engines.

A job row is claimed by one worker at a time (status ``running`` with a lease); when the
lease expires (a crashed worker) another may claim it again, which is why job functions
must be idempotent. The outcome is written back through the store (``hub.store``): done
(the row is deleted — finished jobs are collected and deleted together, one unit for all
that finished meanwhile), retry later, or dead. A job that finished but whose delete had
not committed when the process died simply runs once more.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import traceback
from datetime import datetime, timedelta
from typing import Any

from hub.context import Hub
from hub.db import Outage
from hub.logs import job_ids, log_context
from hub.metrics import JOB_SECONDS, JOBS
from hub.models import utcnow
from hub.queue.base import JobRow, Retry, enqueue_job
from hub.store import Unit, as_json, execute, fetch_all, fetch_value, placeholders

log = logging.getLogger("smshub.queue")

#: Longest wait between retries of a failing job.
MAX_BACKOFF_S = 300.0
#: Finished jobs deleted by one statement at most.
DELETE_CHUNK = 500


def backoff_s(attempt: int) -> float:
    """Exponential backoff with jitter: ~1 s, 2 s, 4 s … capped at MAX_BACKOFF_S."""
    base = min(MAX_BACKOFF_S, 2.0 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.2)


#: Rows a worker may take: pending and due, or running with an expired lease — any
#: worker's, its own too, unless the row is in its memory (:attr:`JobRunner.held`): a
#: lease whose outcome could not be written (the database went away) or whose claim's
#: answer was lost is this worker's to take again, or with one worker nobody's ever.
_CLAIMABLE = "((status = 'pending' AND run_at <= ?) OR (status = 'running' AND lease_until < ?{}))"


def _claimable(now: datetime, held: set[str]) -> tuple[str, list[Any]]:
    """The claimable condition and its parameters, leaving out the ``held`` rows."""
    if not held:
        return _CLAIMABLE.format(""), [now, now]
    return _CLAIMABLE.format(f" AND id NOT IN ({placeholders(len(held))})"), [now, now, *held]


class UnknownJob(LookupError):
    """A job row names a job the wiring does not list."""


def _job_row(found: tuple[Any, ...]) -> JobRow:
    job_id, name, args, attempts, max_attempts = found
    return JobRow(job_id, name, as_json(args), int(attempts), int(max_attempts))


class JobRunner:
    """Claims rows for one worker identity and runs them to an outcome."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.worker_id = f"{os.uname().nodename}:{os.getpid()}:{id(self):x}"
        self._finished: list[str] = []
        self._flushing: asyncio.Task[None] | None = None
        #: Rows leased to this worker that are in its memory: claimed or handed over and
        #: not run yet, running, or finished and not deleted yet. Not claimable by it.
        self.held: set[str] = set()
        self._outage = Outage(log, "deleting finished jobs")
        self._recording = Outage(log, "writing a job's outcome")

    def lease_until(self) -> datetime:
        """The end of a lease taken now."""
        return utcnow() + timedelta(seconds=self.hub.settings.job_lease_s)

    async def claim(self, limit: int, *, job_id: str | None = None) -> list[JobRow]:
        """Take up to ``limit`` claimable rows (or exactly ``job_id`` if it is claimable)."""
        if job_id is not None and job_id in self.held:
            return []  # delivered again while this worker has it
        rows = list(await self.hub.store.write(self._claim(limit, job_id)))
        self.held.update(row.id for row in rows)
        return rows

    def _claim(self, limit: int, job_id: str | None) -> Unit[list[JobRow]]:
        now = utcnow()
        # One row asked for by id: claim() has checked it is not held.
        where, params = _claimable(now, self.held if job_id is None else set())
        if job_id is not None:
            where, params = f"{where} AND id = ?", [*params, job_id]
        pick = f"SELECT id FROM jobs WHERE {where} ORDER BY run_at LIMIT ?"
        if self.hub.store.dialect == "postgresql":
            pick += " FOR UPDATE SKIP LOCKED"
        rows = yield from fetch_all(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = ?, "
            f"locked_by = ? WHERE id IN ({pick}) "
            "RETURNING id, name, args, attempts, max_attempts",
            (self.lease_until(), self.worker_id, *params, limit),
        )
        return [_job_row(r) for r in rows]

    async def has_due(self, *, include_expired: bool = False) -> bool:
        """Whether a job is due (pending and due, or running; with ``include_expired``,
        only running jobs whose lease has expired — and are not in this worker's memory —
        count)."""
        now = utcnow()
        params: list[Any]
        if include_expired:
            where, params = _claimable(now, self.held)
        else:
            where, params = "(status = 'pending' AND run_at <= ?) OR status = 'running'", [now]
        found = await self.hub.store.read(
            fetch_value(f"SELECT id FROM jobs WHERE {where} LIMIT 1", tuple(params))
        )
        return found is not None

    async def run(self, row: JobRow) -> None:
        """Run one claimed job and record the outcome; its log lines carry the job's name
        and the ids among its arguments (run, message, delivery, event)."""
        self.held.add(row.id)
        try:
            with log_context(**job_ids(row.name, row.args)):
                await self._run(row)
        finally:
            if row.id not in self._finished:  # a finished row is held until deleted
                self.held.discard(row.id)

    async def _run(self, row: JobRow) -> None:
        started = time.perf_counter()
        try:
            await self._attempt(row)
        except Exception as exc:  # its outcome could not be written: the row stays leased,
            self._recording.failed(exc)  # and is claimed again when the lease runs out
        finally:
            JOB_SECONDS.labels(row.name).observe(time.perf_counter() - started)

    async def _attempt(self, row: JobRow) -> None:
        """Call the job function and write the outcome."""
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
            self._complete(row)

    async def _call(self, name: str, args: dict[str, Any]) -> None:
        """Run the job function the wiring lists under ``name``."""
        func = self.hub.wiring.jobs.get(name)
        if func is None:
            # Rolling upgrades: a newer process may have queued a job this one does not
            # know. It fails (and is retried, then buried) instead of being dropped.
            raise UnknownJob(f"no job named {name!r} in this process's wiring")
        await func(self.hub, **args)

    def _complete(self, row: JobRow) -> None:
        """Delete the row soon, together with every other job that finished meanwhile."""
        self._finished.append(row.id)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="smshub-finished-jobs")

    async def _flush(self) -> None:
        while self._finished:
            done, self._finished = self._finished, []
            try:
                await self.hub.store.write(self._delete(done))
            except Exception as exc:  # they run once more, when their lease expired:
                self._outage.failed(exc)  # job functions are idempotent by contract
            else:
                self._outage.worked()
            finally:
                self.held.difference_update(done)

    def _delete(self, ids: list[str]) -> Unit[None]:
        for start in range(0, len(ids), DELETE_CHUNK):
            chunk = ids[start : start + DELETE_CHUNK]
            yield from execute(
                f"DELETE FROM jobs WHERE locked_by = ? AND id IN ({placeholders(len(chunk))})",
                (self.worker_id, *chunk),
            )

    async def flushed(self) -> None:
        """Wait until every finished job's row is deleted (tests, shutdown)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    async def _reschedule(
        self, row: JobRow, delay: float, error: str, *, count_attempt: bool
    ) -> None:
        # A new run time is a new arq job: enqueued_at is cleared so the pusher sends it.
        attempts = "attempts" if count_attempt else "attempts - 1"
        await self.hub.store.write(
            execute(
                "UPDATE jobs SET status = 'pending', run_at = ?, lease_until = NULL, "
                f"locked_by = NULL, last_error = ?, enqueued_at = NULL, attempts = {attempts} "
                "WHERE id = ? AND locked_by = ?",
                (utcnow() + timedelta(seconds=delay), error[:2000], row.id, self.worker_id),
            )
        )

    async def _bury(self, row: JobRow, error: str) -> None:
        log.error("job %s %s is dead after %s attempts: %s", row.name, row.id, row.attempts, error)
        await self.hub.store.write(
            execute(
                "UPDATE jobs SET status = 'dead', lease_until = NULL, last_error = ? WHERE id = ?",
                (error[:2000], row.id),
            )
        )

    async def release_dead_leases(self) -> int:
        """Make every running job claimable now (only when no other worker can be alive:
        the embedded default's one process, after a restart); how many there were."""
        found = await self.hub.store.write(
            execute(
                "UPDATE jobs SET status = 'pending', lease_until = NULL, locked_by = NULL "
                "WHERE status = 'running'"
            )
        )
        return int(found.rowcount)


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
            await self.hub.store.write(self._enqueue(due))
        except Exception:
            log.exception("queueing periodic jobs failed")
            return False
        for name in due:
            self._due[name] = now + periodic[name]
        return True

    @staticmethod
    def _enqueue(names: list[str]) -> Unit[None]:
        for name in names:
            yield from enqueue_job(name, {}, key=f"periodic:{name}")
