"""SIGKILL the server three times under a 5,000-webhook keyword-flow load: every
acknowledged event has its run, every JOIN gets its one reply, nothing is lost.

The gateway is SMS Gateway for Android, which dedupes on the id the hub sends: a send
the kill interrupted mid-hand-over is safely sent again and the gateway answers 409 for
the copy (with a gateway that cannot dedupe, the hub fails such a message as
``send_interrupted`` instead — tests/fault/test_crash_send.py shows both).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from connectors import get_connector
from connectors.base import WebhookRequest
from hub.context import Hub
from hub.models import FlowRun
from hub.services.channels import create_channel
from hub.services.flows import import_flow
from tests.fakes.providers import FakeProvider
from tests.fakes.sink import Sink
from tests.fault.server import Server, wait_for

pytestmark = pytest.mark.slow

SIGNING_KEY = "smsgate-signing-key-for-tests"
#: Webhooks of the load: the issue's 5,000 on the embedded default; 2,000 on PostgreSQL,
#: where the same three kills take twice as long and CI has ten minutes per configuration.
WEBHOOKS = {"sqlite": 5_000, "postgresql": 2_000}
CONCURRENCY = 32
#: Shares of the load acknowledged when the server is killed (and restarted).
KILL_AT = (0.24, 0.52, 0.8)


def webhooks(database_url: str) -> int:
    return WEBHOOKS["sqlite" if database_url.startswith("sqlite") else "postgresql"]


def keyword_flow(hook_url: str) -> dict[str, Any]:
    """Every SMS to a Zapier-like hook; a first word JOIN gets the welcome reply."""
    return {
        "name": "JOIN under load",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
            {
                "id": "zap",
                "type": "http.request",
                "config": {
                    "url": hook_url,
                    "body": {"from": "{{ trigger.data.from }}", "text": "{{ trigger.data.body }}"},
                },
            },
            {
                "id": "join",
                "type": "logic.condition",
                "config": {
                    "value": "{{ trigger.data.body }}",
                    "operator": "matches",
                    "operand": r"^join\b",
                },
            },
            {
                "id": "welcome",
                "type": "sms.reply",
                "config": {"text": "Welcome! Reply STOP to opt out."},
            },
        ],
        "edges": [
            {"from": "start", "to": "zap"},
            {"from": "zap", "port": "success", "to": "join"},
            {"from": "join", "port": "true", "to": "welcome"},
        ],
    }


def sender(n: int) -> str:
    return f"+1555{n:07d}"


def text(n: int) -> str:
    return ["JOIN news", "hello there", "join the club", "JOINED the club"][n % 4]


def signed_webhook(n: int) -> tuple[bytes, dict[str, str]]:
    """The n-th ``sms:received`` webhook, signed now as the app signs it."""
    body = json.dumps(
        {
            "deviceId": "phone-1",
            "event": "sms:received",
            "id": f"load-{n}",
            "payload": {
                "messageId": f"m-{n}",
                "message": text(n),
                "sender": sender(n),
                "recipient": "+15559876543",
                "simNumber": 1,
            },
            "webhookId": "wh-1",
        }
    ).encode()
    connector = get_connector("smsgate")
    config = connector.parse_config({"username": "u", "password": "p"})
    request = WebhookRequest("POST", "http://x/", "", {"content-type": "application/json"}, body)
    signed = connector.sign(config, SIGNING_KEY, request, datetime.now(UTC))  # type: ignore[attr-defined]
    return body, dict(signed.headers)


class Load:
    """Posts every webhook until the hub acknowledges it, as a gateway retries."""

    def __init__(self, server: Server, channel_id: str, total: int) -> None:
        self.server = server
        self.channel_id = channel_id
        self.acked = 0
        self.refused = 0
        #: Set when that many webhooks have been acknowledged (the kill marks).
        self.reached = {int(total * share): asyncio.Event() for share in KILL_AT}

    async def post(self, client: aiohttp.ClientSession, n: int) -> None:
        url = f"{self.server.url}/webhooks/{self.channel_id}"
        while True:
            body, headers = signed_webhook(n)
            try:
                async with client.post(url, data=body, headers=headers) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            if status == 200:
                self.acked += 1
                if self.acked in self.reached:
                    self.reached[self.acked].set()
                return
            self.refused += 1
            await asyncio.sleep(0.05)


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


async def phone_with_keyword_flow(setup_hub: Hub, gateway: FakeProvider, zap: Sink) -> Any:
    """An SMS Gateway for Android channel on ``gateway`` and the published keyword flow
    posting to ``zap``: what the load tests send webhooks to."""
    channel = await create_channel(
        setup_hub,
        connector="smsgate",
        name="phone",
        config={"mode": "private", "base_url": gateway.base_url, "username": "u", "password": "p"},
        webhook_secret=SIGNING_KEY,
    )
    await import_flow(setup_hub, keyword_flow(zap.url), publish_it=True)
    return channel


async def test_three_sigkills_under_load_lose_and_repeat_nothing(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server]
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as gateway, Sink("/zap") as zap:
        channel = await phone_with_keyword_flow(setup_hub, gateway, zap)
        server = Server(
            tmp_path,
            database_url,
            SMSHUB_ALLOW_PRIVATE_DESTINATIONS="true",
            SMSHUB_DEVICE_RATE_LIMIT_PER_MIN="1000000",
            # On PostgreSQL the restarted server waits out the dead one's leases (only the
            # embedded default knows it was alone): 8 s instead of 60 keeps the three
            # kills from costing three minutes of the suite.
            SMSHUB_JOB_LEASE_S="8",
        )
        servers.append(server)
        await server.start()
        total = webhooks(database_url)
        load = Load(server, channel.id, total)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(client: aiohttp.ClientSession, n: int) -> None:
            async with gate:
                await load.post(client, n)

        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as client:
            killer = asyncio.create_task(_killer(load, server))
            await asyncio.wait_for(asyncio.gather(*(one(client, n) for n in range(total))), 240)
            assert await asyncio.wait_for(killer, 60) == len(KILL_AT)

        joins = {sender(n) for n in range(total) if text(n).split()[0].upper() == "JOIN"}

        def accepted_replies() -> Counter[str]:
            """Distinct SMS (the hub's message ids) the gateway was asked to send, per phone."""
            sent = {(r.json()["id"], r.json()["phoneNumbers"][0]) for r in gateway.requests}
            return Counter(phone for _, phone in sent)

        async def everything_arrived() -> bool:
            hooked = {r.json()["from"] for r in zap.requests if r.status == 200}
            return len(hooked) == total and set(accepted_replies()) == joins

        await wait_for(everything_arrived, timeout=180)
    assert load.acked == total
    # Every JOIN got exactly one welcome; a resend after a kill was refused as a copy.
    assert set(accepted_replies()) == joins and max(accepted_replies().values()) == 1
    async with setup_hub.db.read() as session:
        runs = (await session.execute(sa.select(sa.func.count()).select_from(FlowRun))).scalar()
        done = (
            await session.execute(
                sa.select(sa.func.count()).select_from(FlowRun).where(FlowRun.status == "completed")
            )
        ).scalar()
    assert runs == total and done == total  # one run per acknowledged event, all ended
