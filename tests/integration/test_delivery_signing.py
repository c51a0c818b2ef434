"""What a receiver gets: Standard Webhooks signatures that verify, secret rotation with both
signatures, extra headers, preset bodies (SQLite and PostgreSQL, real HTTP to a local sink)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connectors.simulator import event_body, sign_request
from hub.context import Hub
from hub.delivery.models import Endpoint
from hub.delivery.signing import new_secret, sign_headers
from tests.conftest import ChannelFactory, drain
from tests.fakes.sink import Sink

FIXTURE = (
    Path(__file__).parents[1] / "fixtures" / "standard-webhooks" / "outbound_sms_received.json"
)
SIM_SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ALICE = "+15550001234"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


async def create_endpoint(
    client: httpx.AsyncClient, auth: dict[str, str], url: str, **fields: Any
) -> dict[str, Any]:
    resp = await client.post("/api/v1/endpoints", json={"url": url, **fields}, headers=auth)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def post_inbound(
    client: httpx.AsyncClient, channel_id: str, text: str, event_id: str
) -> None:
    """A signed simulator webhook: an SMS from Alice."""
    body = event_body(
        "sms.received", event_id=event_id, from_number=ALICE, to_number=SIM_NUMBER, text=text
    )
    headers = {
        "content-type": "application/json",
        **sign_request(SIM_SECRET, body, datetime.now(UTC)),
    }
    resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=headers)
    assert resp.status_code == 200, resp.text


def test_signing_matches_the_recorded_standard_webhooks_vector() -> None:
    fixture = json.loads(FIXTURE.read_text())
    request = fixture["request"]
    at = datetime.fromtimestamp(int(request["headers"]["webhook-timestamp"]), UTC)
    headers = sign_headers(
        request["headers"]["webhook-id"], at, request["body"], [fixture["secret"]]
    )
    assert headers["webhook-signature"] == request["headers"]["webhook-signature"]
    assert headers["webhook-timestamp"] == request["headers"]["webhook-timestamp"]


async def test_sms_received_arrives_signed_and_verifies(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    make_channel: ChannelFactory,
    sink: Sink,
) -> None:
    channel = await make_channel(
        "simulator", webhook_secret=SIM_SECRET, config={"phone_number": SIM_NUMBER}
    )
    endpoint = await create_endpoint(client, api_headers, sink.url, event_types=["sms.received"])
    assert endpoint["secret"].startswith("whsec_")
    await post_inbound(client, channel.id, "JOIN news", "sim-in-1")
    await drain(hub)

    assert len(sink.requests) == 1
    got = sink.requests[0]
    payload = Webhook(endpoint["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "sms.received"
    assert payload["data"]["body"] == "JOIN news"
    assert payload["data"]["from"] == ALICE
    assert payload["data"]["channel_id"] == channel.id
    assert got.webhook_id == payload["id"]  # the event id is the webhook id
    assert got.headers["content-type"] == "application/json"
    # Any other secret fails: the signature really is keyed by this endpoint's secret.
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)


async def test_rotation_sends_both_signatures_during_the_overlap(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    from hub.services.events import emit_in_session as emit

    endpoint = await create_endpoint(client, api_headers, sink.url)
    old = endpoint["secret"]
    resp = await client.post(
        f"/api/v1/endpoints/{endpoint['id']}/rotate-secret", headers=api_headers
    )
    assert resp.status_code == 200, resp.text
    new = resp.json()["secret"]
    assert new != old and new.startswith("whsec_")
    expires = datetime.fromisoformat(resp.json()["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    # The endpoint's own page shows the new secret from now on.
    shown = (await client.get(f"/api/v1/endpoints/{endpoint['id']}", headers=api_headers)).json()
    assert shown["secret"] == new

    async with hub.db.write() as session:
        await emit(session, type="sms.sent", channel_id="ch_x", dedupe_key="r1", data={"n": 1})
    await drain(hub)
    got = sink.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(got.body, got.headers)  # receivers that switched already
    Webhook(old).verify(got.body, got.headers)  # receivers that did not yet

    # After the overlap only the new secret signs.
    async with hub.db.write() as session:
        await session.execute(
            sa.update(Endpoint)
            .where(Endpoint.id == endpoint["id"])  # type: ignore[arg-type]
            .values(previous_secret_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await emit(session, type="sms.sent", channel_id="ch_x", dedupe_key="r2", data={"n": 2})
    await drain(hub)
    got = sink.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)


async def test_rotation_without_overlap_drops_the_old_secret_at_once(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    endpoint = await create_endpoint(client, api_headers, sink.url)
    resp = await client.post(
        f"/api/v1/endpoints/{endpoint['id']}/rotate-secret",
        json={"overlap_s": 0},
        headers=api_headers,
    )
    assert resp.status_code == 200
    assert resp.json()["previous_secret_expires_at"] is None
    test = await client.post(f"/api/v1/endpoints/{endpoint['id']}/test", headers=api_headers)
    assert test.json()["status"] == "succeeded"
    got = sink.requests[-1]
    Webhook(resp.json()["secret"]).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(got.body, got.headers)


async def test_n8n_preset_gets_header_auth_and_a_flat_body(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    from hub.services.events import emit_in_session as emit

    async with Sink(path="/webhook/smshub-in") as n8n:
        endpoint = await create_endpoint(
            client,
            api_headers,
            n8n.url,
            preset="n8n",
            headers={"X-N8N-Auth": "s3cret-value"},
        )
        assert endpoint["headers"] == {"X-N8N-Auth": "********"}  # never echoed
        async with hub.db.write() as session:
            await emit(
                session,
                type="sms.received",
                channel_id="ch_x",
                dedupe_key="n8n-1",
                data={"from": ALICE, "body": "hi", "meta": {"carrier": "Acme"}},
            )
        await drain(hub)
        got = n8n.requests[0]
    assert got.headers["x-n8n-auth"] == "s3cret-value"
    body = Webhook(endpoint["secret"]).verify(got.body, got.headers)  # signed as sent
    assert body["event_type"] == "sms.received"
    assert body["from"] == ALICE and body["body"] == "hi" and body["meta__carrier"] == "Acme"
    assert body["event_id"] == got.webhook_id
