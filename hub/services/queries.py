"""Read-side queries for the API and UI: lists with filters and cursor pagination."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.context import Hub
from hub.errors import NotFound
from hub.models import Contact, Device, GroupMember, Message, MessageStatusChange
from hub.paging import keyset_page

T = TypeVar("T")


async def read_one(hub: Hub, load: Callable[[AsyncSession, str], Awaitable[T]], key: str) -> T:
    """``load(session, key)`` (a row getter that raises NotFound) in a read session."""
    async with hub.db.read() as session:
        return await load(session, key)


async def list_messages(
    hub: Hub,
    *,
    limit: int,
    cursor: str | None,
    direction: str | None = None,
    contact: str | None = None,
    channel_id: str | None = None,
    status: str | None = None,
) -> tuple[list[Message], str | None]:
    """Messages matching every given filter, newest first."""
    stmt = sa.select(Message)
    if direction:
        stmt = stmt.where(col(Message.direction) == direction)
    if channel_id:
        stmt = stmt.where(col(Message.channel_id) == channel_id)
    if status:
        stmt = stmt.where(col(Message.status) == status)
    if contact:
        if contact.startswith("ct_"):
            stmt = stmt.where(col(Message.contact_id) == contact)
        else:
            sub = sa.select(col(Contact.id)).where(col(Contact.phone) == contact.replace(" ", ""))
            stmt = stmt.where(col(Message.contact_id).in_(sub.scalar_subquery()))
    return await keyset_page(hub.db, stmt, key=col(Message.id), limit=limit, cursor=cursor)


async def get_message(hub: Hub, message_id: str) -> tuple[Message, list[MessageStatusChange]]:
    """A message and its status history, oldest change first."""
    async with hub.db.read() as session:
        row = await session.get(Message, message_id)
        if row is None:
            raise NotFound(f"message {message_id!r} not found", code="message_not_found")
        history = await session.execute(
            sa.select(MessageStatusChange)
            .where(col(MessageStatusChange.message_id) == message_id)
            .order_by(col(MessageStatusChange.id))
        )
        return row, list(history.scalars())


async def list_devices(hub: Hub, channel_id: str | None) -> list[Device]:
    """Devices, optionally of one channel."""
    stmt = sa.select(Device).order_by(col(Device.id))
    if channel_id:
        stmt = stmt.where(col(Device.channel_id) == channel_id)
    async with hub.db.read() as session:
        return list((await session.execute(stmt)).scalars())


async def list_contacts(
    hub: Hub,
    *,
    limit: int,
    cursor: str | None,
    q: str | None = None,
    opted_out: bool | None = None,
    blocked: bool | None = None,
    group_id: str | None = None,
) -> tuple[list[Contact], str | None]:
    """Contacts, newest first, optionally searched by phone or name or of one group;
    deleted ones are left out."""
    stmt = sa.select(Contact).where(col(Contact.deleted_at).is_(None))
    if group_id:
        members = sa.select(col(GroupMember.contact_id)).where(
            col(GroupMember.group_id) == group_id
        )
        stmt = stmt.where(col(Contact.id).in_(members))
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(sa.or_(col(Contact.phone).like(like), col(Contact.name).ilike(like)))
    if opted_out is not None:
        stmt = stmt.where(col(Contact.opted_out).is_(opted_out))
    if blocked is not None:
        stmt = stmt.where(col(Contact.blocked).is_(blocked))
    return await keyset_page(hub.db, stmt, key=col(Contact.id), limit=limit, cursor=cursor)


async def get_contact(hub: Hub, contact_id: str) -> Contact:
    """A contact by id or phone number."""
    async with hub.db.read() as session:
        row = await session.get(Contact, contact_id)
        if row is None:
            found = await session.execute(
                sa.select(Contact).where(col(Contact.phone) == contact_id)
            )
            row = found.scalar_one_or_none()
        if row is None or row.deleted_at is not None:
            raise NotFound(f"contact {contact_id!r} not found", code="contact_not_found")
        return row
