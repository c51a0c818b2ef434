"""Gateway webhooks in: ``POST /webhooks/{channel_id}`` (+ ``/incoming``, ``/status``).

A thin adapter: the request becomes an :class:`~hub.services.ingress.IngressRequest`,
``hub.services.ingress`` does the checking, parsing and storing, and its answer goes back.
These are the hottest routes, so the handlers take only the request and read the hub and
the channel id from it: no dependency injection or signature model per webhook (that was
a seventh of ingest's CPU).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from connectors.base import WebhookPath
from hub.api.deps import client_ip
from hub.context import Hub
from hub.services.ingress import IngressRequest, receive_webhook


async def _receive(request: Request[Any, Any, Any], path: WebhookPath) -> Response[bytes]:
    hub: Hub = request.app.state.hub
    channel_id = str(request.path_params["channel_id"])
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
async def webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
    """A gateway event (any kind) for a channel."""
    return await _receive(request, "")


@post("/webhooks/{channel_id:str}/incoming", status_code=200, tags=["ingress"])
async def webhook_incoming(request: Request[Any, Any, Any]) -> Response[bytes]:
    """An incoming SMS, for gateways configured with two URLs."""
    return await _receive(request, "incoming")


@post("/webhooks/{channel_id:str}/status", status_code=200, tags=["ingress"])
async def webhook_status(request: Request[Any, Any, Any]) -> Response[bytes]:
    """A delivery report, for gateways configured with two URLs."""
    return await _receive(request, "status")


route_handlers = [webhook, webhook_incoming, webhook_status]
