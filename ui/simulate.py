""" "Simulate inbound SMS": a signed simulator webhook, handed to the real ingress service.

The request is built as the simulator app would post it and given to
``hub.services.ingress`` directly (no HTTP round trip), so it takes the same path as a
phone's: channel lookup, signature and timestamp check, parsing, the one-transaction
ingest, then dispatch to flows.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from connectors.simulator import event_body, sign_request
from hub.context import Hub
from hub.errors import ApiError, Unprocessable
from hub.ids import new_id
from hub.phone import InvalidNumber, to_e164
from hub.services.ingress import IngressRequest, receive_webhook
from hub.services.sending import MAX_TEXT_CHARS


def _field(field: str, message: str) -> Unprocessable:
    return Unprocessable(message, details=[{"field": field, "message": message}])


async def simulator_channels(hub: Hub) -> list[Any]:
    """Live simulator channels (the ones a simulated SMS can arrive on)."""
    from hub.services.channels import list_channels

    return [c for c in await list_channels(hub) if c.connector == "simulator" and c.enabled]


async def simulate_inbound(hub: Hub, *, channel_id: str, sender: str, text: str) -> str:
    """Post a signed ``sms.received`` to the channel's webhook; returns the sender's E.164."""
    channel = await hub.channels.get(channel_id) if channel_id else None
    if channel is None or channel.connector.name != "simulator":
        raise _field("channel_id", "pick a simulator channel")
    if not channel.enabled:
        raise _field("channel_id", "this channel is disabled")
    try:
        phone = to_e164(sender, hub.settings.default_region)
    except InvalidNumber as exc:
        raise _field("from", str(exc)) from exc
    if not text.strip():
        raise _field("text", "type the message the phone receives")
    if len(text) > MAX_TEXT_CHARS:
        raise _field("text", f"use at most {MAX_TEXT_CHARS} characters")
    config = channel.config
    body = event_body(
        "sms.received",
        event_id=new_id("sim"),
        from_number=phone,
        to_number=channel.phone_number or str(getattr(config, "phone_number", "")),
        text=text,
        device_id=str(getattr(config, "device_id", "")) or None,
        sim_slot=0,
    )
    headers = {
        "content-type": "application/json",
        **sign_request(channel.webhook_secret or "", body, hub.clock()),
    }
    query = (
        {"token": channel.url_token} if channel.auth_mode == "token" and channel.url_token else {}
    )

    async def read_body() -> bytes:
        return body

    path = f"/webhooks/{channel.id}"
    request = IngressRequest(
        channel_id=channel.id,
        path="",
        method="POST",
        url=f"{hub.settings.public_url.rstrip('/')}{path}"
        + (f"?{urlencode(query)}" if query else ""),
        headers={k.lower(): v for k, v in {**headers, "content-length": str(len(body))}.items()},
        query=query,
        peer="simulator (browser UI)",
        read_body=read_body,
    )
    try:
        answer = await receive_webhook(hub, request)
    except ApiError as exc:
        raise Unprocessable(f"the webhook answered {exc.status_code}: {exc.message}") from exc
    if answer.status_code != 200:
        raise Unprocessable(f"the webhook answered {answer.status_code}: {answer.body[:300]!r}")
    return phone
