"""The inline queue's in-memory hand-over is bounded: past a few jobs per worker, new jobs
wait in the table (pending, claimed in bulk as workers free up), and every job runs once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.app import build_hub
from hub.context import Hub, Wiring
from hub.queue.base import enqueue_job
from hub.queue.inline import READY_PER_WORKER, InlineQueue
from hub.store import fetch_all
from hub.wiring import default_wiring
from tests.conftest import make_settings
from tests.fakes.sink import wait_until

#: The in-memory hand-over and the table as overflow are the inline engine's; arq has its own
#: tests (test_arq_queue.py).
pytestmark = pytest.mark.engine("inline")

SLOW_JOB = "test_slow_job"
WORKERS = 2
RAN: Counter[int] = Counter()
GATE: dict[str, asyncio.Event] = {}


async def slow_job(hub: Hub, n: int) -> None:
    """Waits for the test's gate, then counts itself."""
    await GATE["open"].wait()
    RAN[n] += 1


@pytest.fixture
async def queued_hub(tmp_path: Path, database_url: str) -> AsyncIterator[Hub]:
    base = default_wiring()
    wiring = Wiring(jobs={**base.jobs, SLOW_JOB: slow_job}, sinks=base.sinks, periodic=())
    hub = build_hub(make_settings(tmp_path, database_url, workers=WORKERS), wiring=wiring)
    RAN.clear()
    GATE["open"] = asyncio.Event()
    yield hub
    GATE["open"].set()
    await hub.queue.stop()
    await hub.close()


async def _statuses(hub: Hub) -> Counter[str]:
    rows = await hub.store.read(fetch_all("SELECT status FROM jobs WHERE name = ?", (SLOW_JOB,)))
    return Counter(str(r[0]) for r in rows)


async def test_a_backlog_waits_in_the_table_not_in_memory(queued_hub: Hub) -> None:
    hub = queued_hub
    queue = hub.queue
    assert isinstance(queue, InlineQueue)
    await queue.start()
    cap = WORKERS * READY_PER_WORKER
    total = cap + WORKERS + 30
    handed = 0
    for n in range(total):  # one unit each, as a burst of webhooks would write them
        lease = queue.lease()
        handed += lease is not None
        await hub.store.write(enqueue_job(SLOW_JOB, {"n": n}, lease=lease))
    # Two run, the next `cap` wait in memory; the rest were written pending.
    assert handed == cap + WORKERS
    assert queue.lease() is None
    statuses = await _statuses(hub)
    assert statuses == {"running": cap + WORKERS, "pending": total - cap - WORKERS}

    GATE["open"].set()
    await wait_until(lambda: sum(RAN.values()) == total, timeout=20)
    await queue.drain(timeout=10)
    assert Counter(range(total)) == RAN  # every job once
    assert await _statuses(hub) == Counter()  # and every row gone
    assert queue.lease() is not None  # room again: hand-over in memory resumes
