"""Scale-out under load: two ``smshub serve`` API processes and two ``smshub worker``
processes on PostgreSQL + Redis take 5,000 inbound webhooks on a keyword flow; halfway,
one worker is SIGKILLed and a fresh one started. Every acknowledged event has exactly
one flow run, every JOIN's welcome reaches the gateway exactly once, nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.context import Hub
from tests.conftest import empty_redis_db
from tests.fakes.providers import FakeProvider
from tests.fakes.sink import Sink
from tests.fault.load import (
    LOAD_ENV,
    Load,
    Tally,
    backlog,
    jobs_left,
    joins,
    phone_with_keyword_flow,
    runs_per_phone,
    sender,
)
from tests.fault.server import Server, WorkerProcess, wait_for

#: Its own API and worker processes, Redis db and settings: the same run in every
#: configuration, so it runs in one (tests/conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.configs("postgres")]

REDIS_DB = 11
WEBHOOKS = 5_000


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis db 11, empty before and after the test."""
    yield from empty_redis_db(REDIS_DB)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_apis_two_workers_survive_a_killed_worker(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server], redis_url: str
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as gateway, Sink("/zap") as zap:
        channel = await phone_with_keyword_flow(setup_hub, gateway, zap)
        # Short leases: the jobs the killed worker had claimed are taken over in seconds.
        env = {**LOAD_ENV, "SMSHUB_REDIS_URL": redis_url, "SMSHUB_JOB_LEASE_S": "4"}
        apis = [Server(tmp_path, database_url, **env) for _ in range(2)]
        workers = [WorkerProcess(tmp_path, database_url, **env) for _ in range(2)]
        servers.extend([*apis, *workers])
        await asyncio.gather(*(process.start() for process in [*apis, *workers]))
        load = Load(apis, channel.id, WEBHOOKS, marks=(0.5,))
        tally = Tally(gateway, zap)

        async def kill_a_worker_and_start_another() -> bool:
            await load.reached[WEBHOOKS // 2].wait()
            workers[0].kill()  # SIGKILL, whatever jobs it was running
            busy = not tally.complete(WEBHOOKS)
            fresh = WorkerProcess(tmp_path, database_url, **env)
            servers.append(fresh)
            await fresh.start()
            return busy

        killer = asyncio.create_task(kill_a_worker_and_start_another())
        await load.run(timeout=300)
        assert await asyncio.wait_for(killer, 30), "the worker was killed after all work was done"

        async def everything_arrived() -> bool:
            return tally.complete(WEBHOOKS) and await jobs_left(setup_hub) == 0

        try:
            await wait_for(everything_arrived, timeout=240)
        except AssertionError:
            raise AssertionError(await backlog(setup_hub, tally, WEBHOOKS)) from None
        await asyncio.sleep(1.0)  # room for a duplicate to show up
    assert load.acked == WEBHOOKS
    # Every JOIN got exactly one welcome; a resend after the kill was refused as a copy.
    replies = tally.replies()
    assert set(replies) == joins(WEBHOOKS) and max(replies.values()) == 1
    # One run per acknowledged event (each comes from its own phone), all completed.
    per_phone = await runs_per_phone(setup_hub)
    assert per_phone.pop(None) == 0, "some runs did not complete"
    assert per_phone == {sender(n): 1 for n in range(WEBHOOKS)}
