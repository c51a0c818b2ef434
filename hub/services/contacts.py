"""Contacts: one row per phone number, with opt-out state, tags and fields.

Deleting a contact keeps an anonymised row: the phone number (the key the message history
and the opt-out list hang on) and the opt-out state stay, everything else (name, language,
timezone, fields, tags, group memberships) is erased, and ``deleted_at`` hides the row from
lists and lookups. New traffic with the number brings the row back, still opted out if it
was; so does creating the contact again (API, UI or an import).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.context import Hub
from hub.dbutil import insert_ignore
from hub.errors import Conflict, NotFound, Unprocessable
from hub.ids import new_id
from hub.models import Contact, Device, GroupMember, utcnow
from hub.phone import InvalidNumber, to_e164
from hub.services.campaigns_schedule import reschedule_after
from hub.store import Json, Unit, execute, fetch_one, insert_rows

#: The personal data a delete erases, with the value it is set to.
ERASED: dict[str, Any] = {"name": "", "language": None, "timezone": None, "tags": [], "fields": {}}


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


def check_phone(raw: str, region: str, field: str = "phone") -> str:
    """A number as E.164, or a 422 naming ``field``."""
    try:
        return to_e164(raw, region)
    except InvalidNumber as exc:
        raise Unprocessable(str(exc), details=[{"field": field, "message": str(exc)}]) from exc


def timezone_problem(value: str) -> str | None:
    """Why ``value`` is not an IANA time zone name, or None when it is one."""
    if not value or len(value) > 64 or value.startswith(("/", ".")) or ".." in value:
        return f"{value!r} is not an IANA time zone (e.g. Europe/Paris)"
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"{value!r} is not an IANA time zone (e.g. Europe/Paris)"
    return None


def clean_tags(raw: list[Any]) -> list[str]:
    """Tags stripped and de-duplicated; a 422 for an empty or too long one."""
    tags = [str(t).strip() for t in raw]
    if any(not t or len(t) > 64 for t in tags):
        raise Unprocessable(
            "tags must be 1 to 64 characters",
            details=[{"field": "tags", "message": "empty or too long tag"}],
        )
    return list(dict.fromkeys(tags))


def _check_timezone(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    problem = timezone_problem(value)
    if problem:
        raise Unprocessable(problem, details=[{"field": "timezone", "message": problem}])
    return value


def _apply(contact: Contact, changes: dict[str, Any]) -> None:
    """Copy the given editable fields onto ``contact`` (validated)."""
    if changes.get("name") is not None:
        contact.name = changes["name"]
    if "language" in changes:
        contact.language = changes["language"] or None
    if "timezone" in changes:
        contact.timezone = _check_timezone(changes["timezone"])
    if changes.get("tags") is not None:
        contact.tags = clean_tags(changes["tags"])
    if changes.get("fields") is not None:
        # The API merges fields; the UI's form holds them all and replaces them.
        base = {} if changes.get("replace_fields") else contact.fields
        contact.fields = {**base, **changes["fields"]}


def set_blocked(contact: Contact, blocked: bool | None, now: datetime) -> None:
    """Block or unblock ``contact`` (None: leave it); ``blocked_at`` is when it was blocked."""
    if blocked is not None and blocked != contact.blocked:
        contact.blocked = blocked
        contact.blocked_at = now if blocked else None


async def _live_contact(session: AsyncSession, contact_id: str) -> Contact:
    contact = await session.get(Contact, contact_id) or await find_contact(session, contact_id)
    if contact is None or contact.deleted_at is not None:
        raise NotFound(f"contact {contact_id!r} not found", code="contact_not_found")
    return contact


async def create_contact(hub: Hub, data: dict[str, Any]) -> Contact:
    """A new contact; 409 when the number is already a contact. A deleted contact's row
    is brought back (its opt-out state and block kept)."""
    phone = check_phone(data["phone"], hub.settings.default_region)
    async with hub.db.write() as session:
        existing = await find_contact(session, phone)
        if existing is not None and existing.deleted_at is None:
            raise Conflict(
                f"{phone} is already a contact ({existing.id})",
                code="contact_exists",
                details=[{"field": "phone", "message": "already a contact", "id": existing.id}],
            )
        contact = existing or await get_or_create_contact(session, phone)
        contact.deleted_at = None
        _apply(contact, data)
        if data.get("blocked"):  # a deleted contact's block is kept, like its opt-out
            set_blocked(contact, True, utcnow())
        contact.updated_at = utcnow()
        session.add(contact)
        return contact


async def update_contact(hub: Hub, contact_id: str, changes: dict[str, Any]) -> Contact:
    """Apply a partial change to a contact found by id or phone."""
    async with hub.db.write() as session:
        contact = await _live_contact(session, contact_id)
        now = utcnow()
        _apply(contact, changes)
        if changes.get("opted_out") is not None and changes["opted_out"] != contact.opted_out:
            contact.opted_out = changes["opted_out"]
            contact.opted_out_at = now if contact.opted_out else None
        set_blocked(contact, changes.get("blocked"), now)
        contact.updated_at = now
        session.add(contact)
    # Committed: a new date, time zone, opt-out or block moves or cancels campaign fires.
    await reschedule_after(hub, [contact.id])
    return contact


async def delete_contact(hub: Hub, contact_id: str) -> None:
    """Erase a contact's personal data and group memberships; keep the phone and opt-out
    state (see the module docstring)."""
    async with hub.db.write() as session:
        contact = await _live_contact(session, contact_id)
        await session.execute(
            sa.delete(GroupMember).where(col(GroupMember.contact_id) == contact.id)
        )
        for name, value in ERASED.items():
            setattr(contact, name, value)
        contact.deleted_at = contact.updated_at = utcnow()
        session.add(contact)
    await reschedule_after(hub, [contact.id])  # cancels its campaign fires


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
    """Unit: (id, opted out) of the contact for a number, created on first sight (and
    brought back, opt-out state kept, when it had been deleted)."""
    contact_id, opted_out, _ = yield from contact_state(phone)
    return contact_id, opted_out


def contact_state(phone: str) -> Unit[tuple[str, bool, bool]]:
    """Unit: (id, opted out, blocked) of the contact for a number, as :func:`contact_for`."""
    query = "SELECT id, opted_out, deleted_at, blocked FROM contacts WHERE phone = ?"
    found = yield from fetch_one(query, (phone,))
    if found is None:
        now = utcnow()
        yield from insert_rows(
            "contacts",
            ("id", "phone", "name", "opted_out", "tags", "fields", "created_at", "updated_at"),
            [(new_id("ct"), phone, "", False, Json([]), Json({}), now, now)],
            conflict="ON CONFLICT (phone) DO NOTHING",
        )
        found = yield from fetch_one(query, (phone,))
        assert found is not None
    if found[2] is not None:
        yield from execute(
            "UPDATE contacts SET deleted_at = NULL, updated_at = ? WHERE id = ?",
            (utcnow(), found[0]),
        )
    return str(found[0]), bool(found[1]), bool(found[3])
