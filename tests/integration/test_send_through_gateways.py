"""POST /api/v1/send through each real gateway connector, against a local fake of its API:
the exact request the provider receives, then signed delivery reports moving the message."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa

from connectors import get_connector
from connectors.base import WebhookRequest
from hub.context import Hub
from tests.conftest import ChannelFactory, drain
from tests.fakes.providers import FakeProvider, RecordedRequest

ANN = "+15550001234"
OURS = "+15559876543"
SECRET = "gateway-webhook-secret"
TWILIO_SID = "AC" + "7" * 32


@dataclass
class Gateway:
    """One connector: its channel config, the fake's credentials, what the provider must
    receive, and how it reports a status back."""

    config: dict[str, Any]
    credentials: dict[str, str]
    check: Callable[[RecordedRequest, str], None]
    #: (status word, provider id) -> (path suffix, content type, body)
    report: Callable[[str, str], tuple[str, str, bytes]]
    extra: dict[str, Any] = field(default_factory=dict)


def _check_smsgate(req: RecordedRequest, message_id: str) -> None:
    assert (req.method, req.path) == ("POST", "/3rdparty/v1/messages")
    assert req.basic_auth() == ("u", "p")
    assert req.json() == {
        "textMessage": {"text": "Your table is ready"},
        "phoneNumbers": [ANN],
        "id": message_id,
        "withDeliveryReport": True,
    }


def _report_smsgate(status: str, provider_id: str) -> tuple[str, str, bytes]:
    body = {
        "deviceId": "phone-1",
        "event": f"sms:{status}",
        "id": f"evt-{status}-{provider_id}",
        "payload": {"messageId": provider_id, "sender": OURS, "recipient": ANN, "simNumber": 1},
        "webhookId": "wh",
    }
    return "", "application/json", json.dumps(body).encode()


def _check_mysmsgate(req: RecordedRequest, message_id: str) -> None:
    assert (req.method, req.path) == ("POST", "/api/v1/send")
    assert req.headers["authorization"] == "Bearer k"
    assert req.json() == {"to": ANN, "message": "Your table is ready"}


def _report_mysmsgate(status: str, provider_id: str) -> tuple[str, str, bytes]:
    body = {
        "message_id": provider_id,
        "to": ANN,
        "status": status,
        "status_text": status.upper(),
        "device_id": "phone-1",
        "sim_slot": 0,
        "refunded": False,
        "timestamp": int(datetime.now(UTC).timestamp()),
    }
    return "/status", "application/json", json.dumps(body).encode()


def _check_twilio(req: RecordedRequest, message_id: str) -> None:
    assert (req.method, req.path) == ("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    assert req.basic_auth() == (TWILIO_SID, "t" * 32)
    channel_id = req.form()["StatusCallback"].split("/webhooks/")[1].split("/")[0]
    assert req.form() == {
        "To": ANN,
        "From": OURS,
        "Body": "Your table is ready",
        "StatusCallback": f"http://testserver.local/webhooks/{channel_id}/status",
    }


def _report_twilio(status: str, provider_id: str) -> tuple[str, str, bytes]:
    params = {
        "MessageSid": provider_id,
        "MessageStatus": status,
        "To": ANN,
        "From": OURS,
        "AccountSid": TWILIO_SID,
    }
    return "/status", "application/x-www-form-urlencoded", urlencode(params).encode()


def _check_vonage(req: RecordedRequest, message_id: str) -> None:
    assert (req.method, req.path) == ("POST", "/sms/json")
    sent = (
        req.json()
        if req.headers.get("content-type", "").startswith("application/json")
        else req.form()
    )
    channel_id = sent["callback"].split("/webhooks/")[1].split("/")[0]
    assert sent == {
        "api_key": "k",
        "api_secret": "s",
        "from": OURS.removeprefix("+"),  # Vonage takes numbers as digits
        "to": ANN.removeprefix("+"),
        "text": "Your table is ready",
        "client-ref": message_id,
        "callback": f"http://testserver.local/webhooks/{channel_id}/status",
    }


def _report_vonage(status: str, provider_id: str) -> tuple[str, str, bytes]:
    body = {
        "msisdn": ANN.removeprefix("+"),
        "to": OURS,
        "messageId": provider_id,
        "status": status,
        "err-code": "0",
    }
    return "/status", "application/json", json.dumps(body).encode()


GATEWAYS = {
    "smsgate": Gateway(
        {"mode": "private", "username": "u", "password": "p"},
        {"username": "u", "password": "p"},
        _check_smsgate,
        _report_smsgate,
    ),
    "mysmsgate": Gateway({"api_key": "k"}, {"api_key": "k"}, _check_mysmsgate, _report_mysmsgate),
    "twilio": Gateway(
        {"account_sid": TWILIO_SID, "auth_token": "t" * 32, "from_number": OURS},
        {"account_sid": TWILIO_SID, "auth_token": "t" * 32},
        _check_twilio,
        _report_twilio,
    ),
    "vonage": Gateway(
        {"api_key": "k", "api_secret": "s", "from_number": OURS, "signature_method": "sha256"},
        {"api_key": "k", "api_secret": "s"},
        _check_vonage,
        _report_vonage,
    ),
}


async def _post_report(
    hub: Hub,
    client: httpx.AsyncClient,
    connector: str,
    channel_id: str,
    status: str,
    provider_id: str,
) -> None:
    suffix, content_type, body = GATEWAYS[connector].report(status, provider_id)
    path = f"/webhooks/{channel_id}{suffix}"
    runtime = await hub.channels.get(channel_id)
    assert runtime is not None
    unsigned = WebhookRequest(
        method="POST",
        url=f"{hub.settings.public_url}{path}",
        path=suffix.strip("/"),  # type: ignore[arg-type]
        headers={"content-type": content_type},
        body=body,
    )
    signed = get_connector(connector).sign(  # type: ignore[attr-defined]
        runtime.config, runtime.signing_secret, unsigned, datetime.now(UTC)
    )
    query = signed.url.partition("?")[2]
    resp = await client.post(
        path + (f"?{query}" if query else ""), content=signed.body, headers=dict(signed.headers)
    )
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("connector", sorted(GATEWAYS))
async def test_send_hands_the_provider_the_documented_request_and_reports_move_it(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    make_channel: ChannelFactory,
    connector: str,
) -> None:
    gateway = GATEWAYS[connector]
    async with FakeProvider(connector, **gateway.credentials) as fake:  # type: ignore[arg-type]
        channel = await make_channel(
            connector,
            config={**gateway.config, "base_url": fake.base_url},
            webhook_secret=SECRET,
            phone_number=OURS,
        )
        resp = await client.post(
            "/api/v1/send",
            json={"to": ANN, "message": "Your table is ready", "channel_id": channel.id},
            headers=api_headers,
        )
        assert resp.status_code == 202, resp.text
        message_id = resp.json()["id"]
        await drain(hub)
        assert len(fake.requests) == 1
        gateway.check(fake.requests[0], message_id)

        message = (await client.get(f"/api/v1/messages/{message_id}", headers=api_headers)).json()
        provider_id = message["provider_message_id"]
        assert provider_id and message["status"] in ("accepted", "sent")
        await _post_report(hub, client, connector, channel.id, "delivered", provider_id)
        await drain(hub)
        delivered = (await client.get(f"/api/v1/messages/{message_id}", headers=api_headers)).json()
        assert delivered["status"] == "delivered"
        assert [h["status"] for h in delivered["history"]][-1] == "delivered"
        assert [h["status"] for h in delivered["history"]][:2] == ["queued", "sending"]

        sent_word = {
            "smsgate": "sent",
            "mysmsgate": "sent",
            "twilio": "sent",
            "vonage": "accepted",
        }[connector]
        await _post_report(hub, client, connector, channel.id, sent_word, provider_id)  # late
        await drain(hub)
        after = (await client.get(f"/api/v1/messages/{message_id}", headers=api_headers)).json()
        assert after["status"] == "delivered" and after["history"] == delivered["history"]
        assert len(fake.requests) == 1  # nothing was sent twice


async def test_a_mysmsgate_refund_reaches_the_failed_event(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    make_channel: ChannelFactory,
) -> None:
    """MySMSGate's ``refunded`` on a failed report is the ``sms.failed`` event's
    ``refunded`` (and so what a MySMSGate-format endpoint posts); ``refunded: false`` stays
    false."""
    gateway = GATEWAYS["mysmsgate"]
    async with FakeProvider("mysmsgate", **gateway.credentials) as fake:  # type: ignore[arg-type]
        channel = await make_channel(
            "mysmsgate",
            config={**gateway.config, "base_url": fake.base_url},
            webhook_secret=SECRET,
            phone_number=OURS,
        )
        sent = await client.post(
            "/api/v1/send",
            json={"to": ANN, "message": "Your table is ready", "channel_id": channel.id},
            headers=api_headers,
        )
        message_id = sent.json()["id"]
        await drain(hub)
        message = (await client.get(f"/api/v1/messages/{message_id}", headers=api_headers)).json()
        provider_id = message["provider_message_id"]
        await _post_report(hub, client, "mysmsgate", channel.id, "sent", provider_id)
        runtime = await hub.channels.get(channel.id)
        assert runtime is not None
        body = json.dumps(
            {
                "message_id": provider_id,
                "to": ANN,
                "status": "failed",
                "status_text": "RECIPIENT_UNREACHABLE",
                "device_id": "phone-1",
                "sim_slot": 0,
                "refunded": True,
                "timestamp": int(datetime.now(UTC).timestamp()),
            }
        ).encode()
        unsigned = WebhookRequest(
            method="POST",
            url=f"{hub.settings.public_url}/webhooks/{channel.id}/status",
            path="status",
            headers={"content-type": "application/json"},
            body=body,
        )
        signed = get_connector("mysmsgate").sign(  # type: ignore[attr-defined]
            runtime.config, runtime.signing_secret, unsigned, datetime.now(UTC)
        )
        resp = await client.post(
            f"/webhooks/{channel.id}/status", content=signed.body, headers=dict(signed.headers)
        )
        assert resp.status_code == 200, resp.text
        await drain(hub)
    async with hub.db.read() as session:
        rows = await session.execute(
            # The public events (the gateway's own report rows carry the message id too).
            sa.text("SELECT type, payload FROM events WHERE dedupe_key LIKE :k"),
            {"k": f"status:{message_id}:%"},
        )
        found = {row[0]: row[1] for row in rows}
    payload = {k: json.loads(v) if isinstance(v, str) else v for k, v in found.items()}
    assert payload["sms.failed"]["data"]["refunded"] is True
    assert payload["sms.sent"]["data"]["refunded"] is False
