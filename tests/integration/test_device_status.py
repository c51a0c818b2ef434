"""``device.offline`` / ``device.online`` once each when two hub processes race: two hubs on
one PostgreSQL database run the watch at the same moment, then both take a ping from the
phone at the same moment; each change is announced once."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from connectors.base import InboundEvent
from hub.app import build_hub
from hub.context import ChannelRuntime, Hub
from hub.models import Event
from hub.services import devices
from hub.services.ingest import ingest_events
from tests.conftest import ChannelFactory, make_settings


async def _runtime(hub: Hub, channel_id: str) -> ChannelRuntime:
    channel = await hub.channels.get(channel_id)
    assert channel is not None
    return channel


def _ping(number: int) -> InboundEvent:
    return InboundEvent(type="device.heartbeat", dedupe_key=f"ping-{number}", device_id="phone-1")


async def _device_events(hub: Hub) -> list[str]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(col(Event.type))
            .where(col(Event.type).startswith("device."))
            .order_by(col(Event.created_at))
        )
        return list(rows.scalars())


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_hubs_announce_each_change_once(
    hub: Hub, make_channel: ChannelFactory, tmp_path: Path, database_url: str
) -> None:
    import asyncpg

    now = [datetime.now(UTC)]
    other = build_hub(make_settings(tmp_path / "other", database_url))
    hub.clock = other.clock = lambda: now[0]
    blocker = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        channel = await make_channel(
            "smsgate", config={"mode": "cloud", "username": "u", "password": "p"}
        )
        mine, theirs = await _runtime(hub, channel.id), await _runtime(other, channel.id)
        await ingest_events(hub, mine, [_ping(1)])
        now[0] += timedelta(seconds=hub.settings.device_offline_after_s + 1)

        async def both_at_once(
            first: Coroutine[Any, Any, Any], second: Coroutine[Any, Any, Any]
        ) -> None:
            # The device row is locked elsewhere: both units are open before either writes.
            async with blocker.transaction():
                await blocker.execute("SELECT id FROM devices FOR UPDATE")
                tasks = [asyncio.create_task(first), asyncio.create_task(second)]
                await asyncio.sleep(0.5)
                assert not any(task.done() for task in tasks)
            await asyncio.gather(*tasks)

        await both_at_once(devices.device_watch(hub), devices.device_watch(other))
        assert await _device_events(hub) == ["device.offline"]

        await both_at_once(
            ingest_events(hub, mine, [_ping(2)]), ingest_events(other, theirs, [_ping(3)])
        )
        assert await _device_events(hub) == ["device.offline", "device.online"]
    finally:
        await blocker.close()
        await other.close()
