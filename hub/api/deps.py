"""What every API handler shares: the hub, authentication by API key or browser session,
the base controller, and the bounds of query and path parameters."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler
from litestar.params import QueryParameter

from hub.context import Hub
from hub.errors import BadRequest, Unauthorized
from hub.services.apikeys import authenticate
from hub.services.users import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    CsrfFailed,
    csrf_matches,
    load_session,
)


def provide_hub(state: State) -> Hub:
    """The process's hub (set on app state by the composition root)."""
    hub: Hub = state.hub
    return hub


async def require_api_key(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: a live ``Authorization: Bearer <api key>``, or a signed-in browser session.

    A session (cookie) request that changes something must also carry the session's CSRF
    token in ``X-CSRF-Token``; a Bearer request needs none (no browser sends it by itself).
    """
    hub: Hub = connection.app.state.hub
    header = connection.headers.get("authorization", "")
    if not header:
        cookie = connection.cookies.get(SESSION_COOKIE)
        signed_in = await load_session(hub, cookie) if cookie else None
        if signed_in is not None:
            if connection.scope.get("method", "GET") not in SAFE_METHODS and not csrf_matches(
                signed_in.csrf_token, connection.headers.get(CSRF_HEADER)
            ):
                raise CsrfFailed(
                    f"missing or wrong CSRF token: send the page's token in {CSRF_HEADER}"
                )
            connection.state.user_id = signed_in.user_id
            return
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    key_id = await authenticate(hub, token.strip())
    if key_id is None:
        raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
    connection.state.api_key_id = key_id


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The peer address, for log lines."""
    return request.client.host if request.client else "-"


def reject_nul(request: Request[Any, Any, Any]) -> None:
    """Before an API handler: NUL in the path or query is a 400 (PostgreSQL refuses it)."""
    raw = request.scope.get("query_string", b"")
    if b"%00" in raw or b"\x00" in raw or "\x00" in request.url.path or "%00" in request.url.path:
        raise BadRequest("the URL contains a NUL character", code="bad_request")


class ApiController(Controller):
    """Base of the ``/api/v1`` controllers: every route needs an API key or a session."""

    guards = [require_api_key]


#: The largest number an integer path or query parameter may carry: the range of the
#: 32-bit INTEGER columns it is compared with (PostgreSQL refuses more; SQLite past 2^63).
INT32_MAX = 2**31 - 1

#: ``?limit=`` of every list.
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Items per page.")]
