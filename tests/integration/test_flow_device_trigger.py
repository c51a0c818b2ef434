"""trigger.device_status: a phone that goes silent starts the owner's alert flow once; its
return starts only the flows that asked for ``online``; the device filter holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.services import devices
from tests.conftest import ChannelFactory, drain
from tests.fakes.smsgate_api import FakeSmsGateApi
from tests.integration.test_channel_connect import PUBLIC, _connect, _phone_posts, _smsgate_channel
from tests.integration.test_flows_hub import publish, runs, texts_to

OWNER = "+15550009999"
PING = {"health": {"status": "pass", "checks": {}}}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"public_url": PUBLIC, "device_offline_after_s": 900.0}


def alert(states: list[str], text: str, **config: Any) -> dict[str, Any]:
    return {
        "name": f"Phone {'/'.join(states)} alert",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.device_status",
                "config": {"states": states, **config},
            },
            {"id": "tell", "type": "sms.send", "config": {"to": OWNER, "text": text}},
        ],
        "edges": [{"from": "start", "to": "tell"}],
    }


async def test_a_silent_phone_alerts_the_owner_once_and_its_return_once(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    now = [datetime.now(UTC).replace(microsecond=0)]
    hub.clock = lambda: now[0]
    async with FakeSmsGateApi(username="sms", password="pw") as phone:
        channel = await _smsgate_channel(make_channel, phone)
        assert (await _connect(client, api_headers, channel.id)).status_code == 200
        phone.signing_key = (
            await client.get(f"/api/v1/channels/{channel.id}", headers=api_headers)
        ).json()["webhook_secret"]
        offline = await publish(
            client,
            api_headers,
            alert(
                ["offline"],
                "{{ trigger.data.channel.name }} is offline since {{ trigger.data.last_seen_at }}",
            ),
        )
        await publish(
            client, api_headers, alert(["online"], "{{ trigger.data.channel.name }} is back")
        )
        await publish(
            client, api_headers, alert(["offline", "online"], "never", devices=["someone-else"])
        )
        assert await _phone_posts(client, phone, "system:ping", PING, now[0]) == [200]
        await drain(hub)
        now[0] += timedelta(seconds=901)
        await devices.device_watch(hub)
        await devices.device_watch(hub)
        await drain(hub)
        texts = await texts_to(hub, OWNER)
        assert len(texts) == 1 and texts[0].startswith("Shop phone is offline since ")
        started = await runs(client, api_headers, flow_id=offline["id"])
        assert len(started) == 1 and started[0]["status"] == "completed"

        now[0] += timedelta(seconds=60)
        assert await _phone_posts(client, phone, "system:ping", PING, now[0]) == [200]
        assert await _phone_posts(client, phone, "system:ping", PING, now[0]) == [200]
        await drain(hub)
        assert await texts_to(hub, OWNER) == [texts[0], "Shop phone is back"]
