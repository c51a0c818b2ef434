"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.di import NamedDependency
from redis.asyncio import Redis

from hub.context import Hub
from hub.metrics import scrape
from hub.schemas import HealthOut

#: Seconds the readiness check waits for Redis to answer a PING.
REDIS_PING_TIMEOUT_S = 1.0


@get("/healthz", tags=["health"], summary="The process is alive")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@get(
    "/readyz",
    tags=["health"],
    summary="The database (and Redis, in arq mode) answer; stored secrets decrypt",
)
async def readyz(hub: NamedDependency[Hub]) -> Response[HealthOut]:
    checks = {"database": await _check_database(hub)}
    if hub.settings.redis_url:
        checks["redis"] = await _check_redis(hub)
    if hub.box.mismatch:  # a stored secret did not decrypt: another process's key?
        checks["secret_key"] = "error: stored secrets do not decrypt; check SMSHUB_SECRET_KEY"
    ok = all(v == "ok" for v in checks.values())
    return Response(
        HealthOut(status="ok" if ok else "unavailable", checks=checks),
        status_code=200 if ok else 503,
    )


async def _check_database(hub: Hub) -> str:
    try:
        await hub.db.ping()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


async def _check_redis(hub: Hub) -> str:
    """PING on the hub's Redis client (``Hub.redis``, made here on first use if nothing
    made it before; closed with the hub): its pool reconnects once Redis is back."""
    if hub.redis is None:
        hub.redis = Redis.from_url(
            hub.settings.redis_url,
            socket_connect_timeout=REDIS_PING_TIMEOUT_S,
            socket_timeout=REDIS_PING_TIMEOUT_S,
            max_connections=4,
        )
    try:
        async with asyncio.timeout(REDIS_PING_TIMEOUT_S):
            await hub.redis.ping()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


@get("/metrics", tags=["health"], summary="Prometheus metrics", media_type="text/plain")
async def metrics(hub: NamedDependency[Hub]) -> Response[bytes]:
    return Response(await scrape(hub), media_type="text/plain; version=0.0.4")


route_handlers = [healthz, readyz, metrics]
