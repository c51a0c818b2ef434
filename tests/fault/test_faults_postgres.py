"""PostgreSQL vanishes for a few seconds under load (through a TCP proxy, so the shared
cluster keeps running): ingress answers 503 with Retry-After — never a 500 — while it is
away, the API and the worker reconnect by themselves, and every event acknowledged with
a 2xx is processed exactly once (one run, one reply), without a storm of tracebacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import Job, utcnow
from hub.queue.base import enqueue_job
from hub.queue.runner import JobRunner
from tests.fakes.providers import FakeProvider
from tests.fakes.sink import Sink
from tests.fakes.tcp_proxy import TcpProxy
from tests.fault.load import (
    LOAD_ENV,
    Load,
    RedisServer,
    Tally,
    backlog,
    jobs_left,
    joins,
    phone_with_keyword_flow,
    runs_per_phone,
    sender,
    tracebacks,
)
from tests.fault.server import Server, WorkerProcess, wait_for

WEBHOOKS = 1_000
#: Seconds the database is cut off.
CUT_S = 3.0
#: "Traceback" lines the two processes may log for the whole outage (one per failed
#: request or job round would be hundreds).
MAX_TRACEBACKS = 10


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = await RedisServer(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    url = sa.engine.make_url(database_url)
    async with TcpProxy(url.port or 5432, url.host or "127.0.0.1") as running:
        yield running


def through(proxy: TcpProxy, database_url: str) -> str:
    """``database_url`` with the proxy's port instead of PostgreSQL's."""
    url = sa.engine.make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.configs("postgres")  # its own processes and proxy: the same run everywhere
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_database_cut_off_under_load_answers_503_and_loses_nothing(
    tmp_path: Path,
    database_url: str,
    setup_hub: Hub,
    servers: list[Server],
    redis: RedisServer,
    proxy: TcpProxy,
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as gateway, Sink("/zap") as zap:
        channel = await phone_with_keyword_flow(setup_hub, gateway, zap)
        env = {
            **LOAD_ENV,
            "SMSHUB_REDIS_URL": redis.url,
            "SMSHUB_JOB_LEASE_S": "4",
            "SMSHUB_JOB_REPUSH_AFTER_S": "3",
        }
        proxied = through(proxy, database_url)
        api = Server(tmp_path, proxied, **env)
        worker = WorkerProcess(tmp_path, proxied, **env)
        servers.extend([api, worker])
        await asyncio.gather(api.start(), worker.start())
        load = Load([api], channel.id, WEBHOOKS, marks=(0.4,))

        async def cut_off() -> int:
            """Cut the database at 40 % of the load for CUT_S; the 503s meanwhile."""
            await load.reached[int(WEBHOOKS * 0.4)].wait()
            await proxy.cut()
            before = load.statuses[503]
            await asyncio.sleep(CUT_S)
            during = load.statuses[503] - before
            await proxy.restore()
            return during

        cut = asyncio.create_task(cut_off())
        await load.run(timeout=180)
        assert await asyncio.wait_for(cut, 30) > 0, "no 503 while the database was away"
        tally = Tally(gateway, zap)

        async def everything_arrived() -> bool:
            return tally.complete(WEBHOOKS) and await jobs_left(setup_hub) == 0

        try:
            await wait_for(everything_arrived, timeout=120)
        except AssertionError:
            raise AssertionError(await backlog(setup_hub, tally, WEBHOOKS)) from None
        await asyncio.sleep(1.0)  # room for a duplicate to show up
    # Refused webhooks were 503 with Retry-After, never a 500 (nor a dropped connection).
    assert set(load.statuses) == {200, 503}, load.statuses
    assert load.no_retry_after == 0
    # The same two processes, reconnected by themselves.
    assert api.proc is not None and api.proc.poll() is None
    assert worker.proc is not None and worker.proc.poll() is None
    assert tracebacks(api, worker) <= MAX_TRACEBACKS
    replies = tally.replies()
    assert set(replies) == joins(WEBHOOKS) and max(replies.values()) == 1
    per_phone = await runs_per_phone(setup_hub)
    assert per_phone.pop(None) == 0, "some runs did not complete"
    assert per_phone == {sender(n): 1 for n in range(WEBHOOKS)}


async def test_a_worker_takes_its_own_lost_lease_again(hub: Hub) -> None:
    """What the outage left behind: a row leased to a worker that no longer has it in
    memory (its outcome could not be written, or its claim's answer was lost) is that
    worker's to claim again once the lease ran out — with one worker, nobody else's."""
    runner = JobRunner(hub)
    job_id = await hub.store.write(enqueue_job("flow_sweep", {}))
    assert [row.id for row in await runner.claim(1, job_id=job_id)] == [job_id]
    async with hub.db.write() as session:
        await session.execute(sa.update(Job).values(lease_until=utcnow() - timedelta(seconds=1)))
    # Still in its memory (claimed, not run yet): a second delivery does not run it twice.
    assert await runner.claim(1, job_id=job_id) == [] and await runner.claim(10) == []
    assert not await runner.has_due(include_expired=True)
    runner.held.discard(job_id)  # what run() does when the outcome write fails
    assert await runner.has_due(include_expired=True)
    assert [row.id for row in await runner.claim(10)] == [job_id]
