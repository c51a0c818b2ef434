"""Retries on a (shortened) schedule, dead letters, replay, and what each answer means:
410 disables, 429 Retry-After waits, 3xx is a failure, five days of failures disable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from hub.context import Hub
from hub.delivery.models import Endpoint
from hub.models import Event
from hub.services.events import emit_in_session as emit
from tests.fakes.sink import Reply, Sink, wait_until
from tests.helpers import count, running_queue

#: Three attempts: at once, then twice 0.3 s apart (±10 % jitter).
SCHEDULE = [0.0, 0.3, 0.3]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "delivery_retry_schedule": ",".join(str(s) for s in SCHEDULE),
        "delivery_timeout_s": 1.0,
    }


@pytest.fixture
async def running(hub: Hub) -> AsyncIterator[Hub]:
    """The hub with its real queue running."""
    async with running_queue(hub):
        yield hub


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running_sink:
        yield running_sink


async def new_endpoint(
    client: httpx.AsyncClient, auth: dict[str, str], url: str, **fields: Any
) -> dict[str, Any]:
    resp = await client.post("/api/v1/endpoints", json={"url": url, **fields}, headers=auth)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def publish(hub: Hub, key: str, type_: str = "sms.received") -> str:
    """Emit one public event (as ingest would) and wake the queue."""
    async with hub.db.write() as session:
        event_id = await emit(
            session, type=type_, channel_id="ch_test", dedupe_key=key, data={"key": key}
        )
    hub.queue.notify()
    assert event_id is not None
    return event_id


async def find_delivery(
    client: httpx.AsyncClient, auth: dict[str, str], event_id: str
) -> dict[str, Any] | None:
    """The delivery of an event (one endpoint), with its attempts; None before dispatch."""
    page = await client.get("/api/v1/deliveries", params={"event_id": event_id}, headers=auth)
    items = page.json()["items"]
    assert len(items) <= 1, items
    if not items:
        return None
    resp = await client.get(f"/api/v1/deliveries/{items[0]['id']}", headers=auth)
    body: dict[str, Any] = resp.json()
    return body


async def the_delivery(
    client: httpx.AsyncClient, auth: dict[str, str], event_id: str
) -> dict[str, Any]:
    """The delivery of an event, which must exist."""
    found = await find_delivery(client, auth, event_id)
    assert found is not None
    return found


async def wait_status(
    client: httpx.AsyncClient, auth: dict[str, str], event_id: str, status: str, timeout: float = 10
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def done() -> bool:
        found.update(await find_delivery(client, auth, event_id) or {})
        return bool(found.get("status") == status)

    await wait_until(done, timeout)
    return found


async def test_500_500_200_is_three_attempts_one_success_same_webhook_id(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    sink.script(500, 500)
    endpoint = await new_endpoint(client, api_headers, sink.url)
    event_id = await publish(running, "e-500-500-200")
    delivery = await wait_status(client, api_headers, event_id, "succeeded")

    assert [r.status for r in sink.requests] == [500, 500, 200]
    assert sink.ids() == [event_id] * 3  # webhook-id stable across retries
    for received in sink.requests:
        Webhook(endpoint["secret"]).verify(received.body, received.headers)
    gaps = [b.at - a.at for a, b in zip(sink.requests, sink.requests[1:], strict=False)]
    assert all(0.25 <= gap < 2.0 for gap in gaps), gaps  # the shortened schedule, jittered
    attempts = delivery["attempts"]
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert [a["number"] for a in attempts] == [1, 2, 3]
    assert attempts[0]["error"] == "HTTP 500 Internal Server Error"
    assert attempts[2]["error"] is None and attempts[2]["response_body"] == '{"ok": true}'
    assert delivery["attempt_count"] == 3 and delivery["next_attempt_at"] is None


async def test_always_failing_is_a_dead_letter_and_replay_delivers_exactly_once(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    sink.always(500)
    endpoint = await new_endpoint(client, api_headers, sink.url)
    before = datetime.now(UTC) - timedelta(seconds=5)
    event_id = await publish(running, "e-dead")
    delivery = await wait_status(client, api_headers, event_id, "failed")
    assert len(delivery["attempts"]) == len(SCHEDULE)  # every scheduled attempt, no more
    dead = await client.get(
        "/api/v1/deliveries",
        params={"status": "failed", "endpoint_id": endpoint["id"]},
        headers=api_headers,
    )
    assert [d["id"] for d in dead.json()["items"]] == [delivery["id"]]

    sink.always(200)
    url = f"/api/v1/endpoints/{endpoint['id']}/replay"
    since = {"since": before.isoformat()}
    first = await client.post(url, json=since, headers=api_headers)
    second = await client.post(url, json=since, headers=api_headers)  # while the first is pending
    assert first.status_code == 202 and first.json() == {"replayed": 1}
    assert second.status_code == 202 and second.json() == {"replayed": 0}
    delivery = await wait_status(client, api_headers, event_id, "succeeded")
    await running.queue.stop()  # nothing else may arrive: let every job finish
    assert sink.succeeded_ids() == [event_id]  # delivered exactly once
    assert len(sink.requests) == len(SCHEDULE) + 1
    assert delivery["generation"] == 1
    assert delivery["attempts"][-1]["trigger"] == "manual"
    # A replay of a newer window finds nothing failed.
    third = await client.post(
        url, json={"since": datetime.now(UTC).isoformat()}, headers=api_headers
    )
    assert third.json() == {"replayed": 0}


async def test_retry_one_delivery_twice_sends_once(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    sink.script(500, 500, 500)
    await new_endpoint(client, api_headers, sink.url)
    event_id = await publish(running, "e-retry")
    delivery = await wait_status(client, api_headers, event_id, "failed")
    url = f"/api/v1/deliveries/{delivery['id']}/retry"
    await running.queue.stop()  # both clicks land before any attempt
    first = await client.post(url, headers=api_headers)
    second = await client.post(url, headers=api_headers)
    assert first.status_code == 202 and first.json()["status"] == "pending"
    assert second.status_code == 202 and second.json()["generation"] == 1  # same generation
    await running.queue.start()
    await wait_status(client, api_headers, event_id, "succeeded")
    await running.queue.stop()
    assert sink.succeeded_ids() == [event_id]
    assert len(sink.requests) == 4


async def test_410_disables_the_endpoint_and_emits_endpoint_disabled(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    sink.always(410)
    endpoint = await new_endpoint(client, api_headers, sink.url, event_types=["sms.received"])
    async with Sink() as watcher:
        await new_endpoint(client, api_headers, watcher.url, event_types=["endpoint.disabled"])
        event_id = await publish(running, "e-gone")
        delivery = await wait_status(client, api_headers, event_id, "failed")
        assert len(delivery["attempts"]) == 1  # no retries after 410
        await watcher.wait_for(1)
        notice = watcher.requests[0].json()
    assert notice["type"] == "endpoint.disabled"
    assert notice["data"]["endpoint_id"] == endpoint["id"]
    assert "410" in notice["data"]["reason"]
    shown = (await client.get(f"/api/v1/endpoints/{endpoint['id']}", headers=api_headers)).json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    # Nothing more goes to a disabled endpoint.
    await publish(running, "e-after-gone")
    await running.queue.stop()
    assert len(sink.requests) == 1
    # Replaying into a disabled endpoint is refused until it is enabled again.
    replay = await client.post(
        f"/api/v1/endpoints/{endpoint['id']}/replay",
        json={"since": "2020-01-01T00:00:00Z"},
        headers=api_headers,
    )
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "endpoint_disabled"


async def test_429_retry_after_is_honoured(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    sink.script(Reply(429, headers={"Retry-After": "1"}))
    await new_endpoint(client, api_headers, sink.url)
    event_id = await publish(running, "e-429")
    await wait_status(client, api_headers, event_id, "succeeded")
    first, second = sink.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.95  # not the 0.3 s of the schedule


async def test_503_with_an_http_date_retry_after_is_honoured(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    sink.script(Reply(503, headers={"Retry-After": when}))
    await new_endpoint(client, api_headers, sink.url)
    event_id = await publish(running, "e-503")
    await wait_status(client, api_headers, event_id, "succeeded")
    first, second = sink.requests
    assert second.at - first.at >= 0.9  # HTTP dates have whole seconds


async def test_redirects_are_failures_and_never_followed(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    async with Sink() as elsewhere:
        sink.always(Reply(302, headers={"Location": elsewhere.url}))
        await new_endpoint(client, api_headers, sink.url)
        event_id = await publish(running, "e-302")
        delivery = await wait_status(client, api_headers, event_id, "failed")
        assert elsewhere.requests == []
    assert [a["status_code"] for a in delivery["attempts"]] == [302] * len(SCHEDULE)
    assert "not followed" in delivery["attempts"][0]["error"]
    assert elsewhere.url in delivery["attempts"][0]["error"]


async def test_failing_for_five_days_disables_and_a_success_resets_the_clock(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    sink.script(500, 200)
    endpoint = await new_endpoint(client, api_headers, sink.url)
    ep_id = endpoint["id"]

    async def failing_since() -> datetime | None:
        async with running.db.read() as session:
            row = await session.get(Endpoint, ep_id)
            assert row is not None
            return row.failing_since

    first = await publish(running, "e-reset")
    await wait_status(client, api_headers, first, "succeeded")
    assert await failing_since() is None  # the success cleared the first failure

    sink.always(500)
    second = await publish(running, "e-5d")
    await wait_until(lambda: len(sink.requests) >= 3)
    assert await failing_since() is not None
    # Pretend the endpoint has been failing for five days and a minute.
    async with running.db.write() as session:
        await session.execute(
            sa.update(Endpoint)
            .where(Endpoint.id == ep_id)  # type: ignore[arg-type]
            .values(failing_since=datetime.now(UTC) - timedelta(days=5, minutes=1))
        )
    delivery = await wait_status(client, api_headers, second, "failed")
    assert len(delivery["attempts"]) <= len(SCHEDULE)
    shown = (await client.get(f"/api/v1/endpoints/{ep_id}", headers=api_headers)).json()
    assert shown["enabled"] is False
    assert "5.0 days" in shown["disabled_reason"]
    await wait_until(lambda: count(running, Event, Event.type == "endpoint.disabled"))
    async with running.db.read() as session:
        event = (
            await session.execute(sa.select(Event).where(Event.type == "endpoint.disabled"))  # type: ignore[arg-type]
        ).scalar_one()
    assert event.channel_id == "hub" and event.payload["data"]["endpoint_id"] == ep_id

    # Enabling it again clears the record.
    resp = await client.patch(
        f"/api/v1/endpoints/{ep_id}", json={"enabled": True}, headers=api_headers
    )
    assert resp.json()["enabled"] is True and resp.json()["failing_since"] is None


async def test_a_hanging_endpoint_times_out_and_the_attempt_says_so(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    sink.script(Reply(hang=True))
    await new_endpoint(client, api_headers, sink.url)
    event_id = await publish(running, "e-hang")
    delivery = await wait_status(client, api_headers, event_id, "succeeded")
    timeout, ok = delivery["attempts"]
    assert timeout["status_code"] is None and "timeout" in timeout["error"]
    assert 900 <= timeout["duration_ms"] < 3000  # delivery_timeout_s = 1
    assert ok["status_code"] == 200


async def test_disabling_an_endpoint_fails_its_queued_deliveries(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    endpoint = await new_endpoint(client, api_headers, sink.url)
    event_id = await publish(hub, "e-queued")  # dispatched below, not yet attempted
    from hub.services.events import dispatch_event

    await dispatch_event(hub, event_id)
    resp = await client.patch(
        f"/api/v1/endpoints/{endpoint['id']}", json={"enabled": False}, headers=api_headers
    )
    assert resp.json()["enabled"] is False
    from tests.conftest import drain

    await drain(hub)
    delivery = await the_delivery(client, api_headers, event_id)
    assert delivery["status"] == "failed" and "disabled" in delivery["last_error"]
    assert sink.requests == []


async def test_a_re_dispatched_event_is_delivered_once(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    from hub.services.events import dispatch_event
    from tests.conftest import drain

    await new_endpoint(client, api_headers, sink.url)
    event_id = await publish(hub, "e-twice")
    await dispatch_event(hub, event_id)  # as after a crash: the dispatch job runs again
    await dispatch_event(hub, event_id)
    await drain(hub)
    assert sink.ids() == [event_id]
    page = await client.get(
        "/api/v1/deliveries", params={"event_id": event_id}, headers=api_headers
    )
    assert len(page.json()["items"]) == 1


async def test_the_response_kept_on_the_attempt_is_cut_at_64_kib(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    sink.always(Reply(200, body=b"x" * 200_000))
    await new_endpoint(client, api_headers, sink.url)
    event_id = await publish(running, "e-big")
    delivery = await wait_status(client, api_headers, event_id, "succeeded")
    attempt = delivery["attempts"][0]
    assert len(attempt["response_body"]) == 64 * 1024 and attempt["response_truncated"] is True


async def test_the_rate_limit_spaces_requests_out(
    running: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    await new_endpoint(client, api_headers, sink.url, rate_limit_per_s=5)
    async with running.db.write() as session:
        for n in range(6):
            await emit(session, type="sms.sent", channel_id="c", dedupe_key=f"rl{n}", data={})
    running.queue.notify()
    await sink.wait_for(6, timeout=15)
    span = sink.requests[-1].at - sink.requests[0].at
    assert span >= 0.9, f"6 requests at 5/s took {span:.2f}s"  # five gaps of ~0.2 s
