"""Ingress: one gateway webhook request verified, parsed, stored, answered.

The web framework stays outside: ``hub/api/ingress.py`` turns a Litestar request into an
:class:`IngressRequest`, and the UI's simulator builds one directly — both take exactly
this path. Order of checks: unknown channel 404, disabled channel 403, body too large
413, wrong content type 415, bad authentication 401, unreadable body 400. Only then is
anything stored (``hub.services.ingest``, one group-committed transaction), and only
after that is the gateway answered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from connectors.base import (
    CanReceive,
    PayloadError,
    SignatureError,
    WebhookPath,
    WebhookRequest,
    WebhookResponse,
    constant_time_equals,
)
from hub.context import ChannelRuntime, Hub
from hub.errors import (
    ApiError,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from hub.logs import log_context
from hub.metrics import UNKNOWN_CONNECTOR, WEBHOOKS
from hub.services.ingest import ingest_events

log = logging.getLogger("smshub.ingress")


class ChannelDisabled(ApiError):
    status_code = 403
    code = "channel_disabled"


@dataclass(frozen=True)
class IngressRequest:
    """A gateway's webhook request, independent of the web framework."""

    channel_id: str
    #: Which of the channel's URLs was called: "" (any event), "incoming" or "status".
    path: WebhookPath
    method: str
    #: The URL as the gateway called it: the public base URL, path and query (Twilio
    #: signs it).
    url: str
    #: Header names in lower case.
    headers: Mapping[str, str]
    query: Mapping[str, str]
    #: The peer's address, for log lines about refused requests.
    peer: str
    #: Reads the body; called only once the channel is known and the size allowed.
    read_body: Callable[[], Awaitable[bytes]]


async def receive_webhook(hub: Hub, request: IngressRequest) -> WebhookResponse:
    """Check, parse and store one webhook request; the answer the gateway gets (counted in
    ``smshub_webhooks_total``, refusals and failures too)."""
    connector = UNKNOWN_CONNECTOR
    try:
        channel = await _receiving_channel(hub, request.channel_id)
        connector = channel.connector.name
        with log_context(channel_id=channel.id):
            answer = await _checked_and_stored(hub, channel, request)
    except ApiError as exc:
        WEBHOOKS.labels(connector, str(exc.status_code)).inc()
        raise
    except Exception:  # 503 while the database is away, 500 for a bug (hub.api.errors)
        WEBHOOKS.labels(connector, "5xx").inc()
        raise
    WEBHOOKS.labels(connector, str(answer.status_code)).inc()
    return answer


async def _checked_and_stored(
    hub: Hub, channel: ChannelRuntime, request: IngressRequest
) -> WebhookResponse:
    """Enabled, size, content type, authentication, parse, store; the connector's answer."""
    if not channel.enabled:
        raise ChannelDisabled(f"channel {channel.id!r} is disabled")
    limit = hub.settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    body = await request.read_body()
    if len(body) > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    webhook = WebhookRequest(
        method=request.method,
        url=request.url,
        path=request.path,
        headers=dict(request.headers),
        body=body,
        query=dict(request.query),
    )
    accepted = channel.connector.content_types
    if webhook.content_type not in accepted:
        raise UnsupportedMediaType(
            f"content type {webhook.content_type or '(none)'!r} not accepted; use "
            + " or ".join(sorted(accepted))
        )
    _authenticate(channel, webhook, request.peer, hub.clock())
    try:
        events = cast(CanReceive, channel.connector).parse(channel.config, webhook)
    except PayloadError as exc:
        raise BadRequest(str(exc), code="malformed_payload") from exc
    await ingest_events(hub, channel, events)
    return channel.connector.webhook_response(webhook, events)


async def _receiving_channel(hub: Hub, channel_id: str) -> ChannelRuntime:
    """The channel, if it exists and receives webhooks (404 otherwise)."""
    channel = await hub.channels.get(channel_id)
    if channel is None or not channel.can_receive:
        raise NotFound(
            f"no channel {channel_id!r} receives webhooks here", code="channel_not_found"
        )
    return channel


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
