"""Helpers shared by integration tests: gateway fixtures as channels, row counts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import SQLModel

from hub.context import Hub
from hub.models import Contact, Event, Job, Message, MessageStatusChange

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
