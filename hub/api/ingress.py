"""Gateway webhooks in: ``POST /webhooks/{channel_id}`` (+ ``/incoming``, ``/status``).

A thin adapter: the request becomes an :class:`~hub.services.ingress.IngressRequest`,
``hub.services.ingress`` does the checking, parsing and storing, and its answer goes back.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from connectors.base import WebhookPath
from hub.api.deps import client_ip
from hub.context import Hub
from hub.services.ingress import IngressRequest, receive_webhook


async def _receive(
    hub: Hub, request: Request[Any, Any, Any], channel_id: str, path: WebhookPath
) -> Response[bytes]:
    raw_query = request.url.query
    answer = await receive_webhook(
        hub,
        IngressRequest(
            channel_id=channel_id,
            path=path,
            method=request.method,
            url=f"{hub.settings.public_url.rstrip('/')}{request.url.path}"
            + (f"?{raw_query}" if raw_query else ""),
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params.items()),
            peer=client_ip(request),
            read_body=request.body,
        ),
    )
    return Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)


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
