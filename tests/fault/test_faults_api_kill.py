"""One of two API processes is SIGKILLed mid-request under load: the load client, like a
gateway, sends each failed webhook again — the same body — to the other process. Every
event is stored once (a retry of a webhook the dead process had stored is a duplicate the
dedupe drops) and processed once; the survivor takes over the dead process's jobs when
their leases run out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.context import Hub
from tests.fakes.providers import FakeProvider
from tests.fakes.sink import Sink
from tests.fault.load import (
    LOAD_ENV,
    Load,
    Tally,
    backlog,
    events_stored,
    jobs_left,
    joins,
    phone_with_keyword_flow,
    runs_per_phone,
    sender,
)
from tests.fault.server import Server, wait_for

pytestmark = pytest.mark.slow

WEBHOOKS = 1_000


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_an_api_killed_mid_request_loses_and_repeats_nothing(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as gateway, Sink("/zap") as zap:
        channel = await phone_with_keyword_flow(setup_hub, gateway, zap)
        # Both serve HTTP and run jobs (the inline queue on one PostgreSQL database; in the
        # arq test configuration each has a worker beside it, killed with it); short
        # leases, so the jobs the dead one had taken are the survivor's in seconds.
        apis = [Server(tmp_path, database_url, **LOAD_ENV, SMSHUB_JOB_LEASE_S="4") for _ in "ab"]
        servers.extend(apis)
        await asyncio.gather(*(api.start() for api in apis))
        doomed, survivor = apis
        load = Load(apis, channel.id, WEBHOOKS, marks=(0.4,))

        async def kill() -> None:
            await load.reached[int(WEBHOOKS * 0.4)].wait()
            doomed.kill()  # SIGKILL with requests in flight; it is not restarted

        killer = asyncio.create_task(kill())
        await load.run(timeout=180)
        await asyncio.wait_for(killer, 10)
        tally = Tally(gateway, zap)

        async def everything_arrived() -> bool:
            return tally.complete(WEBHOOKS) and await jobs_left(setup_hub) == 0

        try:
            await wait_for(everything_arrived, timeout=120)
        except AssertionError:
            raise AssertionError(await backlog(setup_hub, tally, WEBHOOKS)) from None
        await asyncio.sleep(1.0)  # room for a duplicate to show up
    assert load.cut_mid_request > 0, "the kill interrupted no request"
    assert survivor.proc is not None and survivor.proc.poll() is None
    # Stored once each, whichever process took it (and however often it was sent).
    assert await events_stored(setup_hub, channel.id) == {f"load-{n}": 1 for n in range(WEBHOOKS)}
    replies = tally.replies()
    assert set(replies) == joins(WEBHOOKS) and max(replies.values()) == 1
    per_phone = await runs_per_phone(setup_hub)
    assert per_phone.pop(None) == 0, "some runs did not complete"
    assert per_phone == {sender(n): 1 for n in range(WEBHOOKS)}
