"""Prometheus metrics: what an operator graphs and alerts on.

Counters and histograms are moved by the code paths they describe, one ``labels()``
lookup per event, no database work. The queue gauges are the exception: they describe
the ``jobs`` table, so :func:`scrape` reads them with one grouped SELECT (on the
``(status, run_at)`` index) just before rendering. Every counter is this process's own;
the queue gauges are the whole database's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from hub.store import as_datetime, fetch_all

if TYPE_CHECKING:
    from hub.context import Hub

log = logging.getLogger("smshub.metrics")

#: The hub's own registry (not the global one), so several apps in one process (tests)
#: do not collide; one process serves one hub.
REGISTRY = CollectorRegistry(auto_describe=True)

#: The ``connector`` label of a webhook for a channel that does not exist.
UNKNOWN_CONNECTOR = "unknown"

WEBHOOKS = Counter(
    "smshub_webhooks_total",
    "Gateway webhook requests by connector and HTTP status answered (5xx: failed on our "
    "side, e.g. the database unavailable).",
    ["connector", "status"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "smshub_gateway_events_total",
    "Gateway events by type and outcome (stored or duplicate).",
    ["type", "outcome"],
    registry=REGISTRY,
)
PUBLIC_EVENTS = Counter(
    "smshub_events_total",
    "Public events handed to the sinks (flows, webhook endpoints), by type.",
    ["type"],
    registry=REGISTRY,
)
SENDS = Counter(
    "smshub_sends_total",
    "Hand-overs of SMS to gateways by connector and outcome (accepted, retry, failed).",
    ["connector", "outcome"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "smshub_deliveries_total",
    "Webhook delivery attempts by outcome (succeeded, retry, failed = dead letter, "
    "cancelled while on the wire).",
    ["outcome"],
    registry=REGISTRY,
)
OPTOUTS = Counter(
    "smshub_optouts_total",
    "Compliance keywords answered, by action (stop, start, help).",
    ["action"],
    registry=REGISTRY,
)
FLOW_RUNS = Counter(
    "smshub_flow_runs_total",
    "Flow runs that ended, by final status (completed, failed, cancelled).",
    ["status"],
    registry=REGISTRY,
)
FLOW_STEP_SECONDS = Histogram(
    "smshub_flow_step_seconds",
    "Time a flow step's handler took, by node type.",
    ["node_type"],
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
)
JOBS = Counter(
    "smshub_jobs_total",
    "Background jobs by name and outcome (done, retry, error).",
    ["name", "outcome"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "smshub_job_seconds",
    "Time a background job ran.",
    ["name"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60),
)
QUEUE_DEPTH = Gauge(
    "smshub_queue_depth",
    "Rows in the jobs table by status (pending, running, dead), read at scrape time.",
    ["status"],
    registry=REGISTRY,
)
QUEUE_OLDEST_DUE = Gauge(
    "smshub_queue_oldest_due_seconds",
    "How long the oldest due pending job has been waiting (0: none is due).",
    registry=REGISTRY,
)
JOBS_DEAD = Gauge(
    "smshub_jobs_dead",
    "Jobs that used up their attempts (status dead), read at scrape time.",
    registry=REGISTRY,
)

#: Job statuses always exported (0 when there is none).
JOB_STATUSES = ("pending", "running", "dead")

_QUEUE_SQL = (
    "SELECT status, COUNT(*), MIN(CASE WHEN status = 'pending' AND run_at <= ? "
    "THEN run_at END) FROM jobs GROUP BY status"
)


class FlowMetrics:
    """The flow engine's observer (``flows.ports.RunObserver``): steps and ended runs."""

    def step_ran(self, node_type: str, seconds: float) -> None:
        """A step of ``node_type`` ran for ``seconds``."""
        FLOW_STEP_SECONDS.labels(node_type).observe(seconds)

    def run_ended(self, status: str) -> None:
        """A run's final status was saved."""
        FLOW_RUNS.labels(status).inc()


def set_queue_gauges(rows: list[tuple[Any, ...]], now: datetime) -> None:
    """The queue gauges from ``(status, count, oldest due run_at)`` rows."""
    counts = dict.fromkeys(JOB_STATUSES, 0)
    oldest: datetime | None = None
    for status, count, due in rows:
        counts[str(status)] = int(count)
        if due is not None:
            oldest = as_datetime(due)
    for status, count in counts.items():
        QUEUE_DEPTH.labels(status).set(count)
    JOBS_DEAD.set(counts["dead"])
    QUEUE_OLDEST_DUE.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


def _queue_unknown() -> None:
    for status in JOB_STATUSES:
        QUEUE_DEPTH.labels(status).set(math.nan)
    JOBS_DEAD.set(math.nan)
    QUEUE_OLDEST_DUE.set(math.nan)


async def scrape(hub: Hub) -> bytes:
    """Read the queue gauges (one SELECT), then render every metric. The gauges are NaN
    while the database cannot be read; the counters are rendered all the same."""
    now = hub.clock()
    try:
        rows = await hub.store.read(fetch_all(_QUEUE_SQL, (now,)))
    except Exception as exc:  # /metrics must answer while the database is away
        log.warning("queue metrics not read: %s", type(exc).__name__)
        _queue_unknown()
    else:
        set_queue_gauges(rows, now)
    return render()


def render() -> bytes:
    """The text exposition format."""
    return generate_latest(REGISTRY)


#: Seconds a closing metrics server waits for a scrape in progress.
SERVER_SHUTDOWN_S = 2.0


@asynccontextmanager
async def metrics_server(hub: Hub, host: str, port: int) -> AsyncIterator[None]:
    """Serve ``GET /metrics`` (what :func:`scrape` gives) on ``host:port`` on this loop
    while the block runs (``smshub worker``, which serves no HTTP otherwise)."""
    from aiohttp import web

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=await scrape(hub), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=1024)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SERVER_SHUTDOWN_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=16).start()
        log.info("metrics on http://%s:%s/metrics", host, port)
        yield
    finally:
        await runner.cleanup()
