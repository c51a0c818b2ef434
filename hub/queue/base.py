"""The job queue interface.

Every job is first a row in the ``jobs`` table, written in the same transaction as the
change that asked for it (the outbox). The inline engine runs those rows itself; the arq
engine pushes them to Redis with the row id as arq job id, so a double push is harmless.
Job functions take ids, not objects, and must be idempotent: a job may run twice after a
crash or an expired lease.

Two ways to write a job row: :func:`enqueue_job`, a unit for code on the hot path's store
(``hub.store``), and :func:`enqueue`, in an ORM session for the cold paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.dbutil import insert_ignore
from hub.ids import new_id
from hub.models import Job, utcnow
from hub.store import Json, Unit, fetch_all, note

#: Attempts before a job is declared dead (kept with its last error for inspection).
DEFAULT_MAX_ATTEMPTS = 10


class Retry(Exception):
    """Raised by a job to run again later.

    ``count_attempt=False`` is for waiting on a condition (a rate limit, a report that has
    not arrived) rather than failing: it does not use up the job's attempts.
    """

    def __init__(self, delay_s: float, *, count_attempt: bool = True, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay_s:g}s")
        self.delay_s = delay_s
        self.count_attempt = count_attempt


async def enqueue(
    session: AsyncSession,
    name: str,
    args: dict[str, Any],
    *,
    delay_s: float = 0.0,
    run_at: datetime | None = None,
    key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> str | None:
    """Write a job row in the caller's transaction; None when ``key`` is already queued.

    ``name`` is a job name constant defined beside its function and listed in
    ``hub/wiring.py``; a row naming a job the wiring does not list is never run."""
    job_id = new_id("job")
    when = run_at or (utcnow() + timedelta(seconds=delay_s))
    inserted = await insert_ignore(
        session,
        Job,
        {
            "id": job_id,
            "name": name,
            "args": args,
            "status": "pending",
            "run_at": when,
            "attempts": 0,
            "max_attempts": max_attempts,
            "key": key,
            "created_at": utcnow(),
        },
        conflict=["key"] if key else None,
    )
    if inserted:
        # Lets the writer of this transaction know it should wake the workers after commit.
        session.info["smshub_jobs_enqueued"] = True
    return job_id if inserted else None


@dataclass(frozen=True, slots=True)
class JobRow:
    """A claimed job, as a worker runs it."""

    id: str
    name: str
    args: dict[str, Any]
    #: Attempts so far, this one included.
    attempts: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class Lease:
    """New due jobs go straight to this worker (in memory), leased to it until ``until``."""

    worker_id: str
    until: datetime


#: The note a unit leaves for every job row it wrote (``Note("job", JobNote)``).
JOB_NOTE = "job"


@dataclass(frozen=True, slots=True)
class JobNote:
    """A job row a unit wrote: ``row`` is set when it is leased to this process's workers."""

    id: str
    run_at: datetime
    row: JobRow | None


_INSERT_JOB = (
    "INSERT INTO jobs (id, name, args, status, run_at, attempts, max_attempts, key, "
    "created_at, lease_until, locked_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO NOTHING RETURNING id"
)


def enqueue_job(
    name: str,
    args: dict[str, Any],
    *,
    delay_s: float = 0.0,
    run_at: datetime | None = None,
    key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    lease: Lease | None = None,
) -> Unit[str | None]:
    """Unit: write a job row in the caller's unit; None when ``key`` is already queued.

    With ``lease`` (the inline queue's, when it can take the job now) a due job is written
    already claimed by that worker and handed to it in memory after commit — no poll, no
    claim; the row stays the outbox and the recovery path."""
    job_id = new_id("job")
    now = utcnow()
    when = run_at or (now + timedelta(seconds=delay_s) if delay_s else now)
    claimed = lease is not None and when <= now
    found = yield from fetch_all(
        _INSERT_JOB,
        (
            job_id,
            name,
            Json(args),
            "running" if claimed else "pending",
            when,
            1 if claimed else 0,
            max_attempts,
            key,
            now,
            lease.until if claimed and lease else None,
            lease.worker_id if claimed and lease else None,
        ),
    )
    if not found:
        return None
    row = JobRow(job_id, name, args, 1, max_attempts) if claimed else None
    yield from note(JOB_NOTE, JobNote(job_id, when, row))
    return job_id
