"""Endpoints: create, change, delete, rotate secrets; REST Hook subscriptions are endpoints too.

Everything a user can get wrong is checked here, before anything is stored, and refused
with a 422 that names the field: the URL (shape, SSRF guard after DNS resolution, the
preset's service), the event types and the extra headers.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.columns import utcnow
from hub.context import Hub
from hub.delivery import presets
from hub.delivery.models import Delivery, Endpoint
from hub.delivery.outbound import policy_of
from hub.delivery.signing import is_valid_secret, new_secret
from hub.delivery.ssrf import BlockedDestination, check_url
from hub.errors import NotFound, Unprocessable
from hub.event_data import EVENT_TYPES
from hub.http_client import DestinationRefused
from hub.ids import new_id
from hub.paging import keyset_page

#: Seconds the DNS check at creation may take (an unresolvable host is checked at send time).
DNS_CHECK_TIMEOUT_S = 5.0
#: Extra headers per endpoint.
MAX_HEADERS = 20
#: Headers the hub sets itself; an endpoint may not override them.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: Shown instead of header values.
MASK = "********"


def field_error(field: str, message: str, code: str = "validation_error") -> Unprocessable:
    """A 422 naming the field."""
    return Unprocessable(message, code=code, details=[{"field": field, "message": message}])


# --- validation ----------------------------------------------------------------------------


async def check_destination(hub: Hub, url: str, preset: str, *, field: str = "url") -> str:
    """The URL, stripped, if it passes the SSRF guard and looks like the preset's service."""
    policy = policy_of(hub)
    try:
        target = check_url(url, policy)
    except BlockedDestination as exc:
        raise field_error(field, str(exc), "destination_refused") from exc
    problems = presets.check_url(preset, url)
    if problems:
        raise field_error(field, "; ".join(problems), "url_does_not_match_preset")
    if target.ip is None and not policy.allow_private and not policy.host_allowed(target.host):
        try:
            await asyncio.wait_for(
                hub.http.resolve_checked(target.host, target.port, policy), DNS_CHECK_TIMEOUT_S
            )
        except DestinationRefused as exc:
            raise field_error(field, str(exc), "destination_refused") from exc
        except (OSError, TimeoutError):
            pass  # no DNS answer yet: the guard checks again on every connection
    return url.strip()


def check_event_types(types: list[str], field: str = "event_types") -> list[str]:
    """Known event types, without duplicates; ["*"] alone means all."""
    clean: list[str] = []
    for item in types:
        name = item.strip() if isinstance(item, str) else ""
        if name != "*" and name not in EVENT_TYPES:
            raise field_error(
                field,
                f"unknown event type {item!r}; use '*' or any of {', '.join(EVENT_TYPES)}",
                "unknown_event_type",
            )
        if name not in clean:
            clean.append(name)
    return ["*"] if "*" in clean else clean


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Extra headers that are valid HTTP and do not override the hub's own."""
    if len(headers) > MAX_HEADERS:
        raise field_error("headers", f"at most {MAX_HEADERS} extra headers")
    clean: dict[str, str] = {}
    for name, value in headers.items():
        name = name.strip()
        if not _TOKEN.match(name):
            raise field_error("headers", f"{name!r} is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise field_error("headers", f"{name} is set by the hub and cannot be overridden")
        if len(value) > 4000 or any(ch in value for ch in "\r\n\x00"):
            raise field_error("headers", f"the value of {name} is too long or contains line breaks")
        clean[name] = value
    return clean


# --- reading -------------------------------------------------------------------------------


def plausible_id(value: str) -> bool:
    """False for a string that cannot be one of our ids (a NUL would upset PostgreSQL)."""
    return bool(_ID.match(value))


async def get_endpoint_row(session: AsyncSession, endpoint_id: str) -> Endpoint:
    """A live endpoint or 404."""
    row = await session.get(Endpoint, endpoint_id) if plausible_id(endpoint_id) else None
    if row is None or row.deleted_at is not None:
        raise NotFound(f"no endpoint {endpoint_id[:64]!r}", code="endpoint_not_found")
    return row


async def list_endpoints(
    hub: Hub, *, limit: int, cursor: str | None
) -> tuple[list[Endpoint], str | None]:
    """Live endpoints, newest first."""
    stmt = sa.select(Endpoint).where(col(Endpoint.deleted_at).is_(None))
    return await keyset_page(hub.db, stmt, key=col(Endpoint.id), limit=limit, cursor=cursor)


class SecretFields(Protocol):
    """An endpoint's encrypted secrets and headers (an ORM row or a store read)."""

    @property
    def secret_enc(self) -> str: ...
    @property
    def previous_secret_enc(self) -> str | None: ...
    @property
    def previous_secret_until(self) -> datetime | None: ...
    @property
    def headers_enc(self) -> str | None: ...


def current_secrets(hub: Hub, row: SecretFields) -> list[str]:
    """The secrets that sign now: the current one, then the previous one during its overlap."""
    secrets = [hub.box.decrypt(row.secret_enc)]
    if (
        row.previous_secret_enc
        and row.previous_secret_until is not None
        and row.previous_secret_until > utcnow()
    ):
        secrets.append(hub.box.decrypt(row.previous_secret_enc))
    return secrets


def extra_headers(hub: Hub, row: SecretFields) -> dict[str, str]:
    """The endpoint's extra headers, decrypted."""
    return {str(k): str(v) for k, v in hub.box.decrypt_json(row.headers_enc).items()}


# --- writing -------------------------------------------------------------------------------


async def create_endpoint(
    hub: Hub,
    *,
    url: str,
    event_types: list[str],
    description: str = "",
    enabled: bool = True,
    headers: dict[str, str] | None = None,
    rate_limit_per_s: int | None = None,
    preset: str = "generic",
    secret: str | None = None,
    kind: str = "api",
    url_field: str = "url",
) -> Endpoint:
    """Validate and store a new endpoint with its (generated) secret."""
    types = check_event_types(event_types, "event" if kind == "hook" else "event_types")
    clean_headers = check_headers(headers or {})
    if secret is not None and not is_valid_secret(secret):
        raise field_error("secret", "secret must be 'whsec_' followed by 24-64 bytes of base64")
    clean_url = await check_destination(hub, url, preset, field=url_field)
    now = utcnow()
    row = Endpoint(
        id=new_id("ep"),
        url=clean_url,
        description=description,
        event_types=types,
        preset=preset,
        kind=kind,
        enabled=enabled,
        secret_enc=hub.box.encrypt(secret or new_secret()),
        headers_enc=hub.box.encrypt_json(clean_headers) if clean_headers else None,
        rate_limit_per_s=rate_limit_per_s,
        created_at=now,
        updated_at=now,
    )
    async with hub.db.write() as session:
        session.add(row)
    return row


async def update_endpoint(
    hub: Hub, endpoint_id: str, changes: dict[str, Any], *, body_format: str | None = None
) -> Endpoint:
    """Apply a PATCH; re-enabling clears the failure record. ``body_format`` "standard"
    turns a mysmsgate-format endpoint back into a generic one (its preset says the format)."""
    async with hub.db.read() as session:
        current = await get_endpoint_row(session, endpoint_id)
    if body_format == "standard" and "preset" not in changes and current.preset == "mysmsgate":
        changes = {**changes, "preset": "generic"}
    if "event_types" in changes and changes["event_types"] is not None:
        changes["event_types"] = check_event_types(changes["event_types"])
    if "headers" in changes:
        changes["headers"] = check_headers(changes["headers"] or {})
    if changes.get("url") is not None or changes.get("preset") is not None:
        preset = changes.get("preset") or current.preset
        changes["url"] = await check_destination(hub, changes.get("url") or current.url, preset)
    now = utcnow()
    async with hub.db.write() as session:
        row = await get_endpoint_row(session, endpoint_id)
        for name in ("url", "description", "event_types", "preset", "rate_limit_per_s"):
            if name in changes and (changes[name] is not None or name == "rate_limit_per_s"):
                setattr(row, name, changes[name])
        if "headers" in changes:
            row.headers_enc = (
                hub.box.encrypt_json(changes["headers"]) if changes["headers"] else None
            )
        if changes.get("enabled") is True and not row.enabled:
            row.enabled = True
            row.failing_since = None
            row.disabled_at = None
            row.disabled_reason = None
        elif changes.get("enabled") is False and row.enabled:
            row.enabled = False
            row.disabled_at = now
            row.disabled_reason = "disabled by a user"
        row.updated_at = now
        session.add(row)
    return row


async def delete_endpoint(
    hub: Hub, endpoint_id: str, *, kind: str | None = None, gone_ok: bool = True
) -> bool:
    """Delete (keeping history) and cancel its pending deliveries; False if already deleted
    (a 404 instead unless ``gone_ok``)."""
    async with hub.db.write() as session:
        row = await session.get(Endpoint, endpoint_id) if plausible_id(endpoint_id) else None
        gone = row is not None and row.deleted_at is not None
        if row is None or (kind is not None and row.kind != kind) or (gone and not gone_ok):
            raise NotFound(
                f"no {kind or 'endpoint'} {endpoint_id[:64]!r}", code="endpoint_not_found"
            )
        if gone:
            return False
        now = utcnow()
        row.deleted_at = now
        row.enabled = False
        row.updated_at = now
        session.add(row)
        # Queued deliveries are cancelled in the same transaction: their jobs find them
        # final and send nothing (an attempt already on the wire still completes).
        await session.execute(
            sa.update(Delivery)
            .where(col(Delivery.endpoint_id) == endpoint_id, col(Delivery.status) == "pending")
            .values(
                status="cancelled",
                next_attempt_at=None,
                last_error="endpoint deleted",
                updated_at=now,
                finished_at=now,
            )
        )
    return True


async def rotate_secret(hub: Hub, endpoint_id: str, overlap_s: float | None) -> Endpoint:
    """A new secret; the old one keeps signing for ``overlap_s`` (default: the setting)."""
    overlap = hub.settings.delivery_secret_overlap_s if overlap_s is None else overlap_s
    async with hub.db.write() as session:
        row = await get_endpoint_row(session, endpoint_id)
        now = utcnow()
        if overlap > 0:
            row.previous_secret_enc = row.secret_enc
            row.previous_secret_until = now + timedelta(seconds=overlap)
        else:
            row.previous_secret_enc = None
            row.previous_secret_until = None
        row.secret_enc = hub.box.encrypt(new_secret())
        row.updated_at = now
        session.add(row)
    return row


# --- REST Hooks ------------------------------------------------------------------------------


async def subscribe_hook(hub: Hub, target_url: str, event: str) -> Endpoint:
    """A REST Hook subscription: an endpoint of kind "hook", preset inferred from the URL."""
    preset = presets.infer_preset(target_url.strip())
    return await create_endpoint(
        hub,
        url=target_url,
        event_types=[event],
        description=f"REST Hook ({preset})",
        preset=preset,
        kind="hook",
        url_field="target_url",
    )
