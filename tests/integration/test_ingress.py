"""Ingress over HTTP: every recorded gateway webhook, its forgeries, and bad requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.simulator import event_body, sign_request
from hub.context import Hub
from hub.models import Device, Event, Message
from tests.conftest import ChannelFactory
from tests.helpers import (
    FIXTURE_PUBLIC_URL,
    GatewayFixture,
    count,
    load_gateway_fixtures,
    stored_rows,
)

FIXTURES = load_gateway_fixtures()
EMPTY = {"events": 0, "messages": 0, "contacts": 0, "jobs": 0, "status_changes": 0}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The fixtures were signed for this public URL (Twilio signs the full URL).
    return {"public_url": FIXTURE_PUBLIC_URL}


async def _fixture_channel(hub: Hub, make_channel: ChannelFactory, fx: GatewayFixture) -> str:
    channel = await make_channel(
        fx.connector,
        id="ch_test",
        config=fx.channel_config(),
        webhook_secret=fx.secret,
    )
    hub.clock = fx.frozen_at
    return str(channel.id)


async def _url(hub: Hub, fx: GatewayFixture) -> str:
    channel = await hub.channels.get("ch_test")
    assert channel is not None
    query = fx.query
    if channel.auth_mode == "token":
        query = "&".join(filter(None, [query, f"token={channel.url_token}"]))
    return fx.path + (f"?{query}" if query else "")


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.id for f in FIXTURES])
async def test_fixture_is_accepted_and_stored_once(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory, fx: GatewayFixture
) -> None:
    await _fixture_channel(hub, make_channel, fx)
    url = await _url(hub, fx)
    for _ in range(5):  # a gateway retrying the same webhook
        resp = await client.post(url, content=fx.body, headers=fx.headers)
        assert resp.status_code == 200, resp.text
    if fx.expect["type"] == "device.heartbeat":  # a sign of life: the device seen, no rows
        assert (await count(hub, Event), await count(hub, Message)) == (0, 0)
        assert await count(hub, Device, Device.last_seen_at == fx.frozen_at()) == 1
        return
    events = await count(hub, Event)
    assert events == 1
    async with hub.db.read() as session:
        from sqlalchemy import select

        event = (await session.execute(select(Event))).scalar_one()
    assert event.type == fx.expect["type"]
    if "dedupe_id" in fx.expect:
        assert event.dedupe_key == fx.expect["dedupe_id"]
    if fx.expect["type"] == "sms.received":
        assert await count(hub, Message, Message.direction == "inbound") == 1
        assert event.payload["data"]["body"] is not None
    if fx.name == "inbound_stop":  # STOP: exactly one confirmation, however many retries
        assert await count(hub, Message, Message.direction == "outbound") == 1
    if fx.connector == "twilio":
        assert resp.headers["content-type"].startswith("text/xml")
        assert "<Response" in resp.text


def _forgeries(fx: GatewayFixture) -> list[tuple[str, dict[str, str], bytes, str | None]]:
    """(case, headers, body, other secret) variants that must all be refused."""
    cases: list[tuple[str, dict[str, str], bytes, str | None]] = []
    changed = fx.body.replace(b"+1", b"+4", 1) if b"+1" in fx.body else fx.body + b" "
    cases.append(("changed body", fx.headers, changed, None))
    cases.append(("other secret", fx.headers, fx.body, "another-secret-0123456789"))
    for name in fx.headers:
        if "signature" in name.lower() or "timestamp" in name.lower():
            headers = {k: v for k, v in fx.headers.items() if k != name}
            cases.append((f"missing {name}", headers, fx.body, None))
    return cases


SIGNED = [f for f in FIXTURES if f.secret is not None]
FORGERY_CASES = [(fx, case) for fx in SIGNED for case in _forgeries(fx)]


@pytest.mark.parametrize(
    ("fx", "case"), FORGERY_CASES, ids=[f"{fx.id}:{case[0]}" for fx, case in FORGERY_CASES]
)
async def test_forged_fixture_gets_401_and_stores_nothing(
    hub: Hub,
    client: httpx.AsyncClient,
    make_channel: ChannelFactory,
    fx: GatewayFixture,
    case: tuple[str, dict[str, str], bytes, str | None],
) -> None:
    _name, headers, body, other_secret = case
    if other_secret is not None:
        fx = GatewayFixture(**{**fx.__dict__, "secret": other_secret})
    await _fixture_channel(hub, make_channel, fx)
    resp = await client.post(await _url(hub, fx), content=body, headers=headers)
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["code"] == "invalid_signature"
    assert await stored_rows(hub) == EMPTY


# Schemes that sign a timestamp (Twilio signs none: its replay guard is the dedupe key).
TIMESTAMPED = [f for f in SIGNED if "X-Timestamp" in f.headers or f.connector == "mysmsgate"]


@pytest.mark.parametrize("fx", TIMESTAMPED, ids=[f.id for f in TIMESTAMPED])
@pytest.mark.parametrize("offset_s", [-301, 301])
async def test_stale_timestamp_gets_401(
    hub: Hub,
    client: httpx.AsyncClient,
    make_channel: ChannelFactory,
    fx: GatewayFixture,
    offset_s: int,
) -> None:
    await _fixture_channel(hub, make_channel, fx)
    signed_at = fx.frozen_at()
    hub.clock = lambda: signed_at + timedelta(seconds=offset_s)
    resp = await client.post(await _url(hub, fx), content=fx.body, headers=fx.headers)
    assert resp.status_code == 401, resp.text
    assert await stored_rows(hub) == EMPTY


async def test_vonage_token_channel_refuses_missing_or_wrong_token(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory
) -> None:
    fx = next(f for f in FIXTURES if f.connector == "vonage")
    await _fixture_channel(hub, make_channel, fx)
    for url in (fx.path, fx.path + "?token=wrong"):
        resp = await client.post(url, content=fx.body, headers=fx.headers)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "invalid_token"
    assert await stored_rows(hub) == EMPTY


# --- bad requests on a simulator channel --------------------------------------------------

SECRET = "simulator-secret-123"


async def _sim(make_channel: ChannelFactory) -> str:
    channel = await make_channel(
        "simulator", webhook_secret=SECRET, config={"phone_number": "+15550100000"}
    )
    return str(channel.id)


def _signed(body: bytes, now: datetime | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        **sign_request(SECRET, body, now or datetime.now(UTC)),
    }


async def test_unknown_channel_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/webhooks/ch_nope", content=b"{}", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "channel_not_found"


async def test_body_over_one_mib_is_413(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory
) -> None:
    channel_id = await _sim(make_channel)
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=_signed(body))
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"
    assert await stored_rows(hub) == EMPTY


async def test_wrong_content_type_is_415(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory
) -> None:
    channel_id = await _sim(make_channel)
    body = event_body(
        "sms.received",
        event_id="e1",
        from_number="+15550001234",
        to_number="+15550100000",
        text="hi",
    )
    headers = {**_signed(body), "content-type": "text/plain"}
    resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=headers)
    assert resp.status_code == 415
    assert resp.json()["error"]["code"] == "unsupported_media_type"
    assert await stored_rows(hub) == EMPTY


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json at all", "JSON"),  # unreadable
        (b'{"event": "sms.received"}', "missing field"),  # required fields missing
        (b'{"event": "sms.exploded", "id": "x1"}', "event"),  # unknown event type
        (b"[1, 2, 3]", "object"),  # JSON but not an object
    ],
)
async def test_malformed_signed_body_is_400_saying_what(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory, body: bytes, words: str
) -> None:
    channel_id = await _sim(make_channel)
    resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=_signed(body))
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "malformed_payload"
    assert words.lower() in error["message"].lower()
    assert await stored_rows(hub) == EMPTY


async def test_disabled_or_deleted_channel_stores_nothing(
    hub: Hub,
    client: httpx.AsyncClient,
    make_channel: ChannelFactory,
    api_headers: dict[str, str],
) -> None:
    channel_id = await _sim(make_channel)
    body = event_body(
        "sms.received",
        event_id="e1",
        from_number="+15550001234",
        to_number="+15550100000",
        text="hi",
    )
    resp = await client.patch(
        f"/api/v1/channels/{channel_id}", json={"enabled": False}, headers=api_headers
    )
    assert resp.status_code == 200
    resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=_signed(body))
    assert resp.status_code == 403
    resp = await client.delete(f"/api/v1/channels/{channel_id}", headers=api_headers)
    assert resp.status_code == 204
    resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=_signed(body))
    assert resp.status_code == 404
    assert await stored_rows(hub) == EMPTY


async def test_inbound_event_is_normalized(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory
) -> None:
    channel_id = await _sim(make_channel)
    body = event_body(
        "sms.received",
        event_id="e-42",
        from_number="(555) 000-1234",  # national format, normalized with the default region
        to_number="+15550100000",
        text="Grüße ✓",
        device_id="phone-1",
        sim_slot=1,
    )
    resp = await client.post(
        f"/webhooks/{channel_id}/incoming", content=body, headers=_signed(body)
    )
    assert resp.status_code == 200
    async with hub.db.read() as session:
        from sqlalchemy import select

        event = (await session.execute(select(Event))).scalar_one()
        message = (await session.execute(select(Message))).scalar_one()
    assert message.from_number == "+15550001234"
    assert message.encoding == "UCS-2"
    assert message.sim_slot == 1
    data = event.payload["data"]
    assert data["from"] == "+15550001234"
    assert data["message_id"] == message.id
    assert data["device_id"] == message.device_id is not None
    assert json.loads(json.dumps(event.payload))["type"] == "sms.received"
