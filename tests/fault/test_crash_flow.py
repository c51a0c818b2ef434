"""A run waiting for a reply survives SIGKILL: the reply after the restart continues it, and
every SMS of the dialogue reaches the gateway exactly once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from connectors import get_connector
from connectors.base import WebhookRequest
from hub.context import Hub
from hub.models import FlowRun
from hub.services.channels import create_channel
from hub.services.flows import import_flow
from tests.fakes.providers import FakeProvider
from tests.fault.server import Server, wait_for

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[2] / "flows" / "examples"
SIGNING_KEY = "smsgate-signing-key-for-tests"
ANN = "+15550001234"


def smsgate_reply(text: str, event_id: str) -> tuple[bytes, dict[str, str]]:
    """An SMS Gateway for Android ``sms:received`` webhook, signed as the app signs it."""
    body = json.dumps(
        {
            "deviceId": "phone-1",
            "event": "sms:received",
            "id": event_id,
            "payload": {
                "messageId": "m-" + event_id,
                "message": text,
                "sender": ANN,
                "recipient": "+15559876543",
                "simNumber": 1,
                "receivedAt": datetime.now(UTC).isoformat(),
            },
            "webhookId": "wh-1",
        }
    ).encode()
    connector = get_connector("smsgate")
    config = connector.parse_config({"username": "u", "password": "p"})
    request = WebhookRequest(
        method="POST",
        url="http://x/",
        path="",
        headers={"content-type": "application/json"},
        body=body,
    )
    signed = connector.sign(config, SIGNING_KEY, request, datetime.now(UTC))  # type: ignore[attr-defined]
    return body, dict(signed.headers)


async def test_waiting_run_survives_sigkill_and_sends_each_sms_once(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as fake:
        channel = await create_channel(
            setup_hub,
            connector="smsgate",
            name="phone",
            config={"mode": "private", "base_url": fake.base_url, "username": "u", "password": "p"},
            webhook_secret=SIGNING_KEY,
        )
        flow_doc = json.loads((EXAMPLES / "appointment_confirmation.json").read_text())
        view, _version = await import_flow(setup_hub, flow_doc, publish_it=True)
        first = await Server(tmp_path, database_url).start()
        servers.append(first)
        token = setup_hub.box.decrypt(view.flow.http_token_enc or "")
        async with httpx.AsyncClient() as client:
            resp = await client.post(
                f"{first.url}/hooks/flows/{view.flow.id}/{token}",
                json={"phone": ANN, "name": "Ann", "when": "Fri 9 am"},
            )
            assert resp.status_code == 202, resp.text
            run_id = resp.json()["run_id"]

        async def asked() -> bool:
            return len(fake.requests) == 1

        await wait_for(asked)
        first.kill()

        second = await Server(tmp_path, database_url).start()
        servers.append(second)
        body, headers = smsgate_reply("Y", "reply-1")
        async with httpx.AsyncClient() as client:
            for _ in range(2):  # the gateway delivers the reply twice (a retry)
                resp = await client.post(
                    f"{second.url}/webhooks/{channel.id}", content=body, headers=headers
                )
                assert resp.status_code == 200, resp.text

        async def completed() -> bool:
            async with setup_hub.db.read() as session:
                row = (
                    await session.execute(sa.select(FlowRun).where(col(FlowRun.id) == run_id))
                ).scalar_one()
            return row.status == "completed"

        await wait_for(completed)
        await wait_for(lambda: _has(fake, 2))
        import asyncio

        await asyncio.sleep(1.0)  # room for a duplicate to show up
        # The restarted hub resumes the dead one's jobs at once: a send it had in flight
        # goes again with the same id and the gateway refuses the copy (409), as the app
        # does. What counts is one SMS per message id.
        texts = list(
            {r.json()["id"]: r.json()["textMessage"]["text"] for r in fake.requests}.values()
        )
        assert len(texts) == 2, texts
        assert texts[0].startswith("Hi Ann, your appointment is on Fri 9 am")
        assert texts[1] == "Thank you, your appointment on Fri 9 am is confirmed."
        assert len({r.json()["id"] for r in fake.requests}) == 2


async def _has(fake: FakeProvider, n: int) -> bool:
    return len(fake.requests) >= n
