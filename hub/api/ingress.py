"""Gateway webhooks in: ``POST /webhooks/{channel_id}`` (+ ``/incoming``, ``/status``).

Order of checks: unknown channel 404, body too large 413, wrong content type 415, bad
authentication 401, unreadable body 400. Only then is anything stored, in one transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from connectors.base import (
    CanReceive,
    PayloadError,
    SignatureError,
    WebhookPath,
    WebhookRequest,
    constant_time_equals,
)
from hub.api.deps import client_ip
from hub.context import Hub
from hub.errors import (
    ApiError,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from hub.metrics import WEBHOOKS
from hub.services.channels import ChannelRuntime
from hub.services.ingest import ingest_events

log = logging.getLogger("smshub.ingress")


class ChannelDisabled(ApiError):
    status_code = 403
    code = "channel_disabled"


async def _receive(
    hub: Hub, request: Request[Any, Any, Any], channel_id: str, path: WebhookPath
) -> Response[bytes]:
    channel = await hub.channels.get(channel_id)
    if channel is None or not isinstance(channel.connector, CanReceive):
        raise NotFound(
            f"no channel {channel_id!r} receives webhooks here", code="channel_not_found"
        )
    if not channel.enabled:
        raise ChannelDisabled(f"channel {channel_id!r} is disabled")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > hub.settings.max_body_bytes:
        raise PayloadTooLarge(f"body is larger than {hub.settings.max_body_bytes} bytes")
    body = await request.body()
    if len(body) > hub.settings.max_body_bytes:
        raise PayloadTooLarge(f"body is larger than {hub.settings.max_body_bytes} bytes")
    query = {k: v for k, v in request.query_params.items()}
    raw_query = request.url.query
    webhook = WebhookRequest(
        method=request.method,
        url=f"{hub.settings.public_url.rstrip('/')}{request.url.path}"
        + (f"?{raw_query}" if raw_query else ""),
        path=path,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        query=query,
    )
    accepted = channel.connector.content_types
    if webhook.content_type not in accepted:
        raise UnsupportedMediaType(
            f"content type {webhook.content_type or '(none)'!r} not accepted; use "
            + " or ".join(sorted(accepted))
        )
    _authenticate(channel, webhook, client_ip(request), hub.clock())
    try:
        events = channel.connector.parse(channel.config, webhook)
    except PayloadError as exc:
        raise BadRequest(str(exc), code="malformed_payload") from exc
    await ingest_events(hub, channel, events)
    answer = channel.connector.webhook_response(webhook, events)
    WEBHOOKS.labels(channel.connector.name, str(answer.status_code)).inc()
    return Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)


def _authenticate(
    channel: ChannelRuntime, webhook: WebhookRequest, peer: str, now: datetime
) -> None:
    """401 unless the request carries the channel's URL token or a valid signature."""
    if channel.auth_mode == "token":
        given = webhook.query.get("token", "")
        if not channel.url_token or not given or not constant_time_equals(given, channel.url_token):
            log.warning("401 on %s from %s: bad or missing URL token", channel.id, peer)
            raise Unauthorized("missing or wrong token in the webhook URL", code="invalid_token")
        return
    try:
        cast(CanReceive, channel.connector).verify(
            channel.config, channel.signing_secret, webhook, now
        )
    except SignatureError as exc:
        log.warning("401 on %s from %s: %s", channel.id, peer, exc)
        raise Unauthorized(f"signature check failed: {exc}", code="invalid_signature") from exc


@post("/webhooks/{channel_id:str}", status_code=200, include_in_schema=True, tags=["ingress"])
async def webhook(
    hub: NamedDependency[Hub], request: Request[Any, Any, Any], channel_id: FromPath[str]
) -> Response[bytes]:
    """A gateway event (any kind) for a channel."""
    return await _receive(hub, request, channel_id, "")


@post("/webhooks/{channel_id:str}/incoming", status_code=200, tags=["ingress"])
async def webhook_incoming(
    hub: NamedDependency[Hub], request: Request[Any, Any, Any], channel_id: FromPath[str]
) -> Response[bytes]:
    """An incoming SMS, for gateways configured with two URLs."""
    return await _receive(hub, request, channel_id, "incoming")


@post("/webhooks/{channel_id:str}/status", status_code=200, tags=["ingress"])
async def webhook_status(
    hub: NamedDependency[Hub], request: Request[Any, Any, Any], channel_id: FromPath[str]
) -> Response[bytes]:
    """A delivery report, for gateways configured with two URLs."""
    return await _receive(hub, request, channel_id, "status")


route_handlers = [webhook, webhook_incoming, webhook_status]
