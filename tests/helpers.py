"""Helpers shared by integration tests: gateway fixtures as channels, row counts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import SQLModel

from hub.context import Hub
from hub.models import Contact, Event, Job, Message, MessageStatusChange
from hub.queue.arq_queue import ArqQueue, make_worker

FIXTURES = Path(__file__).parent / "fixtures"
GATEWAY_DIRS = ("mysmsgate", "smsgate", "twilio", "vonage")
FIXTURE_PUBLIC_URL = "https://hub.example.com"


@dataclass
class GatewayFixture:
    """One recorded gateway webhook (``tests/fixtures/<connector>/<name>.json``)."""

    connector: str
    name: str
    secret: str | None
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    expect: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.connector}/{self.name}"

    def frozen_at(self) -> datetime:
        """The moment the fixture was signed (the clock must stand there to verify it)."""
        stamp = self.headers.get("X-Timestamp")
        if stamp is None and self.headers.get("Content-Type", "").startswith("application/json"):
            value = json.loads(self.body).get("timestamp")
            stamp = str(value) if isinstance(value, int) else None
        return datetime.fromtimestamp(int(stamp), UTC) if stamp else datetime.now(UTC)

    def channel_config(self) -> dict[str, Any]:
        """A channel config of this connector that verifies the fixture."""
        if self.connector == "mysmsgate":
            return {"api_key": "test-key"}
        if self.connector == "smsgate":
            return {"mode": "cloud", "username": "user", "password": "pass"}
        if self.connector == "twilio":
            return {
                "account_sid": "AC" + "0" * 32,
                "auth_token": self.secret,
                "from_number": "+15559876543",
            }
        return {"api_key": "abcd1234", "api_secret": "secret", "signature_method": "none"}


def load_gateway_fixtures() -> list[GatewayFixture]:
    """Every gateway fixture, sorted."""
    found = []
    for directory in GATEWAY_DIRS:
        for path in sorted((FIXTURES / directory).glob("*.json")):
            raw = json.loads(path.read_text())
            url = urlsplit(raw["request"]["url"])
            found.append(
                GatewayFixture(
                    connector=directory,
                    name=path.stem,
                    secret=raw["secret"],
                    path=url.path,
                    query=url.query,
                    headers=dict(raw["request"]["headers"]),
                    body=raw["request"]["body"].encode(),
                    expect=raw["expect"],
                )
            )
    return found


async def count(hub: Hub, model: type[SQLModel], *where: Any) -> int:
    """Rows of a table (optionally filtered)."""
    stmt = sa.select(sa.func.count()).select_from(model)
    for clause in where:
        stmt = stmt.where(clause)
    async with hub.db.read() as session:
        return int((await session.execute(stmt)).scalar() or 0)


async def stored_rows(hub: Hub) -> dict[str, int]:
    """Counts of every table a webhook could write to."""
    return {
        "events": await count(hub, Event),
        "messages": await count(hub, Message),
        "contacts": await count(hub, Contact),
        "jobs": await count(hub, Job),
        "status_changes": await count(hub, MessageStatusChange),
    }


class SimPhone:
    """Posts signed simulator webhooks to one simulator channel, as a phone would."""

    def __init__(self, client: Any, channel_id: str, secret: str, number: str) -> None:
        self.client = client
        self.channel_id = channel_id
        self.secret = secret
        self.number = number
        self._seq = 0

    async def post(self, event: str, **fields: Any) -> Any:
        """Post one event (``event_body`` fields); returns the HTTP response."""
        from connectors.simulator import event_body, sign_request

        self._seq += 1
        fields.setdefault(
            "event_id", f"sim-{self.channel_id}-{self._seq}-{datetime.now(UTC).timestamp()}"
        )
        fields.setdefault("to_number", self.number)
        body = event_body(event, **fields)
        headers = {
            "content-type": "application/json",
            **sign_request(self.secret, body, datetime.now(UTC)),
        }
        resp = await self.client.post(f"/webhooks/{self.channel_id}", content=body, headers=headers)
        assert resp.status_code == 200, resp.text
        return resp

    async def says(self, sender: str, text: str, **fields: Any) -> Any:
        """An inbound SMS from ``sender``."""
        return await self.post("sms.received", from_number=sender, text=text, **fields)


async def fast_forward(hub: Hub, *names: str) -> int:
    """Make every pending (future) job due now — timers fire without waiting."""
    import sqlalchemy as sa
    from sqlmodel import col

    stmt = sa.update(Job).where(col(Job.status) == "pending")
    if names:
        stmt = stmt.where(col(Job.name).in_(names))
    async with hub.db.write() as session:
        result = await session.execute(stmt.values(run_at=datetime.now(UTC) - timedelta(seconds=1)))
        return int(result.rowcount)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def running_queue(hub: Hub) -> AsyncIterator[Hub]:
    """The hub's queue running as in a live deployment until the block ends.

    Inline: the process's own workers. arq: the pusher, plus an arq worker on this
    event loop doing what ``smshub worker`` does (the fault tests run real worker
    processes)."""
    await hub.queue.start()
    worker, task = None, None
    if isinstance(hub.queue, ArqQueue):
        worker = make_worker(hub, burst=False)
        task = asyncio.create_task(worker.main(), name="test-arq-worker")
    try:
        yield hub
    finally:
        if worker is not None and task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for job in worker.tasks.values():  # what a killed worker leaves: leases
                job.cancel()
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            if worker._pool is not None:
                await worker._pool.aclose()
        await hub.queue.stop()
