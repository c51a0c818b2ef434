"""Contacts: one row per phone number, with opt-out state, tags and fields."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.context import Hub
from hub.dbutil import insert_ignore
from hub.errors import NotFound, Unprocessable
from hub.ids import new_id
from hub.models import Contact, Device, utcnow
from hub.store import Json, Unit, fetch_one, insert_rows


async def get_or_create_contact(session: AsyncSession, phone: str) -> Contact:
    """The contact for an E.164 number (or sender id), created on first sight."""
    found = await session.execute(sa.select(Contact).where(col(Contact.phone) == phone))
    contact = found.scalar_one_or_none()
    if contact is not None:
        return contact
    now = utcnow()
    await insert_ignore(
        session,
        Contact,
        {
            "id": new_id("ct"),
            "phone": phone,
            "name": "",
            "opted_out": False,
            "tags": [],
            "fields": {},
            "created_at": now,
            "updated_at": now,
        },
        conflict=["phone"],
    )
    found = await session.execute(sa.select(Contact).where(col(Contact.phone) == phone))
    return found.scalar_one()


async def find_contact(session: AsyncSession, phone: str) -> Contact | None:
    """The contact for a number, if known."""
    found = await session.execute(sa.select(Contact).where(col(Contact.phone) == phone))
    return found.scalar_one_or_none()


async def update_contact(hub: Hub, contact_id: str, changes: dict[str, Any]) -> Contact:
    """Apply a partial change to a contact found by id or phone."""
    async with hub.db.write() as session:
        contact = await session.get(Contact, contact_id) or await find_contact(session, contact_id)
        if contact is None:
            raise NotFound(f"contact {contact_id!r} not found", code="contact_not_found")
        now = utcnow()
        if changes.get("name") is not None:
            contact.name = changes["name"]
        if changes.get("tags") is not None:
            tags = [str(t).strip() for t in changes["tags"]]
            if any(not t or len(t) > 64 for t in tags):
                raise Unprocessable(
                    "tags must be 1 to 64 characters",
                    details=[{"field": "tags", "message": "empty or too long tag"}],
                )
            contact.tags = list(dict.fromkeys(tags))
        if changes.get("fields") is not None:
            contact.fields = {**contact.fields, **changes["fields"]}
        if changes.get("opted_out") is not None and changes["opted_out"] != contact.opted_out:
            contact.opted_out = changes["opted_out"]
            contact.opted_out_at = now if contact.opted_out else None
        contact.updated_at = now
        session.add(contact)
        return contact


async def update_device(hub: Hub, device_id: str, changes: dict[str, Any]) -> Device:
    """Name a device or set its own rate limit (None = the hub default)."""
    async with hub.db.write() as session:
        device = await session.get(Device, device_id)
        if device is None:
            raise NotFound(f"device {device_id!r} not found", code="device_not_found")
        if changes.get("name") is not None:
            device.name = changes["name"]
        if "rate_limit_per_min" in changes:
            device.rate_limit_per_min = changes["rate_limit_per_min"]
        session.add(device)
        return device


def contact_for(phone: str) -> Unit[tuple[str, bool]]:
    """Unit: (id, opted out) of the contact for a number, created on first sight."""
    found = yield from fetch_one("SELECT id, opted_out FROM contacts WHERE phone = ?", (phone,))
    if found is None:
        now = utcnow()
        yield from insert_rows(
            "contacts",
            ("id", "phone", "name", "opted_out", "tags", "fields", "created_at", "updated_at"),
            [(new_id("ct"), phone, "", False, Json([]), Json({}), now, now)],
            conflict="ON CONFLICT (phone) DO NOTHING",
        )
        found = yield from fetch_one("SELECT id, opted_out FROM contacts WHERE phone = ?", (phone,))
        assert found is not None
    return str(found[0]), bool(found[1])
