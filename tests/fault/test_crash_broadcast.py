"""A real ``smshub serve`` SIGKILLed in the middle of a broadcast, then restarted: each
remaining recipient gets exactly one SMS; and pause holds sending within one second."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.models import Device
from hub.services.apikeys import create_api_key
from hub.services.channels import create_channel
from tests.fakes.providers import FakeProvider, RecordedRequest
from tests.fault.server import Server, wait_for

pytestmark = pytest.mark.slow

#: Random spacing of up to 0.5 s per SIM: about 16 SMS a second over 4 SIMs — done in
#: seconds, slow enough to be caught in the middle.
PACE = {
    "SMSHUB_DEVICE_RATE_LIMIT_PER_MIN": "600",
    "SMSHUB_SEND_SPACING_MAX_S": "0.5",
    # The killed process's leased jobs are taken over this soon after the restart.
    "SMSHUB_JOB_LEASE_S": "5",
}
MEMBERS = [f"+1555300{i:04d}" for i in range(200)]


async def _setup(hub: Hub, fake: FakeProvider) -> tuple[str, str]:
    """A gateway channel with 2 phones x 2 SIMs, and an API key."""
    channel = await create_channel(
        hub,
        connector="smsgate",
        name="phones",
        config={"mode": "private", "base_url": fake.base_url, "username": "u", "password": "p"},
    )
    async with hub.db.write() as session:
        for n in (1, 2):
            session.add(
                Device(id=f"dev_{n}", channel_id=channel.id, external_id=f"ph{n}", sim_slots=[0, 1])
            )
    _row, key = await create_api_key(hub, "crash")
    return str(channel.id), key


async def _broadcast(server: Server, key: str, channel_id: str, opted_out: list[str]) -> str:
    """A group of MEMBERS (some opted out) and a broadcast to it, through the API."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        group = (await client.post("/api/v1/groups", json={"name": "all"})).json()["id"]
        added = await client.post(f"/api/v1/groups/{group}/members", json={"phones": MEMBERS})
        assert added.status_code == 200, added.text
        for phone in opted_out:
            found = (await client.get("/api/v1/contacts", params={"q": phone})).json()["items"]
            patched = await client.patch(
                f"/api/v1/contacts/{found[0]['id']}", json={"opted_out": True}
            )
            assert patched.status_code == 200, patched.text
        resp = await client.post(
            "/api/v1/broadcasts",
            json={
                "name": "Sale",
                "text": "Sale today",
                "group_ids": [group],
                "channel_id": channel_id,
            },
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])


async def _state(server: Server, key: str, broadcast_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as client:
        resp = await client.get(f"{server.url}/api/v1/broadcasts/{broadcast_id}")
    found: dict[str, Any] = resp.json()
    return found


def _ids_by_phone(requests: list[RecordedRequest]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for request in requests:
        body = request.json()
        found[body["phoneNumbers"][0]].add(body["id"])
    return found


async def test_killed_mid_broadcast_each_remaining_recipient_gets_exactly_one_sms(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as fake:
        channel_id, key = await _setup(setup_hub, fake)
        first = await Server(tmp_path, database_url, **PACE).start()
        servers.append(first)
        opted_out = MEMBERS[::20]
        broadcast_id = await _broadcast(first, key, channel_id, opted_out)

        async def well_under_way() -> bool:
            return len(fake.requests) >= 40

        # Generous: in the arq configuration a lost push is re-pushed after 30 s.
        await wait_for(well_under_way, timeout=45)
        first.kill()
        at_kill = len(fake.requests)
        assert at_kill < len(MEMBERS) - len(opted_out)  # killed in the middle

        second = await Server(tmp_path, database_url, **PACE).start()
        servers.append(second)

        async def completed() -> bool:
            return (await _state(second, key, broadcast_id))["status"] == "completed"

        await wait_for(completed, timeout=90)
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        by_phone = _ids_by_phone(fake.requests)
        assert set(by_phone) == set(MEMBERS) - set(opted_out)
        # One message (one SMS) per recipient; a hand-over the kill cut short is asked
        # again under the same id, which the gateway dedupes.
        assert all(len(ids) == 1 for ids in by_phone.values())
        assert len(fake.requests) <= len(by_phone) + 8  # at most the in-flight ones twice
        counts = (await _state(second, key, broadcast_id))["counts"]
        assert counts["recipients"] == len(MEMBERS)
        assert counts["skipped_opted_out"] == len(opted_out)
        assert counts["sent"] + counts["delivered"] == len(by_phone)


async def test_pause_holds_sending_within_a_second_and_resume_continues(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as fake:
        channel_id, key = await _setup(setup_hub, fake)
        # Nothing is killed here: the default lease, not the 5 s one (arq times a job out
        # at its lease, and under load a hand-over can wait that long for its write batch).
        env = {**PACE, "SMSHUB_JOB_LEASE_S": "60"}
        server = await Server(tmp_path, database_url, **env).start()
        servers.append(server)
        broadcast_id = await _broadcast(server, key, channel_id, [])
        headers = {"Authorization": f"Bearer {key}"}

        async def under_way() -> bool:
            return len(fake.requests) >= 30

        await wait_for(under_way, timeout=45)
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            paused = await client.post(f"/api/v1/broadcasts/{broadcast_id}/pause")
            assert paused.status_code == 200, paused.text
            await asyncio.sleep(1.0)  # hand-overs already under way may finish
            held_at = len(fake.requests)
            await asyncio.sleep(3.0)
            assert len(fake.requests) == held_at  # nothing more went out
            assert held_at < len(MEMBERS)
            resumed = await client.post(f"/api/v1/broadcasts/{broadcast_id}/resume")
            assert resumed.status_code == 200, resumed.text

        async def completed() -> bool:
            return (await _state(server, key, broadcast_id))["status"] == "completed"

        await wait_for(completed, timeout=90)
        await asyncio.sleep(1.0)
        by_phone = _ids_by_phone(fake.requests)
        assert set(by_phone) == set(MEMBERS)
        assert len(fake.requests) == len(MEMBERS)  # each exactly once
