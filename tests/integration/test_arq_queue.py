"""The arq + Redis queue engine: the same behaviour as the inline one, plus its own
guarantees (a double push runs once, a push lost in Redis is swept and run).

The scenario tests below are the inline suite's own, imported and run again here with
``SMSHUB_REDIS_URL`` set (this module's ``settings_overrides``), on both databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import Job, Message
from hub.queue.arq_queue import ArqQueue, arq_job_id, redis_settings
from tests.conftest import REDIS_TEST_URL, drain, port_open, service_missing
from tests.helpers import count

# The inline suite's scenarios, run again on arq (fixtures come along with them).
from tests.integration.test_flows_hub import (
    phone,
    test_appointment_silence_reminds_then_times_out,
    test_appointment_yes_goes_to_confirmed,
    test_join_keyword_replies_tags_and_announces,
    test_replay_from_failed_step_does_not_resend_earlier_sms,
)
from tests.integration.test_sending import (
    sim,
    test_device_rate_limit_holds_messages_and_never_drops_them,
    test_each_status_transition_is_one_public_event,
    test_report_before_provider_id_is_matched_later,
    test_send_is_queued_sent_and_delivered_with_history,
    test_stop_confirms_once_blocks_sends_help_answers_start_lifts,
)

pytestmark = pytest.mark.redis

#: A Redis database number of its own, emptied before and after each test.
REDIS_DB = 9


@pytest.fixture
def redis_url() -> Iterator[str]:
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis", "nothing listens on 127.0.0.1:6379")
    url = f"{REDIS_TEST_URL.rstrip('/')}/{REDIS_DB}"
    yield url


@pytest.fixture
async def _clean_redis(redis_url: str) -> AsyncIterator[None]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def settings_overrides(redis_url: str, _clean_redis: None) -> dict[str, Any]:
    return {"redis_url": redis_url}


@pytest.fixture
def started(hub: Hub) -> ArqQueue:
    """The hub's arq queue, pushed by hand (no background pusher racing the test)."""
    queue = hub.queue
    assert isinstance(queue, ArqQueue)
    return queue


async def _job_rows(hub: Hub) -> list[Job]:
    async with hub.db.read() as session:
        return list((await session.execute(sa.select(Job))).scalars())


async def test_a_job_pushed_twice_runs_once(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], started: ArqQueue, sim: str
) -> None:
    resp = await client.post(
        "/api/v1/send", json={"to": "+15550001234", "message": "once"}, headers=api_headers
    )
    message_id = resp.json()["id"]
    await started.push_once()
    [row] = [r for r in await _job_rows(hub) if r.name == "send_message"]
    # Another process pushes the same row again (same run time: same arq job id) and a
    # third pushes it under another id (as after a lost push): still one send.
    redis = await started._redis()
    await redis.enqueue_job("run_job_row", row.id, _job_id=arq_job_id(row.id, row.run_at))
    await redis.enqueue_job("run_job_row", row.id, _job_id=f"{row.id}@other")
    await drain(hub)
    async with hub.db.read() as session:
        message = await session.get(Message, message_id)
    assert message is not None and message.status == "delivered" and message.attempts == 1


async def test_a_push_lost_in_redis_is_swept_and_run(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    started: ArqQueue,
    sim: str,
    redis_url: str,
) -> None:
    from redis.asyncio import Redis

    resp = await client.post(
        "/api/v1/send", json={"to": "+15550001234", "message": "swept"}, headers=api_headers
    )
    message_id = resp.json()["id"]
    await started.push_once()
    [send] = [r for r in await _job_rows(hub) if r.name == "send_message"]
    assert send.enqueued_at is not None
    redis = Redis.from_url(redis_url)
    await redis.flushdb()  # Redis restarted without persistence: the push is gone
    await redis.aclose()
    await started.push_once()
    [again] = [r for r in await _job_rows(hub) if r.name == "send_message"]
    assert again.enqueued_at == send.enqueued_at  # pushed recently: not yet considered lost
    past = datetime.now(UTC) - timedelta(seconds=31)
    async with hub.db.write() as session:  # ... 31 s later
        await session.execute(sa.update(Job).values(enqueued_at=past, run_at=past))
    await started.push_once()
    [swept] = [r for r in await _job_rows(hub) if r.name == "send_message"]
    assert swept.enqueued_at is not None and swept.enqueued_at > past  # pushed again
    await drain(hub)
    assert (
        await count(hub, Message, col(Message.id) == message_id, col(Message.status) == "delivered")
        == 1
    )


def test_redis_settings_parse_the_url() -> None:
    settings = redis_settings("redis://127.0.0.1:6380/4")
    assert (settings.host, settings.port, settings.database) == ("127.0.0.1", 6380, 4)
