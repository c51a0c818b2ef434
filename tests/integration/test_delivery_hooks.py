"""Zapier-style REST Hooks: subscribe, receive, unsubscribe, receive nothing more; samples;
the same for Make and n8n URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from connectors.simulator import event_body, sign_request
from hub.context import Hub
from hub.delivery.models import Delivery
from hub.models import Job
from hub.services.events import dispatch_event
from tests.conftest import ChannelFactory, drain
from tests.fakes.sink import Sink

SIM_SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ALICE = "+15550001234"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


@pytest.fixture
async def sim(make_channel: ChannelFactory) -> str:
    channel = await make_channel(
        "simulator", webhook_secret=SIM_SECRET, config={"phone_number": SIM_NUMBER}
    )
    return str(channel.id)


async def inbound(client: httpx.AsyncClient, channel_id: str, text: str) -> None:
    """Alice texts the simulator channel (a signed gateway webhook)."""
    body = event_body(
        "sms.received", event_id=f"in-{text}", from_number=ALICE, to_number=SIM_NUMBER, text=text
    )
    headers = {
        "content-type": "application/json",
        **sign_request(SIM_SECRET, body, datetime.now(UTC)),
    }
    resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=headers)
    assert resp.status_code == 200, resp.text


async def test_subscribe_receive_unsubscribe_receive_nothing_more(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str, sink: Sink
) -> None:
    # Zapier's legacy REST Hooks also send subscription_url: unknown fields are ignored.
    resp = await client.post(
        "/api/v1/hooks",
        json={"target_url": sink.url, "event": "sms.received", "subscription_url": "x"},
        headers=api_headers,
    )
    assert resp.status_code == 201, resp.text
    hook_id = resp.json()["id"]
    assert resp.json()["preset"] == "generic"

    await inbound(client, sim, "first")
    await drain(hub)
    assert [r.json()["data"]["body"] for r in sink.requests] == ["first"]

    # An event already dispatched (its delivery queued) when the hook goes away…
    await inbound(client, sim, "queued")
    async with hub.db.read() as session:
        stmt = sa.select(Job.args).where(Job.name == "dispatch_event")  # type: ignore[arg-type]
        pending = list((await session.execute(stmt)).scalars())
    for args in pending:
        await dispatch_event(hub, args["event_id"])  # deliveries written, not yet attempted
    assert await _count(hub, "pending") == 1

    assert (await client.delete(f"/api/v1/hooks/{hook_id}", headers=api_headers)).status_code == 204
    await inbound(client, sim, "after")
    await drain(hub)
    assert [r.json()["data"]["body"] for r in sink.requests] == ["first"]  # nothing more
    assert await _count(hub, "cancelled") == 1  # …is cancelled, not sent
    # Unsubscribing again is harmless; an unknown hook is 404.
    assert (await client.delete(f"/api/v1/hooks/{hook_id}", headers=api_headers)).status_code == 204
    missing = await client.delete("/api/v1/hooks/ep_nope", headers=api_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "endpoint_not_found"


async def _count(hub: Hub, status: str) -> int:
    async with hub.db.read() as session:
        stmt = sa.select(sa.func.count()).where(Delivery.status == status)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar() or 0)


@pytest.mark.parametrize(
    ("target_url", "preset"),
    [
        ("https://hooks.zapier.com/hooks/standard/123/abc123/", "zapier"),
        ("https://hook.eu1.make.com/abcdefghijklmnop", "make"),
        ("https://n8n.example.com/webhook/sms-in", "n8n"),
        ("https://example.com/anything", "generic"),
    ],
)
async def test_the_preset_is_inferred_from_the_target_url(
    client: httpx.AsyncClient, api_headers: dict[str, str], target_url: str, preset: str
) -> None:
    resp = await client.post(
        "/api/v1/hooks", json={"target_url": target_url, "event": "*"}, headers=api_headers
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["preset"] == preset
    shown = await client.get(f"/api/v1/endpoints/{resp.json()['id']}", headers=api_headers)
    assert shown.json()["kind"] == "hook" and shown.json()["event_types"] == ["*"]
    # The answer holds the secret its deliveries are signed with, for the subscriber to verify.
    assert resp.json()["secret"].startswith("whsec_")
    assert resp.json()["secret"] == shown.json()["secret"]


async def test_hooks_refuse_bad_events_and_urls_and_api_endpoints(
    client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    bad_event = await client.post(
        "/api/v1/hooks", json={"target_url": sink.url, "event": "sms.nope"}, headers=api_headers
    )
    assert bad_event.status_code == 422
    assert bad_event.json()["error"]["details"][0]["field"] == "event"
    bad_url = await client.post(
        "/api/v1/hooks", json={"target_url": "ftp://x", "event": "*"}, headers=api_headers
    )
    assert bad_url.status_code == 422
    assert bad_url.json()["error"]["details"][0]["field"] == "target_url"
    # A hook id is an endpoint, but an API endpoint is not a hook.
    endpoint = await client.post("/api/v1/endpoints", json={"url": sink.url}, headers=api_headers)
    resp = await client.delete(f"/api/v1/hooks/{endpoint.json()['id']}", headers=api_headers)
    assert resp.status_code == 404


async def test_samples_are_recent_payloads_or_a_realistic_example(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    await inbound(client, sim, "JOIN news")
    await drain(hub)
    real = await client.get("/api/v1/hooks/sample/sms.received", headers=api_headers)
    assert real.status_code == 200
    assert [p["data"]["body"] for p in real.json()] == ["JOIN news"]

    made_up = await client.get("/api/v1/hooks/sample/sms.delivered", headers=api_headers)
    (sample,) = made_up.json()
    assert sample["type"] == "sms.delivered" and sample["data"]["status"] == "delivered"
    assert sample["id"].startswith("evt_")

    flat = await client.get(
        "/api/v1/hooks/sample/sms.received", params={"preset": "zapier"}, headers=api_headers
    )
    assert flat.json()[0]["body"] == "JOIN news" and flat.json()[0]["event_type"] == "sms.received"

    unknown = await client.get("/api/v1/hooks/sample/sms.nope", headers=api_headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_event_type"
