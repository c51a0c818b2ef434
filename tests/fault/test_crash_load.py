"""SIGKILL the server three times under a 5,000-webhook keyword-flow load: every
acknowledged event has its run, every JOIN gets its one reply, nothing is lost.

The gateway is SMS Gateway for Android, which dedupes on the id the hub sends: a send
the kill interrupted mid-hand-over is safely sent again and the gateway answers 409 for
the copy (with a gateway that cannot dedupe, the hub fails such a message as
``send_interrupted`` instead — tests/fault/test_crash_send.py shows both).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import FlowRun
from tests.fakes.providers import FakeProvider
from tests.fakes.sink import Sink
from tests.fault.load import LOAD_ENV, Load, Tally, joins, phone_with_keyword_flow
from tests.fault.server import Server, wait_for

pytestmark = pytest.mark.slow

#: Webhooks of the load: the issue's 5,000 on the embedded default; 2,000 on PostgreSQL,
#: where the same three kills take twice as long and CI has ten minutes per configuration.
WEBHOOKS = {"sqlite": 5_000, "postgresql": 2_000}
CONCURRENCY = 32
#: Shares of the load acknowledged when the server is killed (and restarted).
KILL_AT = (0.24, 0.52, 0.8)


def webhooks(database_url: str) -> int:
    return WEBHOOKS["sqlite" if database_url.startswith("sqlite") else "postgresql"]


async def _killer(load: Load, server: Server) -> int:
    """Kill the server at each mark, restart it at once; how many kills happened."""
    kills = 0
    for mark in sorted(load.reached):
        await load.reached[mark].wait()
        server.kill()
        kills += 1
        server.spawn()  # same port, same database: the restart a supervisor would do
        await server.wait_healthy()
    return kills


async def test_three_sigkills_under_load_lose_and_repeat_nothing(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as gateway, Sink("/zap") as zap:
        channel = await phone_with_keyword_flow(setup_hub, gateway, zap)
        server = Server(
            tmp_path,
            database_url,
            **LOAD_ENV,
            # On PostgreSQL the restarted server waits out the dead one's leases (only the
            # embedded default knows it was alone): 8 s instead of 60 keeps the three
            # kills from costing three minutes of the suite.
            SMSHUB_JOB_LEASE_S="8",
        )
        servers.append(server)
        await server.start()
        total = webhooks(database_url)
        load = Load([server], channel.id, total, marks=KILL_AT, concurrency=CONCURRENCY)
        killer = asyncio.create_task(_killer(load, server))
        await load.run(timeout=240)
        assert await asyncio.wait_for(killer, 60) == len(KILL_AT)
        tally = Tally(gateway, zap)

        async def everything_arrived() -> bool:
            return tally.complete(total)

        await wait_for(everything_arrived, timeout=180)
    assert load.acked == total
    # Every JOIN got exactly one welcome; a resend after a kill was refused as a copy.
    replies = tally.replies()
    assert set(replies) == joins(total) and max(replies.values()) == 1
    async with setup_hub.db.read() as session:
        runs = (await session.execute(sa.select(sa.func.count()).select_from(FlowRun))).scalar()
        done = (
            await session.execute(
                sa.select(sa.func.count()).select_from(FlowRun).where(FlowRun.status == "completed")
            )
        ).scalar()
    assert runs == total and done == total  # one run per acknowledged event, all ended
