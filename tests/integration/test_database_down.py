"""A database that cannot be reached is a 503 with Retry-After, never a 500: a gateway
retries a webhook answered 503 later (its retry is the safety net), and clients back off."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy.exc

from hub.api.errors import RETRY_AFTER_S, is_unavailable
from hub.app import build_hub, create_app
from tests.conftest import free_port, make_settings


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # PostgreSQL "down": nothing listens on this port.
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    hub = build_hub(make_settings(tmp_path, url))
    app = create_app(hub=hub, workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c
    await hub.close()


def _assert_unavailable(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == str(RETRY_AFTER_S)
    error = resp.json()["error"]
    assert error["code"] == "database_unavailable"
    assert "ConnectionRefusedError" in error["message"]


async def test_a_gateway_webhook_is_answered_503_with_retry_after(
    unreachable: httpx.AsyncClient,
) -> None:
    body = {"from": "+15551230000", "to": "+15550100000", "message": "JOIN"}
    resp = await unreachable.post("/webhooks/ch_any/incoming?token=t", json=body)
    _assert_unavailable(resp)


async def test_the_api_is_answered_503_and_readyz_says_why(
    unreachable: httpx.AsyncClient,
) -> None:
    headers = {"Authorization": "Bearer shk_not_checked_without_a_database"}
    _assert_unavailable(await unreachable.get("/api/v1/messages", headers=headers))
    ready = await unreachable.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "error: ConnectionRefusedError"


def test_what_counts_as_unavailable() -> None:
    locked = sqlite3.OperationalError("database is locked")
    assert is_unavailable(locked)
    assert is_unavailable(ConnectionResetError())
    assert is_unavailable(sqlalchemy.exc.OperationalError("SELECT 1", {}, locked))
    dropped = sqlalchemy.exc.DBAPIError("SELECT 1", {}, ValueError(), connection_invalidated=True)
    assert is_unavailable(dropped)
    # A wrong statement or a broken constraint is the hub's bug or the request's: not a 503.
    assert not is_unavailable(sqlalchemy.exc.ProgrammingError("SELEC 1", {}, ValueError()))
    assert not is_unavailable(sqlalchemy.exc.IntegrityError("INSERT", {}, ValueError()))
    assert not is_unavailable(ValueError("a bug"))
