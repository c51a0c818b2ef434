"""Handler dependencies: the hub and API-key authentication."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler

from hub.context import Hub
from hub.errors import Unauthorized
from hub.services.apikeys import authenticate


def provide_hub(state: State) -> Hub:
    """The process's hub (set on app state by the composition root)."""
    hub: Hub = state.hub
    return hub


async def require_api_key(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: a live ``Authorization: Bearer <api key>``."""
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    hub: Hub = connection.app.state.hub
    key_id = await authenticate(hub, token.strip())
    if key_id is None:
        raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
    connection.state.api_key_id = key_id


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The peer address, for log lines."""
    return request.client.host if request.client else "-"
