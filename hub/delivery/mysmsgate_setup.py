"""The two webhook URLs a MySMSGate user knows — "Incoming SMS webhook URL" and "Delivery
report webhook URL" — as two endpoints in MySMSGate's format sharing one secret (the
settings page of the UI; the API does the same with two ``POST /api/v1/endpoints``)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.delivery import endpoints as endpoint_service
from hub.delivery.models import Endpoint
from hub.delivery.mysmsgate_format import FORMAT, STATUS_EVENTS

__all__ = ["ROLES", "MySmsGateHooks", "current_hooks", "save_hooks"]

#: Each URL's endpoint: its description (how the page finds it again) and its events.
ROLES: dict[str, tuple[str, list[str]]] = {
    "incoming": ("MySMSGate: incoming SMS", ["sms.received"]),
    "status": ("MySMSGate: delivery reports", sorted(STATUS_EVENTS)),
}


@dataclass(frozen=True)
class MySmsGateHooks:
    """The URLs set now (role → URL) and the secret that signs both (None before any)."""

    urls: dict[str, str]
    secret: str | None


async def _rows(hub: Hub) -> dict[str, Endpoint]:
    descriptions = {description: role for role, (description, _) in ROLES.items()}
    async with hub.db.read() as session:
        found = await session.execute(
            sa.select(Endpoint)
            .where(col(Endpoint.deleted_at).is_(None), col(Endpoint.preset) == FORMAT)
            .where(col(Endpoint.description).in_(descriptions))
            .order_by(col(Endpoint.created_at))
        )
    return {descriptions[row.description]: row for row in found.scalars()}


async def current_hooks(hub: Hub) -> MySmsGateHooks:
    """What the page shows."""
    rows = await _rows(hub)
    secret = next((hub.box.decrypt(r.secret_enc) for r in rows.values()), None)
    return MySmsGateHooks({role: row.url for role, row in rows.items()}, secret)


async def save_hooks(hub: Hub, urls: dict[str, str]) -> MySmsGateHooks:
    """Create, change or (for a blank URL) delete the two endpoints. Raises the endpoint
    service's field errors (``url``) for a URL it refuses; the field is the role's name."""
    # Every URL is checked before anything changes: a refused one saves neither.
    clean = {
        role: await endpoint_service.check_destination(hub, url, FORMAT, field=role)
        for role in ROLES
        if (url := urls.get(role, "").strip())
    }
    rows = await _rows(hub)
    secret = next((hub.box.decrypt(r.secret_enc) for r in rows.values()), None)
    for role, (description, events) in ROLES.items():
        url = clean.get(role, "")
        row = rows.get(role)
        if not url:
            if row is not None:
                await endpoint_service.delete_endpoint(hub, row.id)
            continue
        if row is not None:
            await endpoint_service.update_endpoint(hub, row.id, {"url": url})
            continue
        created = await endpoint_service.create_endpoint(
            hub,
            url=url,
            event_types=events,
            description=description,
            preset=FORMAT,
            secret=secret,
            url_field=role,
        )
        secret = secret or hub.box.decrypt(created.secret_enc)
    return await current_hooks(hub)
