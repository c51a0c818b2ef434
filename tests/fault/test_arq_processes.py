"""Scale-out for real: ``smshub serve`` with Redis only accepts and pushes; separate
``smshub worker`` processes run the jobs — and one killed before it ran anything loses
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import Message
from hub.services.apikeys import create_api_key
from hub.services.channels import create_channel
from tests.conftest import empty_redis_db
from tests.fakes.providers import FakeProvider
from tests.fault.server import Server, WorkerProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.redis]

REDIS_DB = 10


@pytest.fixture
def redis_url() -> Iterator[str]:
    yield from empty_redis_db(REDIS_DB)


async def test_api_pushes_workers_send_exactly_once(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server], redis_url: str
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as fake:
        channel = await create_channel(
            setup_hub,
            connector="smsgate",
            name="phone",
            config={"mode": "private", "base_url": fake.base_url, "username": "u", "password": "p"},
        )
        _row, key = await create_api_key(setup_hub, "arq")
        api = await Server(tmp_path, database_url, SMSHUB_REDIS_URL=redis_url).start()
        servers.append(api)
        async with httpx.AsyncClient(base_url=api.url) as client:
            ids = []
            for i in range(5):
                resp = await client.post(
                    "/api/v1/send",
                    json={
                        "to": f"+1555000120{i}",
                        "message": f"order {i}",
                        "channel_id": channel.id,
                    },
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert resp.status_code == 202, resp.text
                ids.append(resp.json()["id"])
        # No worker yet: the API process only accepted and pushed.
        assert fake.requests == []
        # Short leases, so a job the killed worker may have claimed is taken over quickly.
        env = {"SMSHUB_REDIS_URL": redis_url, "SMSHUB_JOB_LEASE_S": "2"}
        doomed = await WorkerProcess(tmp_path, database_url, **env).start()
        doomed.kill()  # SIGKILL half a second into its life, whatever it was doing
        for _ in range(2):  # two live workers compete for the same jobs
            worker = await WorkerProcess(tmp_path, database_url, **env).start()
            servers.append(worker)

        async def all_handed_over() -> bool:
            async with setup_hub.db.read() as session:
                statuses = (
                    await session.execute(sa.select(Message.status).where(col(Message.id).in_(ids)))
                ).scalars()
                return all(s == "accepted" for s in statuses)

        await wait_for(all_handed_over, timeout=40)
        import asyncio

        await asyncio.sleep(1.0)  # room for a duplicate to show up
        # SMS Gateway dedupes on our id: one SMS per message, whatever was resent.
        assert sorted({r.json()["id"] for r in fake.requests}) == sorted(ids)
