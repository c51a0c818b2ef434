"""What the load fault tests share: a keyword flow on an SMS Gateway for Android channel,
signed ``sms:received`` webhooks, a load client that posts each one until some hub
process acknowledges it (as a gateway retries), and tallies of what the fakes got.

Every webhook ``n`` comes from its own phone, :func:`sender` ``(n)``: "one run per
event" is "one run per phone", and a JOIN's welcome is the one SMS sent to that phone.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from connectors import get_connector
from connectors.base import WebhookRequest
from hub.context import Hub
from hub.models import Event, FlowRun, Job
from hub.services.channels import create_channel
from hub.services.flows import import_flow
from tests.conftest import free_port, port_open, service_missing
from tests.fakes.providers import FakeProvider
from tests.fakes.sink import Sink
from tests.fault.server import Server

SIGNING_KEY = "smsgate-signing-key-for-tests"
#: Phones of the gateway the load arrives on (webhook ``n`` on phone ``n % PHONES``: 7
#: is prime to the 4 texts, so the JOINs' replies leave all of them).
PHONES = 7
#: Environment every hub process of a load test gets: the flow posts to a local sink, and
#: thousands of replies leave the phones — no per-SIM rate in the way, and no human-like
#: pause between two sends of a SIM (the pacing tests cover both).
LOAD_ENV = {
    "SMSHUB_ALLOW_PRIVATE_DESTINATIONS": "true",
    "SMSHUB_DEVICE_RATE_LIMIT_PER_MIN": "1000000",
    "SMSHUB_SEND_SPACING_MAX_S": "0",
}


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


def joins(total: int) -> set[str]:
    """The phones whose SMS is a JOIN: each must get exactly one welcome."""
    return {sender(n) for n in range(total) if text(n).split()[0].upper() == "JOIN"}


def signed_webhook(n: int) -> tuple[bytes, dict[str, str]]:
    """The n-th ``sms:received`` webhook, signed now as the app signs it."""
    body = json.dumps(
        {
            "deviceId": f"phone-{n % PHONES}",
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


class Load:
    """Posts every webhook until a hub process acknowledges it, as a gateway retries.

    Webhook ``n`` goes first to server ``n % len(servers)``; a failed attempt (no answer,
    a 5xx) is tried again on the next server. ``statuses`` counts every answer (0: no
    answer), ``reached`` is set when that many webhooks were acknowledged."""

    def __init__(
        self,
        servers: Sequence[Server],
        channel_id: str,
        total: int,
        *,
        marks: Sequence[float] = (),
        concurrency: int = 32,
    ) -> None:
        self.servers = list(servers)
        self.channel_id = channel_id
        self.total = total
        self.acked = 0
        self.statuses: Counter[int] = Counter()
        #: 503 answers without a Retry-After header.
        self.no_retry_after = 0
        #: Attempts that connected but got no answer (also counted as status 0).
        self.cut_mid_request = 0
        self.reached = {int(total * share): asyncio.Event() for share in marks}
        self._gate = asyncio.Semaphore(concurrency)

    @property
    def refused(self) -> int:
        """Attempts that were not acknowledged."""
        return sum(count for status, count in self.statuses.items() if status != 200)

    async def post(self, client: aiohttp.ClientSession, n: int) -> None:
        attempt = 0
        while True:
            server = self.servers[(n + attempt) % len(self.servers)]
            body, headers = signed_webhook(n)
            retry_after: str | None = None
            try:
                url = f"{server.url}/webhooks/{self.channel_id}"
                async with client.post(url, data=body, headers=headers) as resp:
                    status, retry_after = resp.status, resp.headers.get("Retry-After")
                    await resp.read()
            except aiohttp.ClientConnectorError:  # nothing listens (any more)
                status = 0
            except (aiohttp.ClientError, TimeoutError):  # the process died under it
                status = 0
                self.cut_mid_request += 1
            self.statuses[status] += 1
            if status == 200:
                self.acked += 1
                if self.acked in self.reached:
                    self.reached[self.acked].set()
                return
            if status == 503 and not retry_after:
                self.no_retry_after += 1
            attempt += 1
            await asyncio.sleep(0.1)

    async def run(self, timeout: float) -> None:
        """Post all webhooks, at most ``concurrency`` at a time, within ``timeout`` seconds."""

        async def one(client: aiohttp.ClientSession, n: int) -> None:
            async with self._gate:
                await self.post(client, n)

        client_timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=client_timeout) as client:
            work = asyncio.gather(*(one(client, n) for n in range(self.total)))
            await asyncio.wait_for(work, timeout)


class Tally:
    """What the fake gateway and the zap sink got so far, read incrementally (thousands of
    recorded requests are not parsed again on every poll)."""

    def __init__(self, gateway: FakeProvider, zap: Sink) -> None:
        self.gateway = gateway
        self.zap = zap
        self._sent: set[tuple[str, str]] = set()
        self._gateway_seen = 0
        self.hooked: set[str] = set()
        self._zap_seen = 0

    def update(self) -> None:
        for request in self.gateway.requests[self._gateway_seen :]:
            data = request.json()
            self._sent.add((data["id"], data["phoneNumbers"][0]))
        self._gateway_seen = len(self.gateway.requests)
        for received in self.zap.requests[self._zap_seen :]:
            if received.status == 200:
                self.hooked.add(received.json()["from"])
        self._zap_seen = len(self.zap.requests)

    def replies(self) -> Counter[str]:
        """Distinct SMS (the hub's message ids) the gateway was asked to send, per phone:
        a resend of the same SMS after a crash is refused by the gateway as a copy."""
        self.update()
        return Counter(phone for _, phone in self._sent)

    def complete(self, total: int) -> bool:
        """Every event reached the hook and every JOIN got its reply."""
        self.update()
        return len(self.hooked) == total and set(self.replies()) == joins(total)


async def runs_per_phone(hub: Hub) -> Counter[str | None]:
    """Flow runs per phone, and how many of them completed (None key: not completed)."""
    async with hub.db.read() as session:
        rows = (await session.execute(sa.select(FlowRun.contact_phone, FlowRun.status))).all()
    runs: Counter[str | None] = Counter(phone for phone, _ in rows)
    runs[None] = sum(1 for _, status in rows if status != "completed")
    return runs


async def events_stored(hub: Hub, channel_id: str) -> Counter[str]:
    """Stored ``sms.received`` events per dedupe key on the channel."""
    async with hub.db.read() as session:
        keys = (
            await session.execute(
                sa.select(Event.dedupe_key).where(
                    Event.channel_id == channel_id, Event.type == "sms.received"
                )
            )
        ).scalars()
        return Counter(keys)


def tracebacks(*servers: Server) -> int:
    """How often the processes' logs say "Traceback"."""
    return sum(server.log.read_text(errors="replace").count("Traceback") for server in servers)


async def backlog(hub: Hub, tally: Tally, total: int) -> str:
    """What is still missing, for the message of a test that timed out waiting."""
    async with hub.db.read() as session:
        jobs = (
            await session.execute(
                sa.select(
                    Job.name, Job.status, sa.func.count(), sa.func.max(Job.last_error)
                ).group_by(Job.name, Job.status)
            )
        ).all()
    replies = tally.replies()
    missing, extra = joins(total) - set(replies), set(replies) - joins(total)
    return (
        f"hooked {len(tally.hooked)} of {total}, {len(missing)} welcomes missing, "
        f"{len(extra)} SMS to other phones ({sorted(extra)[:5]}); "
        f"jobs left: {[tuple(row) for row in jobs]}"
    )


class RedisServer:
    """A private ``redis-server`` on a free port, without persistence: :meth:`kill` loses
    everything it held, and :meth:`start` again gives an empty one on the same port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def spawn(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server", "no redis-server binary on PATH")
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.proc = subprocess.Popen(
            [str(binary), *args, "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self) -> RedisServer:
        """Start it and wait until it listens."""
        self.spawn()
        for _ in range(100):
            if port_open("127.0.0.1", self.port):
                return self
            await asyncio.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: no save, nothing left."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


async def jobs_left(hub: Hub) -> int:
    """Job rows left besides the periodic ones: 0 once every job ran and was deleted (a
    row stuck ``running`` — a lease nobody takes over — counts)."""
    async with hub.db.read() as session:
        stmt = sa.select(sa.func.count()).where(Job.name.not_in(list(hub.wiring.periodic)))  # type: ignore[attr-defined]
        return int((await session.execute(stmt)).scalar_one())
