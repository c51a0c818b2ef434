"""Prometheus metrics: what an operator graphs and alerts on."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

#: The hub's own registry (not the global one), so several apps in one process (tests)
#: do not collide; one process serves one hub.
REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOKS = Counter(
    "smshub_webhooks_total",
    "Gateway webhook requests by connector and HTTP status answered.",
    ["connector", "status"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "smshub_gateway_events_total",
    "Gateway events by type and outcome (stored or duplicate).",
    ["type", "outcome"],
    registry=REGISTRY,
)
SENDS = Counter(
    "smshub_sends_total",
    "Hand-overs of SMS to gateways by connector and outcome (accepted, retry, failed).",
    ["connector", "outcome"],
    registry=REGISTRY,
)
JOBS = Counter(
    "smshub_jobs_total",
    "Background jobs by name and outcome (done, retry, dead).",
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


def render() -> bytes:
    """The text exposition format."""
    return generate_latest(REGISTRY)
