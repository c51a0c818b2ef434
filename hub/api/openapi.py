"""The OpenAPI document: the API key scheme, and the one error shape on every route.

Litestar describes errors as its own ``{status_code, detail, extra}``; the hub answers
``{"error": {code, message, details}}`` (``hub.schemas.ErrorOut``, hub/api/errors.py).
:func:`declare_auth_and_errors` walks the app's routes once it is built and gives each
handler the security requirement of its guard and an ``ErrorOut`` response for each error
it can answer, so a route added anywhere is documented the same way without declaring it.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, Example, SecurityScheme
from litestar.routes import HTTPRoute

from hub import version
from hub.api.deps import require_api_key
from hub.schemas import ErrorOut
from hub.services.users import SESSION_COOKIE

#: Name of the API key scheme in ``components.securitySchemes``.
BEARER = "bearerAuth"
#: Name of the browser-session scheme (the UI's cookie, with X-CSRF-Token on changes).
SESSION = "sessionCookie"

#: What each error status means, as the response's description.
ERRORS = {
    400: "malformed_body / bad_request: the request cannot be read (not JSON, NUL in the URL)",
    401: "missing_api_key / invalid_api_key: no, a wrong or a revoked API key",
    403: "csrf_failed: a session request that changes something without X-CSRF-Token",
    404: "not_found: no such object",
    422: "validation_error: a field or parameter is wrong (details name each one)",
    503: (
        "database_unavailable: the database cannot be reached; write_contention: the change "
        "lost to concurrent writes and was not made; retry after Retry-After"
    ),
}

#: Errors of the routes that read the request themselves, by tag (hub/services/ingress.py
#: checks a gateway webhook in this order: 404, 403, 413, 415, 401, 400).
TAG_ERRORS: dict[str, dict[int, str]] = {
    "ingress": {
        400: "malformed_payload: the gateway's body cannot be read as its events",
        401: "invalid_signature / invalid_token: signature or URL token wrong or missing",
        403: "channel_disabled: the channel is disabled",
        404: "channel_not_found: no such channel",
        413: "payload_too_large: the body is over 1 MiB",
        415: "unsupported_media_type: not the content type the connector reads",
    },
}


def openapi_config() -> OpenAPIConfig:
    """The document's title, version, path and the two ways to authenticate."""
    return OpenAPIConfig(
        title="smshub",
        version=version(),
        path="/schema",
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API key (`smshub apikey create`), as `Bearer shk_…`.",
                ),
                SESSION: SecurityScheme(
                    type="apiKey",
                    security_scheme_in="cookie",
                    name=SESSION_COOKIE,
                    description="A signed-in browser; unsafe methods also need X-CSRF-Token.",
                ),
            }
        ),
    )


def declare_auth_and_errors(app: Litestar) -> None:
    """Give every documented route its security requirement and its error responses."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.resolve_include_in_schema():
                _declare(handler, route)


def _declare(handler: HTTPRouteHandler, route: HTTPRoute) -> None:
    guarded = require_api_key in handler.resolve_guards()
    if guarded:
        handler.security = [{BEARER: []}, {SESSION: []}]
    statuses = {503}
    if guarded:
        statuses |= {401, 403}
    if route.path_parameters:
        statuses |= {400, 404}
    if set(handler.parsed_fn_signature.parameters) - _INJECTED:
        statuses |= {400, 422}  # a body, query or path parameter Litestar validates
    meanings = dict(ERRORS)
    for tag in handler.resolve_tags():
        meanings.update(TAG_ERRORS.get(tag, {}))
        statuses |= set(TAG_ERRORS.get(tag, {}))
    declared = dict(handler.responses or {})
    for status in sorted(statuses):
        declared.setdefault(status, _error_response(meanings[status]))
    handler.responses = declared


def _error_response(description: str) -> ResponseSpec:
    code, _, meaning = description.partition(": ")
    example = {"error": {"code": code.split(" / ")[0], "message": meaning, "details": None}}
    return ResponseSpec(
        data_container=ErrorOut,
        description=description,
        generate_examples=False,
        examples=[Example(summary=code, value=example)],
    )


#: Handler parameters Litestar injects (not taken from the request).
_INJECTED = frozenset({"hub", "request", "state", "scope", "socket", "headers", "cookies"})
