"""Redis dies under load and comes back empty: the API keeps acknowledging webhooks
while it is away (the job row is the outbox, not Redis), the processes reconnect by
themselves, and the sweep pushes again what Redis lost — every event is processed once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.context import Hub
from tests.fakes.providers import FakeProvider
from tests.fakes.sink import Sink
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
)
from tests.fault.server import Server, WorkerProcess, wait_for

#: Its own API and worker processes, Redis db and settings: the same run in every
#: configuration, so it runs in one (tests/conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.configs("postgres")]

WEBHOOKS = 1_000
#: Seconds Redis stays away at least.
OUTAGE_S = 2.0


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = await RedisServer(tmp_path).start()
    yield server
    server.kill()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_redis_restarted_empty_under_load_loses_nothing(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server], redis: RedisServer
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as gateway, Sink("/zap") as zap:
        channel = await phone_with_keyword_flow(setup_hub, gateway, zap)
        env = {
            **LOAD_ENV,
            "SMSHUB_REDIS_URL": redis.url,
            "SMSHUB_JOB_LEASE_S": "4",
            # What Redis lost is pushed again 3 s after it should have run (30 by default).
            "SMSHUB_JOB_REPUSH_AFTER_S": "3",
        }
        api = Server(tmp_path, database_url, **env)
        worker = WorkerProcess(tmp_path, database_url, **env)
        servers.extend([api, worker])
        await asyncio.gather(api.start(), worker.start())
        load = Load([api], channel.id, WEBHOOKS, marks=(0.3, 0.6))

        async def outage() -> int:
            """Kill Redis at 30 % of the load, start an empty one after 60 % (and at
            least OUTAGE_S); the webhooks refused meanwhile."""
            await load.reached[int(WEBHOOKS * 0.3)].wait()
            redis.kill()
            down_at, refused = time.monotonic(), load.refused
            await load.reached[int(WEBHOOKS * 0.6)].wait()
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
            refused_while_down = load.refused - refused
            await redis.start()  # same port, nothing in it
            return refused_while_down

        restarted = asyncio.create_task(outage())
        await load.run(timeout=180)
        assert await asyncio.wait_for(restarted, 30) == 0, "ingress refused webhooks"
        tally = Tally(gateway, zap)

        async def everything_arrived() -> bool:
            return tally.complete(WEBHOOKS) and await jobs_left(setup_hub) == 0

        try:
            await wait_for(everything_arrived, timeout=120)
        except AssertionError:
            raise AssertionError(await backlog(setup_hub, tally, WEBHOOKS)) from None
        await asyncio.sleep(1.0)  # room for a duplicate to show up
    # Neither process died of it, and not one webhook was refused.
    assert api.proc is not None and api.proc.poll() is None
    assert worker.proc is not None and worker.proc.poll() is None
    assert load.statuses == {200: WEBHOOKS}
    replies = tally.replies()
    assert set(replies) == joins(WEBHOOKS) and max(replies.values()) == 1
    per_phone = await runs_per_phone(setup_hub)
    assert per_phone.pop(None) == 0, "some runs did not complete"
    assert per_phone == {sender(n): 1 for n in range(WEBHOOKS)}
