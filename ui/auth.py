"""Who may see a page: the sign-in guard, CSRF checks and the session cookie.

Design (see also :mod:`hub.services.users`):

* **Sessions** are server-side rows; the ``smshub_session`` cookie holds a random token
  (HttpOnly, SameSite=Lax, Secure when ``PUBLIC_URL`` is https, ``Path=/``).
* **CSRF**: every signed-in page embeds its session's CSRF token; forms post it as
  ``_csrf``, htmx and ``fetch`` send it as ``X-CSRF-Token`` (``static/app.js`` adds it).
  The guard refuses any unsafe request whose token does not match, before the handler
  runs. The sign-in and setup forms, which have no session yet, use a double-submit
  cookie (``smshub_csrf``) instead.
* Until the first account exists, every page sends the browser to ``/setup``.
"""

from __future__ import annotations

import secrets
from typing import Any, cast
from urllib.parse import quote

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from hub.context import Hub
from hub.services.users import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    CsrfFailed,
    SignedIn,
    csrf_matches,
    load_session,
    users_exist,
)

#: Cookie of the double-submit token that protects the sign-in and setup forms.
PRE_SESSION_COOKIE = "smshub_csrf"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class LoginRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""


class SetupRequired(Exception):
    """No account exists yet: the browser is sent to the first-start setup."""


def hub_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Hub:
    """The process's hub."""
    hub: Hub = connection.app.state.hub
    return hub


def secure_cookies(hub: Hub) -> bool:
    """Cookies are marked Secure when the hub is reached over https."""
    return hub.settings.public_url.lower().startswith("https://")


async def submitted_csrf(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The CSRF token a request carries: the header, else the form field."""
    given = connection.headers.get(CSRF_HEADER)
    if given:
        return given
    content_type = connection.headers.get("content-type", "")
    if content_type.startswith(_FORM_TYPES):
        form = await cast(Request[Any, Any, Any], connection).form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of every page: a signed-in session, and a matching CSRF token on unsafe methods."""
    hub = hub_of(connection)
    if not await users_exist(hub):
        raise SetupRequired
    signed_in = await load_session(hub, connection.cookies.get(SESSION_COOKIE))
    if signed_in is None:
        raise LoginRequired
    if connection.scope.get("method", "GET") not in SAFE_METHODS and not csrf_matches(
        signed_in.csrf_token, await submitted_csrf(connection)
    ):
        raise CsrfFailed("this form is out of date or was not sent by smshub; reload the page")
    connection.state.user = signed_in


def current_user(request: Request[Any, Any, Any]) -> SignedIn:
    """The signed-in user (set by :func:`require_user`)."""
    user: SignedIn = request.state.user
    return user


def set_session_cookie(response: Response[Any], hub: Hub, token: str) -> None:
    """Attach the session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(hub.settings.session_ttl_s),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(hub),
    )


def clear_session_cookie(response: Response[Any], hub: Hub) -> None:
    """Remove the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/")


def pre_session_token(request: Request[Any, Any, Any]) -> str:
    """The double-submit token of the sign-in / setup form (reused while the cookie lives)."""
    existing = request.cookies.get(PRE_SESSION_COOKIE)
    return existing if existing and 20 <= len(existing) <= 100 else secrets.token_urlsafe(32)


def set_pre_session_cookie(response: Response[Any], hub: Hub, token: str) -> None:
    """Attach the double-submit cookie (strict: never sent cross-site)."""
    response.set_cookie(
        PRE_SESSION_COOKIE,
        token,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(hub),
    )


def pre_session_ok(request: Request[Any, Any, Any], given: str | None) -> bool:
    """The form's token matches the double-submit cookie."""
    cookie = request.cookies.get(PRE_SESSION_COOKIE)
    return bool(cookie) and csrf_matches(cookie or "", given)


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def login_url(request: Request[Any, Any, Any]) -> str:
    """The sign-in page, coming back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login" if here == "/" else f"/login?next={quote(here, safe='')}"
