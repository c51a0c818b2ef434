"""Liveness and readiness."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from hub.context import Hub
from hub.metrics import render
from hub.schemas import HealthOut


@get("/healthz", tags=["health"], summary="The process is alive")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@get("/readyz", tags=["health"], summary="The database answers; ready for traffic")
async def readyz(hub: NamedDependency[Hub]) -> Response[HealthOut]:
    checks: dict[str, str] = {}
    try:
        await hub.db.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return Response(
        HealthOut(status="ok" if ok else "unavailable", checks=checks),
        status_code=200 if ok else 503,
    )


@get("/metrics", tags=["health"], summary="Prometheus metrics", media_type="text/plain")
async def metrics() -> Response[bytes]:
    return Response(render(), media_type="text/plain; version=0.0.4")


route_handlers = [healthz, readyz, metrics]
