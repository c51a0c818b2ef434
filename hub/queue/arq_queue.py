"""The scale-out queue engine: job rows pushed to Redis, run by ``smshub worker`` (arq).

The ``jobs`` table stays the source of truth (the outbox): every process with the hub
pushes rows it has not pushed yet to Redis, with the row id in the arq job id, and sweeps
rows that should have run by now but did not (Redis restarted, a push got lost). Workers
run the arq function :func:`run_job_row`, which *claims* the row first — so a job pushed
twice, or redelivered by arq, still runs once — and records the outcome on the row. A
retry gives the row a new run time, hence a new arq job id, and the pusher sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from arq import Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Retry as ArqRetry
from arq.worker import func
from redis.exceptions import RedisError

from hub.context import Hub
from hub.db import Outage, is_unavailable
from hub.models import Job, utcnow
from hub.queue.base import JOB_NOTE
from hub.queue.runner import JobRunner, PeriodicClock
from hub.store import Note

log = logging.getLogger("smshub.queue")

_JOBS = Job.__table__  # type: ignore[attr-defined]

#: The arq function every job row runs through.
ARQ_FUNCTION = "run_job_row"
#: Rows pushed per round.
PUSH_BATCH = 500
#: How often the pusher looks for rows without being woken.
PUSH_INTERVAL_S = 1.0


def away(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis or the database cannot be reached (not a bug)."""
    return isinstance(exc, RedisError | OSError) or is_unavailable(exc)


def reason(exc: BaseException) -> str:
    """A one-line reason: the error's type and message, no traceback."""
    return f"{type(exc).__name__}: {exc}"


def redis_settings(url: str) -> RedisSettings:
    """arq's connection settings for a ``redis://`` URL."""
    return RedisSettings.from_dsn(url)


def arq_job_id(row_id: str, run_at: Any) -> str:
    """One arq job per (row, run time): a retry is a new arq job, a double push is not."""
    return f"{row_id}@{int(run_at.timestamp() * 1000)}"


class ArqQueue:
    """Pushes job rows to Redis; ``smshub worker`` processes run them."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.runner = JobRunner(hub)
        self.periodic = PeriodicClock(hub)
        self._pool: ArqRedis | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: Redis or the database was away at the last round (logged once).
        self._away = False
        hub.store.on_commit(self._committed)

    def notify(self) -> None:
        """Rows were committed: push them soon."""
        self._wake.set()

    def lease(self) -> None:
        """Jobs always go through Redis here: none is taken in memory."""
        return None

    @property
    def exclusive(self) -> bool:
        """Never: any number of ``smshub worker`` processes may run the jobs."""
        return False

    def _committed(self, notes: list[Note]) -> None:
        if any(n.kind == JOB_NOTE for n in notes):
            self._wake.set()

    async def start(self) -> None:
        """Connect to Redis and start pushing."""
        self._stopping = False
        await self._redis()
        self._task = asyncio.create_task(self._push_loop(), name="smshub-arq-pusher")

    async def stop(self) -> None:
        """Push what is left and disconnect."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def _push_loop(self) -> None:
        while True:
            try:
                await self.periodic.tick()
                while await self.push_once() == PUSH_BATCH:
                    pass
            except Exception as exc:  # Redis or the database is away: try again next round
                if not away(exc):
                    log.exception("pushing jobs to Redis failed")
                elif not self._away:  # one line per outage, not one per round
                    log.warning("pushing jobs to Redis failed (%s); retrying", reason(exc))
                self._away = away(exc)
            else:
                if self._away:
                    log.info("pushing jobs to Redis again")
                self._away = False
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), PUSH_INTERVAL_S)

    async def _redis(self) -> ArqRedis:
        if self._pool is None:
            self._pool = await create_pool(redis_settings(self.hub.settings.redis_url))
        return self._pool

    async def push_once(self, *, due_only: bool = False) -> int:
        """Push rows not pushed yet (and rows whose push got lost); how many were pushed.

        Future rows go to Redis deferred to their run time, unless ``due_only``."""
        pool = await self._redis()
        now = utcnow()
        # Marked first, in one short statement, pushed after its commit: a worker's claim
        # (FOR UPDATE SKIP LOCKED) never meets a row locked by the pusher, which would make
        # it skip a job it was just handed (the job then waited out the repush delay), and
        # two pushers never pick the same rows. A row marked by a process that dies before
        # pushing it is pushed again by the sweep, as when Redis loses it.
        rows = await self._mark_unpushed(now, due_only=due_only)
        for done, (row_id, run_at) in enumerate(rows):
            try:
                await pool.enqueue_job(
                    ARQ_FUNCTION,
                    row_id,
                    _job_id=arq_job_id(row_id, run_at),
                    # arq keeps whole milliseconds, rounded down: a job deferred to
                    # run_at itself could fire just before it, find its row not due
                    # and leave it for the sweep. One millisecond later, it never does.
                    _defer_until=run_at + _ONE_MS if run_at > now else None,
                )
            except Exception:
                # Redis is away: the rest goes out as soon as it is back, not after the sweep.
                await self._unmark([row_id for row_id, _ in rows[done:]], now)
                raise
        return len(rows)

    async def _unmark(self, row_ids: list[str], marked_at: Any) -> None:
        with contextlib.suppress(Exception):  # the database is away too: the sweep will do
            async with self.hub.db.write() as session:
                await session.execute(
                    sa.update(_JOBS)
                    .where(_JOBS.c.id.in_(row_ids), _JOBS.c.enqueued_at == marked_at)
                    .values(enqueued_at=None)
                )

    async def _mark_unpushed(self, now: Any, *, due_only: bool) -> list[tuple[str, Any]]:
        """Set ``enqueued_at`` on the rows to push now; their ids and run times."""
        # A pushed row this overdue (or whose lease expired this long ago) is pushed again.
        stale = now - timedelta(seconds=self.hub.settings.job_repush_after_s)
        never = _JOBS.c.enqueued_at.is_(None)
        lost = sa.and_(_JOBS.c.enqueued_at < stale, _JOBS.c.run_at < stale)
        expired = sa.and_(_JOBS.c.status == "running", _JOBS.c.lease_until < stale)
        pick = (
            sa.select(_JOBS.c.id)
            .where(
                sa.or_(
                    sa.and_(_JOBS.c.status == "pending", sa.or_(never, lost)),
                    sa.and_(expired, _JOBS.c.enqueued_at < stale),
                )
            )
            .order_by(_JOBS.c.run_at)
            .limit(PUSH_BATCH)
        )
        if due_only:
            pick = pick.where(_JOBS.c.run_at <= now)
        if self.hub.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        mark = (
            sa.update(_JOBS)
            .where(_JOBS.c.id.in_(pick.scalar_subquery()))
            .values(enqueued_at=now)
            .returning(_JOBS.c.id, _JOBS.c.run_at)
        )
        async with self.hub.db.write() as session:
            rows = (await session.execute(mark)).all()
        return sorted(((row.id, row.run_at) for row in rows), key=lambda row: row[1])

    async def drain(self, *, timeout: float = 30.0) -> None:
        """Push and run until no job is due or running (tests; an in-process arq worker).

        Only due rows are pushed: a burst worker waits for deferred jobs too, and the
        inline engine's drain does not run future jobs either."""

        async def rounds() -> None:
            await self.periodic.tick()  # as a starting pusher would: the sweep is due
            while True:
                while await self.push_once(due_only=True):
                    pass
                worker = make_worker(self.hub, burst=True)
                await worker.main()
                # Not worker.close(): meant for signal-driven shutdowns, it can wait on
                # tasks of a worker that ended by itself. A burst worker only needs its
                # Redis connection closed.
                await worker.pool.aclose()
                if not await self.runner.has_due():
                    return

        await asyncio.wait_for(rounds(), timeout)


#: What a deferred push adds to a row's run time (arq rounds it down to the millisecond).
_ONE_MS = timedelta(milliseconds=1)

#: Seconds before arq delivers a job again whose row could not be claimed (database away).
CLAIM_RETRY_S = 1.0


async def run_job_row(ctx: dict[str, Any], row_id: str) -> None:
    """The arq job: claim the row (a duplicate finds nothing to claim), run, record."""
    runner: JobRunner = ctx["runner"]
    claiming: Outage = ctx["claiming"]
    try:
        rows = await runner.claim(1, job_id=row_id)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        claiming.failed(exc)  # one line per outage; arq delivers the job again soon
        raise ArqRetry(defer=CLAIM_RETRY_S) from None
    claiming.worked()
    for row in rows:
        await runner.run(row)


#: Seconds an arq worker waits between looks at the queue. arq takes at most its free
#: slots per look, so this bounds a worker's rate (16 slots every 0.5 s, arq's default,
#: was 32 jobs a second: make bench (d) ran at 55 flows/s on that); an idle worker makes
#: 20 cheap Redis reads a second at 0.05 s.
ARQ_POLL_S = 0.05


def make_worker(hub: Hub, *, burst: bool = False) -> Worker:
    """An arq worker running the hub's job rows."""
    return Worker(
        functions=[func(run_job_row, name=ARQ_FUNCTION, keep_result=0, max_tries=1000)],
        redis_settings=redis_settings(hub.settings.redis_url),
        ctx={"hub": hub, "runner": JobRunner(hub), "claiming": Outage(log, "claiming a job")},
        max_jobs=max(1, hub.settings.workers),
        # A job's lease is the longest it may run before another worker takes it over.
        job_timeout=hub.settings.job_lease_s,
        keep_result=0,
        burst=burst,
        poll_delay=ARQ_POLL_S,
        handle_signals=not burst,
        # SIGTERM / SIGINT: take no new job and let the running ones finish (a job runs
        # at most its lease), so a restart drains instead of leaving leased rows behind.
        job_completion_wait=max(1, int(hub.settings.job_lease_s)),
        log_results=False,
    )


#: Seconds a worker that lost Redis waits before it starts again.
RECONNECT_S = 1.0


async def run_worker(hub: Hub) -> None:
    """Run an arq worker until a signal stops it. arq's loop ends at the first Redis
    error: when Redis goes away, a new worker starts once it answers again (the jobs a
    restart of Redis lost come back through the pusher's sweep)."""
    while True:
        worker = make_worker(hub)
        try:
            await worker.async_run()
            return
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled, not the worker
            return  # SIGTERM / SIGINT: arq cancelled its own main task; a clean stop
        except Exception as exc:
            if not away(exc):
                raise
            log.warning("the worker lost Redis (%s); starting again", reason(exc))
        finally:
            # Waits for the running jobs (their outcome is in the database already).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.close(), hub.settings.job_lease_s)
        await asyncio.sleep(RECONNECT_S)
