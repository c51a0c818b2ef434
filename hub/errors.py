"""Errors the services raise on purpose; the API turns them into JSON error answers."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A client-facing error: HTTP status, a stable code and a message saying what is wrong."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class BadRequest(ApiError):
    status_code = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = "unsupported_media_type"


class Unprocessable(ApiError):
    status_code = 422
    code = "validation_error"


def pydantic_details(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's error list reduced to what a client needs: where and what."""
    return [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
        for err in errors
    ]
