"""State several processes share: two hubs on one database are two processes' worth of
state (each its own throttle, gate, trigger index, test-run handling).

The sign-in throttle (database, or Redis), the flow editor's test runs, the trigger index
refreshed by notification (PostgreSQL) or by its stamp check (SQLite), and the delivery
caps shared through Redis (db 12)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlmodel import col

from hub.app import build_hub, create_app
from hub.context import Hub
from hub.delivery.gate import EndpointGate, SharedSlots, Ticket
from hub.models import EditorTestRun, Flow, LoginFailure, utcnow
from hub.services import flow_runtime
from hub.services.apikeys import create_api_key
from hub.services.users import create_user
from hub.throttle import DatabaseThrottle, RedisThrottle
from tests.conftest import REDIS_TEST_URL, make_settings, port_open, service_missing
from tests.e2e.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, set_up_admin, sign_in
from tests.helpers import count

REDIS_DB = 12
REDIS_URL = f"{REDIS_TEST_URL}/{REDIS_DB}"

#: A flow a keyword starts: what the trigger index of each process must know about.
KEYWORD_FLOW = {
    "name": "zebra",
    "nodes": [
        {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["ZEBRA"]}},
        {"id": "ask", "type": "sms.wait_for_reply", "config": {"text": "Stripes?"}},
        {
            "id": "thanks",
            "type": "sms.reply",
            "config": {"text": "Got {{ steps.ask.output.body }}"},
        },
    ],
    "edges": [{"from": "start", "to": "ask"}, {"from": "ask", "port": "reply", "to": "thanks"}],
}
ZEBRA_SMS = {
    "id": "evt_test",
    "type": "sms.received",
    "data": {"from": "+15550001234", "to": "+15559876543", "body": "zebra", "channel_id": "ch_x"},
}


def _flush_redis() -> None:
    client = SyncRedis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def redis_db() -> Iterator[str]:
    """Redis db 12, empty before and after."""
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis", "nothing listens on 127.0.0.1:6379")
    _flush_redis()
    yield REDIS_URL
    _flush_redis()


HubPair = tuple[Hub, Hub]


@pytest.fixture
async def make_pair(
    tmp_path: Path, database_url: str
) -> AsyncIterator[Callable[..., Awaitable[HubPair]]]:
    """Two hubs on the same database (``make_pair(redis_url=...)`` for more settings)."""
    made: list[Hub] = []

    async def factory(**overrides: Any) -> HubPair:
        for name in ("a", "b"):
            made.append(build_hub(make_settings(tmp_path / name, database_url, **overrides)))
        return made[-2], made[-1]

    yield factory
    for hub in made:
        await hub.close()


def _client(hub: Hub, **kwargs: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(hub=hub, workers=False))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver.local", **kwargs)


# --- the sign-in throttle --------------------------------------------------------------------


@pytest.mark.parametrize("store", ["database", "redis"])
async def test_failed_sign_ins_count_in_every_process(
    make_pair: Callable[..., Awaitable[HubPair]], store: str, request: pytest.FixtureRequest
) -> None:
    # (the database throttle is the one of a hub without Redis, whatever the configuration)
    redis_url = request.getfixturevalue("redis_db") if store == "redis" else ""
    hub_a, hub_b = await make_pair(redis_url=redis_url)
    expected = RedisThrottle if store == "redis" else DatabaseThrottle
    assert isinstance(hub_a.login_throttle, expected)
    await create_user(hub_a, ADMIN_EMAIL, ADMIN_PASSWORD)
    limit = hub_a.settings.login_attempts_per_min
    async with _client(hub_a) as a, _client(hub_b) as b:
        # The attempts alternate between the processes; together they reach the limit.
        for attempt in range(limit):
            via = a if attempt % 2 else b
            assert (await sign_in(via, password="guess guess")).status_code == 422
        throttled = await sign_in(b, password="guess guess")
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        # The right password waits too, through either process.
        assert (await sign_in(a)).status_code == 429
    if store == "database":
        assert await count(hub_a, LoginFailure) == limit  # one row per failure, no more


async def test_a_sign_in_clears_the_failures_and_old_ones_are_dropped(
    make_pair: Callable[..., Awaitable[HubPair]],
) -> None:
    hub_a, hub_b = await make_pair(redis_url="")  # the database throttle
    throttle_a, throttle_b = hub_a.login_throttle, hub_b.login_throttle
    await throttle_a.failed("1.2.3.4|ann@example.com")
    await throttle_a.failed("5.6.7.8|bob@example.com")
    # A failure a minute old leaves the window, and the next failure's write drops it.
    async with hub_a.db.write() as session:
        await session.execute(sa.update(LoginFailure).values(at=utcnow() - timedelta(seconds=61)))
    assert await throttle_b.retry_after("5.6.7.8|bob@example.com") is None
    await throttle_b.failed("1.2.3.4|ann@example.com")
    assert await count(hub_a, LoginFailure) == 1
    await throttle_a.succeeded("1.2.3.4|ann@example.com")
    assert await count(hub_a, LoginFailure) == 0


# --- the flow editor's test runs -------------------------------------------------------------


async def test_a_test_run_continues_through_another_process(
    make_pair: Callable[..., Awaitable[HubPair]],
) -> None:
    hub_a, hub_b = await make_pair()
    async with _client(hub_a) as a:
        csrf = await set_up_admin(a)
        created = await a.post(
            "/api/v1/flows?draft=true", json=KEYWORD_FLOW, headers={"X-CSRF-Token": csrf}
        )
        assert created.status_code == 201, created.text
        flow_id = created.json()["id"]
        first = await a.post(
            f"/flows/{flow_id}/test-run",
            json={"document": KEYWORD_FLOW, "text": "zebra"},
            headers={"X-CSRF-Token": csrf},
        )
        assert first.status_code == 200, first.text
        assert first.json()["runs"][0]["status"] == "waiting"
        sid = first.json()["session"]
        # The same browser (cookie), its next request answered by the other process.
        async with _client(hub_b, cookies=a.cookies) as b:
            replied = await b.post(
                f"/flows/test-runs/{sid}/reply",
                json={"text": "yes"},
                headers={"X-CSRF-Token": csrf},
            )
            assert replied.status_code == 200, replied.text
            result = replied.json()
            assert result["runs"][0]["status"] == "completed"
            assert result["sms"][-1]["text"] == "Got yes"
            # The run is the one process A started (replayed, not a new one).
            assert result["runs"][0]["id"] == first.json()["runs"][0]["id"]
            assert result["sms"][0] == first.json()["sms"][0]
        # And back through A: it sees B's step.
        again = await a.post(
            f"/flows/test-runs/{sid}/advance", json={"seconds": 5}, headers={"X-CSRF-Token": csrf}
        )
        assert again.status_code == 200 and again.json()["sms"][-1]["text"] == "Got yes"
        # The state is the row, not any process's memory: without it, no process knows it.
        assert await count(hub_b, EditorTestRun) == 1
        async with hub_b.db.write() as session:
            await session.execute(sa.delete(EditorTestRun))
        gone = await a.post(
            f"/flows/test-runs/{sid}/reply", json={"text": "y"}, headers={"X-CSRF-Token": csrf}
        )
        assert gone.status_code == 422 and "expired" in gone.text


# --- the trigger index -----------------------------------------------------------------------


async def _eventually(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate`` held (AssertionError after ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout} s")


async def _publish_through_api(hub: Hub) -> str:
    _row, key = await create_api_key(hub, "tests")
    async with _client(hub, headers={"Authorization": f"Bearer {key}"}) as api:
        created = await api.post("/api/v1/flows", json=KEYWORD_FLOW)
        assert created.status_code == 201, created.text
        flow_id = str(created.json()["id"])
        assert (await api.post(f"/api/v1/flows/{flow_id}/publish", json={})).status_code == 201
    return flow_id


async def test_a_flow_published_in_one_process_is_in_the_others_index_promptly(
    make_pair: Callable[..., Awaitable[HubPair]],
) -> None:
    hub_a, hub_b = await make_pair()
    assert (await hub_b.flows.index()).match(ZEBRA_SMS) == []
    postgres = hub_b.db.dialect == "postgresql"
    if postgres:  # B listens (its listener connected) before A publishes
        await _eventually(lambda: hub_b.flows.check_period_s == flow_runtime.SAFETY_NET_S, 5)
        wait = 1.0
        assert 10 * wait < flow_runtime.SAFETY_NET_S  # the safety net cannot be what worked
    else:  # SQLite: B checks the flows table's stamp every POLL_S
        wait = flow_runtime.POLL_S + 0.5

    async def index_b_matches() -> bool:
        index = hub_b.flows.cached_index() if postgres else await hub_b.flows.index()
        return bool(index.match(ZEBRA_SMS))

    flow_id = await _publish_through_api(hub_a)
    started = time.monotonic()
    while not await index_b_matches():
        assert time.monotonic() - started < wait, "B's index did not see the new flow"
        await asyncio.sleep(0.02)
    assert hub_b.flows.cached_index().match(ZEBRA_SMS)[0].flow_id == flow_id


async def test_the_listener_reconnects_and_rebuilds_what_it_missed(
    make_pair: Callable[..., Awaitable[HubPair]],
) -> None:
    hub_a, hub_b = await make_pair()
    if hub_b.db.dialect != "postgresql":
        pytest.skip("notifications are PostgreSQL's (SQLite checks the stamp)")
    await hub_b.flows.index()
    await _eventually(lambda: hub_b.flows.check_period_s == flow_runtime.SAFETY_NET_S, 5)
    flow_id = await _publish_through_api(hub_a)
    await _eventually(lambda: bool(hub_b.flows.cached_index().match(ZEBRA_SMS)), 1)
    # Paused behind B's back (no notification), then B's listening connection is cut.
    async with hub_a.db.write() as session:
        await session.execute(
            sa.update(Flow)
            .where(col(Flow.id) == flow_id)
            .values(enabled=False, updated_at=sa.func.now())
        )
        await session.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        )
    # It reconnects and rebuilds at once, long before the safety net would.
    await _eventually(lambda: not hub_b.flows.cached_index().match(ZEBRA_SMS), 5)
    await _eventually(lambda: hub_b.flows.check_period_s == flow_runtime.SAFETY_NET_S, 5)


# --- delivery caps shared through Redis ------------------------------------------------------


def _gate(client: Redis, *, cap: int = 3, holder_ttl_s: float = 30.0) -> EndpointGate:
    return EndpointGate(
        per_endpoint=cap,
        slow_total=10,
        total=100,
        shared=SharedSlots(client, holder_ttl_s=holder_ttl_s),
    )


async def _answered(gate: EndpointGate, endpoint: str) -> None:
    """One attempt in and out: the endpoint has answered, so the full cap applies."""
    ticket = await gate.admit(endpoint)
    assert isinstance(ticket, Ticket)
    await gate.release(ticket)


async def test_two_gates_sharing_redis_never_exceed_the_cap_together(redis_db: str) -> None:
    clients = [Redis.from_url(redis_db), Redis.from_url(redis_db)]
    try:
        gate_a, gate_b = (_gate(c, cap=3) for c in clients)
        for gate in (gate_a, gate_b):
            await _answered(gate, "ep_1")
        # 20 attempts at once, half through each process: 3 get in, the rest are deferred.
        calls = [gate for _ in range(10) for gate in (gate_a, gate_b)]
        admissions = await asyncio.gather(*(gate.admit("ep_1") for gate in calls))
        held = [(g, t) for g, t in zip(calls, admissions, strict=True) if isinstance(t, Ticket)]
        assert len(held) == 3
        deferred = [t for t in admissions if not isinstance(t, Ticket)]
        assert len(deferred) == 17 and all(t > 0 for t in deferred)
        assert gate_a.shared is not None and await gate_a.shared.holders("ep_1") == 3
        # Another endpoint is not held up by it.
        assert isinstance(await gate_b.admit("ep_2"), Ticket)
        # A slot given back through one process is free for the other, and only once.
        owner, ticket = held[0]
        await owner.release(ticket)
        other = gate_b if owner is gate_a else gate_a
        assert isinstance(await other.admit("ep_1"), Ticket)
        assert not isinstance(await owner.admit("ep_1"), Ticket)
    finally:
        for client in clients:
            await client.aclose()


async def test_an_expired_holder_gives_its_slot_back(redis_db: str) -> None:
    clients = [Redis.from_url(redis_db), Redis.from_url(redis_db)]
    try:
        # Process A takes both slots and dies without releasing them.
        dying = _gate(clients[0], cap=2, holder_ttl_s=0.5)
        for _ in range(2):
            assert isinstance(await dying.admit("ep_1"), Ticket)
        survivor = _gate(clients[1], cap=2, holder_ttl_s=0.5)
        assert not isinstance(await survivor.admit("ep_1"), Ticket)
        await asyncio.sleep(0.6)
        assert isinstance(await survivor.admit("ep_1"), Ticket)
        assert survivor.shared is not None and await survivor.shared.holders("ep_1") == 1
    finally:
        for client in clients:
            await client.aclose()
