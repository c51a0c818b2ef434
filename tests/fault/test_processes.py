"""``smshub serve --processes 2``: two processes on one port and one database; every
webhook is stored once, every JOIN gets one reply, whichever process took it."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import FlowRun, Message
from tests.fakes.providers import FakeProvider
from tests.fakes.sink import Sink
from tests.fault.load import (
    LOAD_ENV,
    phone_with_keyword_flow,
    sender,
    signed_webhook,
    text,
)
from tests.fault.server import Server, wait_for

pytestmark = pytest.mark.slow

WEBHOOKS = 400


async def test_two_processes_share_the_database_safely(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as gateway, Sink("/zap") as zap:
        channel = await phone_with_keyword_flow(setup_hub, gateway, zap)
        server = Server(tmp_path, database_url, SMSHUB_PROCESSES="2", **LOAD_ENV)
        servers.append(server)
        await server.start()
        url = f"{server.url}/webhooks/{channel.id}"
        gate = asyncio.Semaphore(16)

        async def post(client: aiohttp.ClientSession, n: int) -> int:
            body, headers = signed_webhook(n)
            async with gate, client.post(url, data=body, headers=headers) as resp:
                return resp.status

        async with aiohttp.ClientSession() as client:
            statuses = await asyncio.gather(*(post(client, n) for n in range(WEBHOOKS)))
        assert Counter(statuses) == {200: WEBHOOKS}
        joins = {sender(n) for n in range(WEBHOOKS) if text(n).split()[0].upper() == "JOIN"}

        async def done() -> bool:
            sent = {(r.json()["id"], r.json()["phoneNumbers"][0]) for r in gateway.requests}
            return (
                len({r.json()["from"] for r in zap.requests}) == WEBHOOKS
                and {phone for _, phone in sent} == joins
            )

        await wait_for(done, timeout=90)
        sent = Counter(
            phone
            for _, phone in {
                (r.json()["id"], r.json()["phoneNumbers"][0]) for r in gateway.requests
            }
        )
    assert max(sent.values()) == 1
    async with setup_hub.db.read() as session:
        runs = (await session.execute(sa.select(sa.func.count()).select_from(FlowRun))).scalar()
        inbound = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(Message)
                .where(Message.direction == "inbound")
            )
        ).scalar()
    assert runs == WEBHOOKS and inbound == WEBHOOKS
