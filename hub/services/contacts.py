"""Contacts: one row per phone number, with opt-out state, tags and fields."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.dbutil import insert_ignore
from hub.ids import new_id
from hub.models import Contact, utcnow


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
