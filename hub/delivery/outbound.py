"""One guarded HTTP request to a user URL, measured and summarised; no retries here.

Webhook deliveries and the flow node ``http.request`` both end up in :func:`perform`:
the URL is checked (:mod:`hub.delivery.ssrf`), the request goes through the HTTP
client's guarded pool (addresses checked at connect time), redirects are not followed,
and the answer is cut to 64 KiB. Callers get a :class:`RequestOutcome` whatever happens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.columns import utcnow
from hub.context import Hub
from hub.delivery import presets
from hub.delivery.signing import SECRET_PREFIX, sign_headers
from hub.delivery.ssrf import BlockedDestination, Policy, check_url
from hub.http_client import DestinationRefused

#: Response bytes kept (on the attempt, or handed to the flow).
MAX_RESPONSE_BYTES = 64 * 1024
#: Methods a user request may use.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
#: Who we say we are.
USER_AGENT = "smshub-webhooks/0.1"


@dataclass(frozen=True, kw_only=True)
class RequestOutcome:
    """What came back: ``status`` None and ``error`` set when no HTTP answer came back."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The first 64 KiB of the body, decoded as UTF-8 (bad bytes replaced).
    body: str = ""
    truncated: bool = False
    error: str | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


#: Policies built so far, by the settings object they come from (settings never change).
_POLICIES: dict[int, tuple[object, Policy]] = {}


def policy_of(hub: Hub) -> Policy:
    """The SSRF policy of this hub's settings (built once per settings object)."""
    found = _POLICIES.get(id(hub.settings))
    if found is None or found[0] is not hub.settings:
        found = (hub.settings, Policy.from_settings(hub.settings))
        _POLICIES[id(hub.settings)] = found
    return found[1]


async def send_request(
    hub: Hub,
    *,
    url: str,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    preset: str = "generic",
    timeout_s: float = 15.0,
    sign: tuple[str, str] | None = None,
) -> RequestOutcome:
    """One guarded request for the flow engine: preset shaping, SSRF guard, no retries.

    ``sign`` = (webhook id, ``whsec_`` secret) adds Standard Webhooks headers over the body.

    ``body``: None sends no body; ``str``/``bytes`` are sent as they are; anything else is
    shaped by ``preset`` and sent as JSON (``Content-Type: application/json`` unless the
    caller set a content type).
    """
    method = method.upper()
    if method not in METHODS:
        return RequestOutcome(status=None, error=f"method {method!r} is not allowed")
    all_headers = {"User-Agent": USER_AGENT, **dict(headers or {})}
    content: bytes | None
    if body is None:
        content = None
    elif isinstance(body, bytes):
        content = body
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = json.dumps(
            presets.shape_body(preset, body), separators=(",", ":"), ensure_ascii=False
        ).encode()
        if not any(name.lower() == "content-type" for name in all_headers):
            all_headers["Content-Type"] = "application/json"
    if sign is not None:
        webhook_id, secret = sign
        signed = (content or b"").decode("utf-8", "replace")
        all_headers.update(sign_headers(webhook_id, utcnow(), signed, [secret]))
        if content is not None and signed.encode() != content:
            content = signed.encode()  # sign exactly the bytes sent
    return await perform(
        hub, method=method, url=url, headers=all_headers, content=content, timeout_s=timeout_s
    )


async def perform(
    hub: Hub,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    content: bytes | None,
    timeout_s: float,
) -> RequestOutcome:
    """Check the URL, send, and summarise the answer or the failure."""
    policy = policy_of(hub)
    started = time.monotonic()
    try:
        target = check_url(url, policy)
        response, truncated = await hub.http.guarded_request(
            method,
            target.url,
            guard=policy,
            headers=headers,
            content=content,
            timeout=timeout_s,
            max_body=MAX_RESPONSE_BYTES,
        )
    except (BlockedDestination, DestinationRefused) as exc:
        return _failed(f"refused: {exc}", started)
    except TimeoutError:
        return _failed(f"timeout: no answer within {timeout_s:g} s", started)
    except OSError as exc:
        return _failed(f"connection failed: {exc}", started)
    except Exception as exc:  # anything else is still an answer for the caller to record
        return _failed(f"request failed: {type(exc).__name__}: {exc}", started)
    return RequestOutcome(
        status=response.status,
        headers=response.headers,
        body=clean_text(response.body.decode("utf-8", errors="replace")),
        truncated=truncated,
        duration_ms=_elapsed_ms(started),
    )


def clean_text(text: str) -> str:
    """Text safe for every database: PostgreSQL refuses NUL characters in text columns."""
    return text.replace("\x00", "\ufffd")


def _failed(error: str, started: float) -> RequestOutcome:
    return RequestOutcome(status=None, error=clean_text(error), duration_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def flow_signing_secret(hub: Hub) -> str:
    """The ``whsec_`` secret every flow ``http.request`` is signed with (derived from the
    hub's SECRET_KEY: stable across restarts and processes, nothing stored)."""
    import base64

    return SECRET_PREFIX + base64.b64encode(hub.box.derive("flow-http-signing", 32)).decode()
