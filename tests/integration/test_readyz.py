"""/readyz follows what the hub depends on: 503 naming the database or Redis while it is
down, 200 again once it is back — with no restart of the hub."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.app import build_hub, create_app
from hub.context import Hub
from tests.conftest import free_port, make_settings, port_open, service_missing


class RedisServer:
    """A private ``redis-server`` on its own port, stopped and started again by the test."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        service_missing("redis-server", "the binary is not on PATH")
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def settings_overrides(redis_server: RedisServer) -> dict[str, Any]:
    return {"redis_url": redis_server.url}


async def ready(client: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    started = time.monotonic()
    resp = await client.get("/readyz")
    assert time.monotonic() - started < 3, "readyz must answer quickly, up or down"
    checks: dict[str, str] = resp.json()["checks"]
    return resp.status_code, checks


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_readyz_is_503_naming_redis_while_it_is_down_and_200_once_back(
    hub: Hub, client: httpx.AsyncClient, redis_server: RedisServer
) -> None:
    assert await ready(client) == (200, {"database": "ok", "redis": "ok"})
    probe = hub.redis
    assert probe is not None
    redis_server.kill()
    status, checks = await ready(client)
    assert status == 503
    assert checks["database"] == "ok" and checks["redis"].startswith("error: ")
    redis_server.start()  # the same port

    async def back() -> bool:
        return await ready(client) == (200, {"database": "ok", "redis": "ok"})

    await eventually(back)
    assert hub.redis is probe  # one client for every check, not a pool per request


class Proxy:
    """A TCP proxy to PostgreSQL that the test stops (the database "goes down") and starts
    again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()
        self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxied_hub(pg_database: str, tmp_path: Path) -> AsyncIterator[tuple[Proxy, Hub]]:
    url = sa.engine.make_url(pg_database)
    proxy = Proxy(url.port or 5432)
    await proxy.start()
    hub = build_hub(make_settings(tmp_path, url.set(port=proxy.port).render_as_string(False)))
    yield proxy, hub
    await hub.close()
    if proxy.server is not None:
        await proxy.stop()


async def test_readyz_is_503_while_postgresql_is_unreachable_and_200_once_back(
    proxied_hub: tuple[Proxy, Hub],
) -> None:
    proxy, hub = proxied_hub
    app = create_app(hub=hub, workers=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver.local"
    ) as client:
        assert await ready(client) == (200, {"database": "ok"})
        await proxy.stop()
        status, checks = await ready(client)
        assert status == 503 and checks["database"].startswith("error: ")
        # /metrics still answers: the counters, and the queue gauges as unknown.
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert 'smshub_queue_depth{status="pending"} NaN' in metrics.text
        await proxy.start()

        async def back() -> bool:
            return await ready(client) == (200, {"database": "ok"})

        await eventually(back)
        metrics = await client.get("/metrics")
        assert 'smshub_queue_depth{status="pending"} 0.0' in metrics.text
