"""The server killed with SIGKILL around a send: after a restart the SMS goes out exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import Message
from hub.services.apikeys import create_api_key
from hub.services.channels import create_channel
from tests.fakes.providers import FakeProvider
from tests.fault.server import Server, wait_for

pytestmark = pytest.mark.slow


async def _message(hub: Hub, message_id: str) -> Message:
    async with hub.db.read() as session:
        row = (
            await session.execute(sa.select(Message).where(Message.id == message_id))
        ).scalar_one()  # type: ignore[arg-type]
        return row


async def test_killed_after_202_before_the_job_ran_sends_exactly_once(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as fake:
        channel = await create_channel(
            setup_hub,
            connector="smsgate",
            name="phone",
            config={"mode": "private", "base_url": fake.base_url, "username": "u", "password": "p"},
        )
        _row, key = await create_api_key(setup_hub, "crash")
        # First life: HTTP only (no workers), so the job certainly has not run when we kill.
        first = await Server(tmp_path, database_url, SMSHUB_WORKERS="0").start()
        servers.append(first)
        async with httpx.AsyncClient() as client:
            resp = await client.post(
                f"{first.url}/api/v1/send",
                json={
                    "to": "+15550001234",
                    "message": "Your order shipped",
                    "channel_id": channel.id,
                },
                headers={"Authorization": f"Bearer {key}"},
            )
        assert resp.status_code == 202, resp.text
        message_id = resp.json()["id"]
        first.kill()
        assert fake.requests == []

        second = await Server(tmp_path, database_url).start()
        servers.append(second)

        async def handed_over() -> bool:
            return (await _message(setup_hub, message_id)).status == "accepted"

        await wait_for(handed_over)
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        assert len(fake.requests) == 1
        assert fake.requests[0].json()["id"] == message_id
        assert fake.requests[0].json()["textMessage"] == {"text": "Your order shipped"}


@pytest.mark.parametrize(
    ("connector", "config", "outcome"),
    [
        # SMS Gateway dedupes on our message id: the hub resends and the phone sends once.
        ("smsgate", {"mode": "private", "username": "u", "password": "p"}, "accepted"),
        # MySMSGate cannot dedupe: the hub must not resend blindly; it says what happened.
        ("mysmsgate", {"api_key": "k"}, "failed"),
    ],
)
async def test_killed_while_handing_over_never_sends_twice(
    tmp_path: Path,
    database_url: str,
    setup_hub: Hub,
    servers: list[Server],
    connector: str,
    config: dict[str, str],
    outcome: str,
) -> None:
    credentials = {"username": "u", "password": "p"} if connector == "smsgate" else {"api_key": "k"}
    async with FakeProvider(connector, **credentials) as fake:  # type: ignore[arg-type]
        channel = await create_channel(
            setup_hub, connector=connector, name="gw", config={**config, "base_url": fake.base_url}
        )
        _row, key = await create_api_key(setup_hub, "crash")
        fake.hang()  # the provider takes the request and never answers
        first = await Server(tmp_path, database_url, SMSHUB_JOB_LEASE_S="2").start()
        servers.append(first)
        async with httpx.AsyncClient() as client:
            resp = await client.post(
                f"{first.url}/api/v1/send",
                json={"to": "+15550001234", "message": "Hold tight", "channel_id": channel.id},
                headers={"Authorization": f"Bearer {key}"},
            )
        message_id = resp.json()["id"]

        async def provider_got_it() -> bool:
            return len(fake.requests) == 1

        await wait_for(provider_got_it)
        first.kill()  # mid-send: the gateway has the SMS, the hub never heard back
        fake.resume()

        second = await Server(tmp_path, database_url, SMSHUB_JOB_LEASE_S="2").start()
        servers.append(second)

        async def settled() -> bool:
            return (await _message(setup_hub, message_id)).status == outcome

        await wait_for(settled)
        await asyncio.sleep(1.0)
        ids = {r.json().get("id") for r in fake.requests} if connector == "smsgate" else set()
        if connector == "smsgate":
            assert ids == {message_id}  # maybe asked twice, always under one id: one SMS
        else:
            assert len(fake.requests) == 1
            assert "send_interrupted" in ((await _message(setup_hub, message_id)).error or "")
