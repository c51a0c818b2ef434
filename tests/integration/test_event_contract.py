"""The public event contract end to end: an inbound SMS from every gateway connector,
forwarded to a webhook endpoint and by a flow's http.request, names the phone the gateway
said it came through (``device.gateway_id``) and the channel."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from connectors import get_connector, simulator
from connectors.base import WebhookRequest
from hub.context import Hub
from tests.conftest import ChannelFactory, drain
from tests.fakes.sink import Sink

SENDER = "+15550001234"
OURS = "+15559876543"
TEXT = "hello there"


def inbound_webhook(connector: str, url: str, device: str | None) -> WebhookRequest:
    """An incoming-SMS webhook as ``connector``'s gateway posts it (unsigned)."""
    as_json = {"content-type": "application/json"}
    if connector == "simulator":
        body = simulator.event_body(
            "sms.received",
            event_id="e1",
            from_number=SENDER,
            to_number=OURS,
            text=TEXT,
            device_id=device,
        )
        return WebhookRequest("POST", url, "", as_json, body)
    if connector == "mysmsgate":
        body = {"from": SENDER, "to": OURS, "message": TEXT, "device_id": device, "sim_slot": 1}
        body["timestamp"] = int(datetime.now(UTC).timestamp())
        return WebhookRequest(
            "POST", url + "/incoming", "incoming", as_json, json.dumps(body).encode()
        )
    if connector == "smsgate":
        envelope = {
            "deviceId": device,
            "event": "sms:received",
            "id": "e1",
            "payload": {"messageId": "m1", "message": TEXT, "sender": SENDER, "recipient": OURS},
            "webhookId": "w1",
        }
        return WebhookRequest("POST", url, "", as_json, json.dumps(envelope).encode())
    if connector == "twilio":
        form = {"MessageSid": "SM1", "From": SENDER, "To": OURS, "Body": TEXT, "NumMedia": "0"}
        as_form = {"content-type": "application/x-www-form-urlencoded"}
        return WebhookRequest(
            "POST", url + "/incoming", "incoming", as_form, urlencode(form).encode()
        )
    params = {"msisdn": SENDER[1:], "to": OURS[1:], "messageId": "m1", "text": TEXT, "type": "text"}
    return WebhookRequest("POST", url, "", as_json, json.dumps(params).encode())


#: connector → (channel config, the device id its gateway sends; None: it has no devices)
GATEWAYS: dict[str, tuple[dict[str, Any], str | None]] = {
    "simulator": ({"phone_number": OURS}, "sim-phone-7"),
    "mysmsgate": ({"api_key": "k"}, "a3f1c2d4-mysmsgate-device"),
    "smsgate": ({"mode": "cloud", "username": "u", "password": "p"}, "ffffffffceb0b1db0000018e"),
    "twilio": ({"account_sid": "AC" + "0" * 32, "auth_token": "t" * 32, "from_number": OURS}, None),
    "vonage": ({"api_key": "k", "api_secret": "s", "signature_method": "sha256"}, None),
}


async def post_signed(
    hub: Hub, client: httpx.AsyncClient, channel_id: str, request: WebhookRequest
) -> None:
    runtime = await hub.channels.get(channel_id)
    assert runtime is not None
    signed = get_connector(runtime.connector.name).sign(  # type: ignore[attr-defined]
        runtime.config, runtime.signing_secret, request, datetime.now(UTC)
    )
    path = signed.url.removeprefix(hub.settings.public_url)
    resp = await client.post(path, content=signed.body, headers=dict(signed.headers))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("connector", sorted(GATEWAYS))
async def test_an_inbound_sms_names_the_gateways_device_and_the_channel(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    make_channel: ChannelFactory,
    connector: str,
) -> None:
    config, device = GATEWAYS[connector]
    async with Sink("/endpoint") as endpoint, Sink("/zap") as zap:
        made = await client.post(
            "/api/v1/endpoints",
            json={"url": endpoint.url, "event_types": ["sms.received"]},
            headers=api_headers,
        )
        assert made.status_code == 201, made.text
        flow = {
            "name": "forward everything",
            "nodes": [
                {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
                {"id": "zap", "type": "http.request", "config": {"url": zap.url}},
            ],
            "edges": [{"from": "start", "to": "zap"}],
        }
        published = await client.post(
            "/api/v1/flows/import?publish=true", json=flow, headers=api_headers
        )
        assert published.status_code == 201, published.text
        channel = await make_channel(
            connector, name=f"{connector} phone", config=config, webhook_secret="s3cret-s3cret"
        )
        url = f"{hub.settings.public_url}/webhooks/{channel.id}"
        await post_signed(hub, client, channel.id, inbound_webhook(connector, url, device))
        await drain(hub)

        forwarded = [endpoint.requests[-1].json(), zap.requests[-1].json()]
    for event in forwarded:
        assert event["type"] == "sms.received"
        data = event["data"]
        assert data["device"]["gateway_id"] == device
        assert data["channel"] == {
            "id": channel.id,
            "name": f"{connector} phone",
            "connector": connector,
        }
        assert (data["from"], data["body"]) == (SENDER, TEXT)
        # device_id stays the hub's own id, as before, and is the device's id.
        assert data["device_id"] == data["device"]["id"]
        assert (data["device_id"] is None) is (device is None)
