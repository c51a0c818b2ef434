"""Channels: a connector plus its config and secrets, and the runtime cache ingress reads."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors import get_connector
from connectors.base import Connector, ConnectorConfig
from connectors.registry import UnknownConnector
from hub.context import ChannelRuntime, Hub
from hub.crypto import SecretBox
from hub.errors import NotFound, Unprocessable, pydantic_details
from hub.ids import new_id, new_token
from hub.models import Channel, utcnow
from hub.phone import InvalidNumber, to_e164
from hub.services.campaigns_schedule import reschedule_channel_campaigns

#: Seconds a process trusts its cached copy of a channel (other processes may edit it).
CHANNEL_CACHE_TTL_S = 5.0

AUTH_MODES = ("signature", "token")


def _split_config(
    connector: Connector, config: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    secret_names = connector.config_model.secret_fields()
    plain = {k: v for k, v in config.items() if k not in secret_names}
    secret = {k: v for k, v in config.items() if k in secret_names and v is not None}
    return plain, secret


def _validate_config(connector: Connector, config: dict[str, Any]) -> ConnectorConfig:
    try:
        return connector.parse_config(config)
    except ValidationError as exc:
        raise Unprocessable(
            f"config is not valid for connector {connector.name!r}",
            details=pydantic_details([dict(e) for e in exc.errors()]),
        ) from exc


def runtime_of(row: Channel, box: SecretBox) -> ChannelRuntime:
    """Build the runtime view of a channel row."""
    connector = get_connector(row.connector)
    config = {**row.config, **box.decrypt_json(row.secrets_enc)}
    return ChannelRuntime(
        id=row.id,
        name=row.name,
        connector=connector,
        config=connector.parse_config(config),
        webhook_secret=box.decrypt(row.webhook_secret_enc) if row.webhook_secret_enc else None,
        auth_mode=row.auth_mode,
        url_token=box.decrypt(row.url_token_enc) if row.url_token_enc else None,
        phone_number=row.phone_number,
        enabled=row.enabled and row.deleted_at is None,
        timezone=row.timezone,
        quiet_hours=row.quiet_hours,
    )


class ChannelCache:
    """Channel runtimes by id, refreshed after a short TTL or an explicit invalidate."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._items: dict[str, tuple[float, ChannelRuntime | None]] = {}

    async def get(self, channel_id: str) -> ChannelRuntime | None:
        """The channel, or None when it does not exist or is deleted."""
        hit = self._items.get(channel_id)
        if hit is not None and time.monotonic() - hit[0] < CHANNEL_CACHE_TTL_S:
            return hit[1]
        async with self._hub.db.read() as session:
            row = await session.get(Channel, channel_id)
        runtime = runtime_of(row, self._hub.box) if row and row.deleted_at is None else None
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[channel_id] = (time.monotonic(), runtime)
        return runtime

    def invalidate(self, channel_id: str) -> None:
        """Forget a channel after it changed."""
        self._items.pop(channel_id, None)


def _normalize_phone(hub: Hub, phone: str | None) -> str | None:
    if phone is None or phone == "":
        return None
    try:
        return to_e164(phone, hub.settings.default_region)
    except InvalidNumber as exc:
        raise Unprocessable(
            str(exc), details=[{"field": "phone_number", "message": str(exc)}]
        ) from exc


def _resolve_connector(name: str) -> Connector:
    try:
        return get_connector(name)
    except UnknownConnector as exc:
        raise Unprocessable(
            f"unknown connector {name!r}", details=[{"field": "connector", "message": str(exc)}]
        ) from exc


def _check_auth_mode(connector: Connector, config: ConnectorConfig, mode: str) -> None:
    if mode not in AUTH_MODES:
        raise Unprocessable(
            f"auth_mode must be one of {', '.join(AUTH_MODES)}",
            details=[{"field": "auth_mode", "message": f"got {mode!r}"}],
        )
    if mode == "signature" and connector.requires_url_token(config):
        raise Unprocessable(
            f"this {connector.name} config cannot sign its webhooks; use auth_mode 'token'",
            details=[{"field": "auth_mode", "message": "signatures unavailable"}],
        )


async def create_channel(
    hub: Hub,
    *,
    connector: str,
    name: str,
    config: dict[str, Any],
    webhook_secret: str | None = None,
    auth_mode: str | None = None,
    phone_number: str | None = None,
    enabled: bool = True,
    id: str | None = None,
    timezone: str | None = None,
    quiet_hours: dict[str, str] | None = None,
) -> Channel:
    """Validate and store a new channel; the webhook secret is generated when not given."""
    conn = _resolve_connector(connector)
    parsed = _validate_config(conn, config)
    mode = auth_mode or ("token" if conn.requires_url_token(parsed) else "signature")
    _check_auth_mode(conn, parsed, mode)
    plain, secret = _split_config(conn, parsed.model_dump(mode="json", exclude_unset=False))
    now = utcnow()
    row = Channel(
        id=id or new_id("ch"),
        connector=conn.name,
        name=name,
        config=plain,
        secrets_enc=hub.box.encrypt_json(secret) if secret else None,
        webhook_secret_enc=hub.box.encrypt(webhook_secret or new_token(24)),
        auth_mode=mode,
        url_token_enc=hub.box.encrypt(new_token(24)),
        phone_number=_normalize_phone(hub, phone_number or getattr(parsed, "phone_number", None)),
        enabled=enabled,
        timezone=timezone,
        quiet_hours=quiet_hours,
        created_at=now,
        updated_at=now,
    )
    async with hub.db.write() as session:
        session.add(row)
    return row


async def get_channel_row(session: AsyncSession, channel_id: str) -> Channel:
    """A live channel row or NotFound."""
    row = await session.get(Channel, channel_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"channel {channel_id!r} not found", code="channel_not_found")
    return row


async def list_channels(hub: Hub) -> list[Channel]:
    """Every live channel, oldest first."""
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Channel).where(col(Channel.deleted_at).is_(None)).order_by(col(Channel.id))
        )
        return list(rows.scalars())


async def update_channel(hub: Hub, channel_id: str, changes: dict[str, Any]) -> Channel:
    """Apply a partial update; config is merged field by field (secrets kept unless given)."""
    async with hub.db.write() as session:
        row = await get_channel_row(session, channel_id)
        conn = get_connector(row.connector)
        current = {**row.config, **hub.box.decrypt_json(row.secrets_enc)}
        if "config" in changes and changes["config"] is not None:
            current.update(changes["config"])
        parsed = _validate_config(conn, current)
        mode = changes.get("auth_mode") or row.auth_mode
        _check_auth_mode(conn, parsed, mode)
        plain, secret = _split_config(conn, parsed.model_dump(mode="json"))
        row.config = plain
        row.secrets_enc = hub.box.encrypt_json(secret) if secret else None
        row.auth_mode = mode
        if changes.get("name"):
            row.name = changes["name"]
        if changes.get("enabled") is not None:
            row.enabled = bool(changes["enabled"])
        if changes.get("webhook_secret"):
            row.webhook_secret_enc = hub.box.encrypt(changes["webhook_secret"])
        if changes.get("rotate_url_token"):
            row.url_token_enc = hub.box.encrypt(new_token(24))
        if "phone_number" in changes:
            row.phone_number = _normalize_phone(hub, changes["phone_number"])
        for name in ("timezone", "quiet_hours"):  # send pacing (hub.services.pacing)
            if name in changes:
                setattr(row, name, changes[name])
        row.updated_at = utcnow()
        session.add(row)
    hub.channels.invalidate(channel_id)
    if "timezone" in changes:  # the local times of its campaigns' contacts without a zone
        await hub.store.write(lambda: reschedule_channel_campaigns(hub, channel_id, hub.clock()))
    return row


async def delete_channel(hub: Hub, channel_id: str) -> None:
    """Soft-delete: the channel stops answering webhooks; its message history stays."""
    async with hub.db.write() as session:
        row = await get_channel_row(session, channel_id)
        row.deleted_at = utcnow()
        row.enabled = False
        session.add(row)
    hub.channels.invalidate(channel_id)


def webhook_urls(hub: Hub, row: Channel) -> dict[str, str]:
    """The URLs to configure in the gateway (with the token when the channel uses one)."""
    base = f"{hub.settings.public_url.rstrip('/')}/webhooks/{row.id}"
    query = ""
    if row.auth_mode == "token" and row.url_token_enc:
        query = f"?token={hub.box.decrypt(row.url_token_enc)}"
    return {
        "default": f"{base}{query}",
        "incoming": f"{base}/incoming{query}",
        "status": f"{base}/status{query}",
    }
