"""``smshub worker`` serves /metrics on SMSHUB_METRICS_PORT (it answers no other HTTP),
logs JSON lines — arq's included — under SMSHUB_LOG_FORMAT=json, and on SIGTERM lets the
job it is running finish before it exits."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.context import Hub
from hub.services.apikeys import create_api_key
from hub.services.channels import create_channel
from tests.conftest import empty_redis_db, free_port, port_open
from tests.fakes.providers import FakeProvider
from tests.fault.server import Server, WorkerProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.redis]

REDIS_DB = 13


@pytest.fixture
def redis_url() -> Iterator[str]:
    yield from empty_redis_db(REDIS_DB)


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


async def test_sigterm_lets_the_running_send_finish_then_exits_cleanly(
    tmp_path: Path, database_url: str, setup_hub: Hub, servers: list[Server], redis_url: str
) -> None:
    import sqlalchemy as sa

    from hub.models import Message

    async with FakeProvider("mysmsgate", api_key="k") as fake:
        fake.delay_s = 2.0  # the gateway takes its time: SIGTERM lands mid-hand-over
        channel = await create_channel(
            setup_hub,
            connector="mysmsgate",
            name="phone",
            config={"base_url": fake.base_url, "api_key": "k"},
        )
        _row, key = await create_api_key(setup_hub, "drain")
        api = await Server(tmp_path, database_url, SMSHUB_REDIS_URL=redis_url).start()
        servers.append(api)
        async with httpx.AsyncClient() as client:
            resp = await client.post(
                f"{api.url}/api/v1/send",
                json={
                    "to": "+15550001234",
                    "message": "Your table is ready",
                    "channel_id": channel.id,
                },
                headers={"Authorization": f"Bearer {key}"},
            )
        assert resp.status_code == 202, resp.text
        worker = await WorkerProcess(tmp_path, database_url, SMSHUB_REDIS_URL=redis_url).start()
        servers.append(worker)

        async def gateway_called() -> bool:
            return len(fake.requests) == 1

        await wait_for(gateway_called, timeout=20)
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGTERM)  # the gateway has not answered yet
        proc = worker.proc

        async def exited() -> bool:  # (the fake gateway answers on this loop: no blocking wait)
            return proc.poll() is not None

        await wait_for(exited, timeout=30)
        assert proc.returncode == 0, worker.log.read_text()
        async with setup_hub.db.read() as session:
            status = (
                await session.execute(
                    sa.select(Message.status).where(Message.id == resp.json()["id"])  # type: ignore[arg-type]
                )
            ).scalar_one()
        # The hand-over finished before the process left: not "sending" until a lease
        # ends and a second try (which a gateway without dedupe would turn into a 2nd SMS).
        assert status == "accepted", worker.log.read_text()
        assert len(fake.requests) == 1
