"""Calling a provider's send API and sorting its failures into retryable or not."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connectors.base import HttpClient, HttpResponse, SendError

#: Longest piece of a provider's error answer quoted in a SendError.
_QUOTE_CHARS = 200


async def call(
    http: HttpClient,
    provider: str,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> HttpResponse:
    """POST once; a transport failure or timeout is a retryable SendError."""
    try:
        return await http.request(
            "POST",
            url,
            headers=headers,
            json=json,
            data=data,
            basic_auth=basic_auth,
            timeout=timeout,
        )
    except TimeoutError as exc:
        raise SendError(f"{provider}: no answer within {timeout:g}s", retryable=True) from exc
    except OSError as exc:
        raise SendError(f"{provider}: network error: {exc}", retryable=True) from exc


def raise_for_status(resp: HttpResponse, provider: str) -> None:
    """Turn a non-2xx answer into a SendError: 408, 429 and 5xx may pass later, others not."""
    if 200 <= resp.status < 300:
        return
    retryable = resp.status in (408, 429) or resp.status >= 500
    reason = error_text(resp)
    if 300 <= resp.status < 400:
        reason = f"redirect to {resp.headers.get('location', '?')} (is base_url right?)"
    raise SendError(
        f"{provider} answered HTTP {resp.status}: {reason}",
        retryable=retryable,
        status_code=resp.status,
    )


def answer_object(resp: HttpResponse, provider: str, *, retryable: bool) -> dict[str, Any]:
    """A 2xx answer's JSON object, or a SendError.

    ``retryable`` says whether sending again is safe when the provider took the request
    but its answer cannot be read (only with an idempotency key).
    """
    try:
        data = json.loads(resp.body)
    except (ValueError, RecursionError) as exc:
        raise SendError(
            f"{provider} answered HTTP {resp.status} with a body that is not JSON "
            f"({_quote(resp.body)}); the SMS may or may not have been taken",
            retryable=retryable,
            status_code=resp.status,
        ) from exc
    if not isinstance(data, dict):
        raise SendError(
            f"{provider} answered HTTP {resp.status} with JSON that is not an object",
            retryable=retryable,
            status_code=resp.status,
        )
    return data


def answer_id(value: object) -> str | None:
    """A provider id from an answer field (string or number), None when absent or odd."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def error_text(resp: HttpResponse) -> str:
    """The provider's own words for an error: its JSON message if any, else the body."""
    try:
        data = json.loads(resp.body)
    except (ValueError, RecursionError):
        return _quote(resp.body) or "(empty body)"
    if isinstance(data, dict):
        for key in ("message", "error", "error-text", "error_message", "detail", "title"):
            value = data.get(key)
            if isinstance(value, str) and value:
                code = data.get("code")
                return f"{value} (code {code})" if code is not None else value
    return _quote(resp.body)


def _quote(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "…"
