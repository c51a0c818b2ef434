"""The job queue interface.

Every job is first a row in the ``jobs`` table, written in the same transaction as the
change that asked for it (the outbox). The inline engine runs those rows itself; the arq
engine pushes them to Redis with the row id as arq job id, so a double push is harmless.
Job functions take ids, not objects, and must be idempotent: a job may run twice after a
crash or an expired lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.dbutil import insert_ignore
from hub.ids import new_id
from hub.models import Job, utcnow

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
