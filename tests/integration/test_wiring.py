"""What runs is what the wiring lists: a listed job or sink runs, an unlisted one does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.base import InboundEvent
from hub.app import build_hub
from hub.context import Hub, Wiring
from hub.models import Job
from hub.queue.base import enqueue
from hub.services.channels import create_channel
from hub.services.ingest import ingest_events
from hub.store import Unit, fetch_value
from hub.wiring import default_wiring
from tests.conftest import drain, make_settings

CALLS: list[tuple[Any, ...]] = []

#: Job names of this module (beside their functions, as in the hub's own modules).
LISTED_JOB = "test_listed_job"
UNLISTED_JOB = "test_unlisted_job"


async def listed_job(hub: Hub, note: str) -> None:
    """A job the test's wiring lists."""
    CALLS.append(("listed job", note))


async def unlisted_job(hub: Hub, note: str) -> None:
    """A job defined like any other but missing from the wiring."""
    CALLS.append(("unlisted job", note))


def listed_sink(hub: Hub, payloads: list[dict[str, Any]]) -> Unit[None]:
    """A sink the wiring lists after the hub's own (it sees the events in their unit)."""
    count = yield from fetch_value("SELECT count(*) FROM events")
    CALLS.extend(("listed sink", p["type"], count) for p in payloads)


def unlisted_sink(hub: Hub, payloads: list[dict[str, Any]]) -> Unit[None]:
    """A sink nobody listed."""
    CALLS.extend(("unlisted sink", p["type"], None) for p in payloads)
    yield from ()


@pytest.fixture
async def wired_hub(tmp_path: Path, database_url: str) -> AsyncIterator[Hub]:
    base = default_wiring()
    wiring = Wiring(
        jobs={**base.jobs, LISTED_JOB: listed_job},
        sinks=(*base.sinks, listed_sink),
        periodic=base.periodic,
    )
    hub = build_hub(make_settings(tmp_path, database_url), wiring=wiring)
    CALLS.clear()
    yield hub
    await hub.close()


async def test_a_listed_job_runs_and_an_unlisted_one_does_not(wired_hub: Hub) -> None:
    async with wired_hub.db.write() as session:
        await enqueue(session, LISTED_JOB, {"note": "hello"})
        await enqueue(session, UNLISTED_JOB, {"note": "hello"}, max_attempts=1)
    await drain(wired_hub)
    assert CALLS == [("listed job", "hello")]
    async with wired_hub.db.read() as session:
        rows = (await session.execute(sa.select(Job))).scalars().all()
    # The listed job is done (its row deleted); the unlisted one is buried, saying why.
    [left] = [r for r in rows if r.name in (LISTED_JOB, UNLISTED_JOB)]
    assert (left.name, left.status) == (UNLISTED_JOB, "dead")
    assert "no job named 'test_unlisted_job'" in (left.last_error or "")


async def test_listed_sinks_see_events_unlisted_ones_do_not(wired_hub: Hub) -> None:
    row = await create_channel(wired_hub, connector="simulator", name="sim", config={})
    channel = await wired_hub.channels.get(row.id)
    assert channel is not None
    event = InboundEvent(
        type="sms.received", dedupe_key="sim-1", from_number="+15550001234", body="hello"
    )
    await ingest_events(wired_hub, channel, [event])
    assert CALLS == [("listed sink", "sms.received", 1)]


def test_periodic_jobs_must_be_listed_jobs() -> None:
    with pytest.raises(ValueError, match="not listed as jobs: sweep"):
        Wiring(jobs={}, periodic={"sweep": 60.0})
