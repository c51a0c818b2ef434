"""The job registry: name → async function taking the hub and keyword arguments (ids)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from hub.context import Hub

JobFunc = Callable[..., Awaitable[None]]

#: Every job function by name; filled by the ``job`` decorator at import time.
JOBS: dict[str, JobFunc] = {}


#: Jobs every worker process queues on a fixed interval (seconds), e.g. recovery sweeps.
PERIODIC: dict[str, float] = {}


def periodic(name: str, every_s: float) -> Callable[[JobFunc], JobFunc]:
    """Register a job that runs about every ``every_s`` seconds (and at worker start)."""

    def register(func: JobFunc) -> JobFunc:
        PERIODIC[name] = every_s
        return job(name)(func)

    return register


def job(name: str) -> Callable[[JobFunc], JobFunc]:
    """Register a job function under ``name``."""

    def register(func: JobFunc) -> JobFunc:
        if name in JOBS and JOBS[name] is not func:
            raise RuntimeError(f"job {name!r} registered twice")
        JOBS[name] = func
        return func

    return register


async def run_job(hub: Hub, name: str, args: dict[str, Any]) -> None:
    """Run one job by name (raises KeyError for an unknown job)."""
    load_all()
    await JOBS[name](hub, **args)


def load_all() -> None:
    """Import the modules that define jobs so the registry is complete."""
    import hub.delivery.jobs
    import hub.services.events
    import hub.services.flows
    import hub.services.ingest
    import hub.services.sending  # noqa: F401
