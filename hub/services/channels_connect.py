"""Connect a phone: register the hub's webhooks on the gateway through the gateway's API.

For gateways whose connector can (``CanRegisterWebhooks``: SMS Gateway for Android, local,
cloud and private modes). The hub's own problems are refused before the phone is called
(a connector that cannot, a webhook URL the app would never call); the gateway's come back
as :class:`~connectors.base.GatewaySetupError` and leave as 422s saying what to fix.
Running it again replaces the same registrations (their ids derive from the channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from connectors import get_connector
from connectors.base import CanRegisterWebhooks, GatewaySetupError, WebhookSetup
from hub.context import Hub
from hub.errors import Conflict, Unprocessable
from hub.services.channels import get_channel_row, runtime_of, webhook_urls


@dataclass(frozen=True)
class Connected:
    """What the connect left on the gateway, and what is left to do on the phone."""

    setup: WebhookSetup
    connector: str
    mode: str | None
    base_url: str
    signing_key: str | None
    next_steps: tuple[str, ...]


def webhook_ids_prefix(channel_id: str) -> str:
    """The ids of a channel's registrations start with this (``-sms-received`` …)."""
    return f"smshub-{channel_id}"


async def connect_channel(hub: Hub, channel_id: str) -> Connected:
    """Register the channel's webhook URL on its gateway and read back what is there."""
    async with hub.db.read() as session:
        row = await get_channel_row(session, channel_id)
    connector = get_connector(row.connector)
    if not isinstance(connector, CanRegisterWebhooks):
        raise Conflict(
            f"{connector.title} channels cannot be connected from the hub: only SMS Gateway "
            "for Android channels can; paste the webhook URLs into the gateway instead",
            code="connect_unsupported",
        )
    if not row.enabled:
        raise Conflict(
            "this channel is disabled, so the hub would refuse the phone's webhooks (403): "
            "enable it first",
            code="channel_disabled",
        )
    url = webhook_urls(hub, row)["default"]
    _check_https(url)
    runtime = runtime_of(row, hub.box)
    try:
        setup = await cast(CanRegisterWebhooks, connector).register_webhooks(
            runtime.config, hub.http, url=url, id_prefix=webhook_ids_prefix(row.id)
        )
    except GatewaySetupError as exc:
        raise Unprocessable(
            str(exc),
            code=f"gateway_{exc.reason}",
            details={"gateway_status": exc.status_code},
        ) from exc
    signing_key = runtime.webhook_secret if row.auth_mode == "signature" else None
    return Connected(
        setup=setup,
        connector=row.connector,
        mode=getattr(runtime.config, "mode", None),
        base_url=str(getattr(runtime.config, "base_url", "")),
        signing_key=signing_key,
        next_steps=_next_steps(hub, signing_key is not None),
    )


def _check_https(url: str) -> None:
    """The app calls HTTPS URLs only (plain http only to 127.0.0.1 on the phone itself)."""
    if urlsplit(url).scheme != "https":
        raise Unprocessable(
            f"SMS Gateway for Android only calls https:// URLs, and this channel's webhook "
            f"URL is {url}: set SMSHUB_PUBLIC_URL to an https URL the phone reaches (see "
            "docs/deployment.md, Caddy), restart the hub and connect again",
            code="public_url_not_https",
            details={"webhook_url": url},
        )


def _next_steps(hub: Hub, signed: bool) -> tuple[str, ...]:
    steps = []
    if signed:
        steps.append(
            "In the app, Settings → Webhooks → Signing Key: set it to this channel's webhook "
            "secret (signing_key); until then every webhook is refused with 401."
        )
    after = hub.settings.device_offline_after_s
    if after > 0:
        steps.append(
            "In the app, Settings → Ping: turn it on with an interval under "
            f"{after:g} s (SMSHUB_DEVICE_OFFLINE_AFTER_S), or the hub announces a quiet phone "
            "as device.offline."
        )
    steps.append("Send an SMS to the phone: it shows up in Conversations.")
    return tuple(steps)
