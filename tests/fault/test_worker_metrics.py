"""``smshub worker`` serves /metrics on SMSHUB_METRICS_PORT (it answers no other HTTP), and
logs JSON lines — arq's included — under SMSHUB_LOG_FORMAT=json."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_TEST_URL, free_port, port_open, service_missing
from tests.fault.server import Server, WorkerProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.redis]

REDIS_DB = 13


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis", "nothing listens on 127.0.0.1:6379")
    from redis.asyncio import Redis

    url = f"{REDIS_TEST_URL.rstrip('/')}/{REDIS_DB}"
    client = Redis.from_url(url)
    await client.flushdb()
    yield url
    await client.flushdb()
    await client.aclose()


async def test_worker_serves_metrics_on_its_port(
    tmp_path: Path, database_url: str, servers: list[Server], redis_url: str
) -> None:
    port = free_port()
    worker = WorkerProcess(
        tmp_path,
        database_url,
        SMSHUB_REDIS_URL=redis_url,
        SMSHUB_METRICS_PORT=str(port),
        SMSHUB_LOG_FORMAT="json",
    )
    servers.append(worker)
    await worker.start()
    url = f"http://127.0.0.1:{port}/metrics"
    text = ""

    async def served() -> bool:
        nonlocal text
        try:
            resp = await client.get(url)
        except httpx.HTTPError:
            return False
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        text = resp.text
        return True

    async with httpx.AsyncClient(timeout=5) as client:
        await wait_for(served, timeout=20)
        assert (await client.get(url.replace("/metrics", "/other"))).status_code == 404
    # The same registry as `serve`'s, the queue gauges read from the worker's database.
    assert "# TYPE smshub_jobs_total counter" in text
    assert 'smshub_queue_depth{status="pending"}' in text
    assert "smshub_flow_runs_total" in text

    async def arq_logged() -> bool:
        # Every line is JSON, arq's included (it logs once it has started).
        lines = [json.loads(line) for line in worker.log.read_text().splitlines() if line]
        assert any(line["msg"].startswith("metrics on http://127.0.0.1:") for line in lines)
        return any(line["logger"].startswith("arq") for line in lines)

    await wait_for(arq_logged, timeout=10)
    # SIGTERM (what systemd and docker send): arq stops, the metrics server closes with
    # it, and the process ends cleanly — exit code 0, no traceback.
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(20) == 0, worker.log.read_text()
    assert "Traceback" not in worker.log.read_text()
    assert not port_open("127.0.0.1", port)
