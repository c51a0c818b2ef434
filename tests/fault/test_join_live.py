"""The JOIN example on a real server: the reply within a second, the event at a local sink."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col
from standardwebhooks.webhooks import Webhook

from hub.context import Hub
from hub.models import Message
from hub.services.apikeys import create_api_key
from hub.services.channels import create_channel
from hub.services.flows import import_flow
from tests.fakes.sink import Sink
from tests.fault.server import Server, wait_for
from tests.helpers import SimPhone

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[2] / "flows" / "examples"
SECRET = "live-simulator-secret"
ANN = "+15550001234"


async def test_join_news_is_answered_within_a_second_and_reaches_the_sinks(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with Sink("/zap") as zap, Sink("/endpoint") as endpoint_sink:
        channel = await create_channel(
            setup_hub,
            connector="simulator",
            name="sim",
            config={"phone_number": "+15550100000", "delivery_delay_s": 0},
            webhook_secret=SECRET,
        )
        document = json.loads((EXAMPLES / "join_keyword.json").read_text())
        for node in document["nodes"]:
            if node["id"] == "zap":
                node["config"]["url"] = zap.url  # the Zapier step, pointed at a local sink
        await import_flow(setup_hub, document, publish_it=True)
        _row, key = await create_api_key(setup_hub, "live")
        server = await Server(
            tmp_path, database_url, SMSHUB_ALLOW_PRIVATE_DESTINATIONS="true"
        ).start()
        servers.append(server)
        async with httpx.AsyncClient(base_url=server.url) as client:
            created = await client.post(
                "/api/v1/endpoints",
                json={"url": endpoint_sink.url, "event_types": ["sms.received"]},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            phone = SimPhone(client, channel.id, SECRET, "+15550100000")
            started = time.monotonic()
            await phone.says(ANN, "jOiN news")

            async def replied() -> bool:
                async with setup_hub.db.read() as session:
                    found = await session.execute(
                        sa.select(Message.body).where(
                            col(Message.to_number) == ANN, col(Message.direction) == "outbound"
                        )
                    )
                    return found.first() is not None

            await wait_for(replied, timeout=5)
            elapsed = time.monotonic() - started
            assert elapsed < 1.0, f"reply took {elapsed:.2f} s"
        await zap.wait_for(1)
        await endpoint_sink.wait_for(1)
        flat = zap.requests[0].json()
        assert flat["event_type"] == "sms.received" and "news" in json.dumps(flat).lower()
        delivered = endpoint_sink.requests[0]
        event = Webhook(secret).verify(delivered.body, delivered.headers)
        assert event["type"] == "sms.received" and event["data"]["body"] == "jOiN news"
