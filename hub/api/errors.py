"""Every error leaves as ``{"error": {"code", "message", "details"}}`` with a 4xx/5xx status."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from hub.db import CONTENDED, UNAVAILABLE, is_contended, is_unavailable
from hub.errors import ApiError

log = logging.getLogger("smshub.api")
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response[Any]:
    """The one error body shape."""
    return Response(
        {"error": {"code": code, "message": message, "details": details}},
        status_code=status,
        media_type="application/json",
    )


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return error_response(exc.status_code, exc.code, exc.message, exc.details)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    extra = exc.extra if isinstance(exc.extra, list) else None
    if extra and any(
        isinstance(item, dict) and item.get("key") == "data" and item.get("source") == "body"
        for item in extra
    ):
        return error_response(400, "malformed_body", "request body is missing or not JSON")
    if extra:
        items = [item for item in extra if isinstance(item, dict)]
        details = [
            {"field": str(item.get("key", "")), "message": str(item.get("message", ""))}
            for item in items
        ]
        return error_response(422, "validation_error", _what_is_wrong(items), details)
    return error_response(400, "malformed_body", f"request body cannot be read: {exc.detail}")


def _what_is_wrong(items: list[dict[str, Any]]) -> str:
    """The message of a 422: the parameters that failed, by place and name, or the body."""
    params = []
    for item in items:
        # Litestar tags parameter errors with their place (a ParamType); body errors have none.
        place = getattr(item.get("source"), "value", item.get("source"))
        if place in ("query", "path", "header", "cookie"):
            params.append(f"{place} parameter {item.get('key')!r}: {item.get('message')}")
    return "; ".join(params) if params else "request body does not match the schema"


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status == 400:
        # Litestar raises a bare 400 when the body cannot be decoded at all.
        return error_response(400, "malformed_body", f"request body cannot be read: {exc.detail}")
    code = _HTTP_CODES.get(status, "error")
    return error_response(status, code, str(exc.detail), exc.extra or None)


#: Seconds a client is asked to wait when the database cannot be reached.
RETRY_AFTER_S = 5


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_contended(exc):
        return _contended(request, exc)
    if not is_unavailable(exc):
        return _internal(request, exc)
    reason = type(exc).__name__
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        reason = type(exc.orig).__name__
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, reason)
    response = error_response(
        503,
        "database_unavailable",
        f"the database cannot be reached right now ({reason}); try again in a few seconds",
        {"retry_after_s": RETRY_AFTER_S},
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _contended(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A write that kept losing to concurrent writers: nothing of it was kept; try again."""
    log.warning("write contention on %s %s: %s", request.method, request.url.path, exc)
    response = error_response(
        503,
        "write_contention",
        "the change lost to concurrent writes several times and was not made; try again",
        {"retry_after_s": 1},
    )
    response.headers["Retry-After"] = "1"
    return response


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal server error")


exception_handlers: dict[Any, Any] = {
    ApiError: _api_error,
    ValidationException: _validation,
    HTTPException: _http,
    **{kind: _unavailable for kind in (*UNAVAILABLE, sqlalchemy.exc.DBAPIError)},
    **{kind: _contended for kind in CONTENDED},
    Exception: _internal,
}
