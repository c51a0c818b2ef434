"""Groups: named lists of contacts (``groups``, ``group_members``), what broadcasts send to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.context import Hub
from hub.dbutil import insert_ignore
from hub.errors import Conflict, NotFound, Unprocessable
from hub.ids import new_id
from hub.models import Contact, Group, GroupMember, utcnow
from hub.phone import InvalidNumber, to_e164
from hub.services.campaigns_schedule import reschedule_after
from hub.services.contacts import get_or_create_contact

#: The most phones or contact ids one ``add_members`` call takes.
MAX_MEMBERS_PER_CALL = 1000


@dataclass
class GroupRow:
    """A group and how many contacts are in it."""

    group: Group
    member_count: int


@dataclass
class MembersAdded:
    """What ``add_members`` did with each phone or contact id it was given."""

    added: list[str] = field(default_factory=list)
    already_members: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)


def _name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > 200:
        raise Unprocessable(
            "a group name is 1 to 200 characters",
            details=[{"field": "name", "message": "empty or longer than 200 characters"}],
        )
    return name


async def _by_name(session: AsyncSession, name: str) -> Group | None:
    found = await session.execute(sa.select(Group).where(col(Group.name) == name))
    return found.scalar_one_or_none()


def _taken(name: str, group_id: str) -> Conflict:
    return Conflict(
        f"a group named {name!r} exists ({group_id})",
        code="group_exists",
        details=[{"field": "name", "message": "already taken", "id": group_id}],
    )


async def member_counts(session: AsyncSession, group_ids: list[str]) -> dict[str, int]:
    """Group id -> members (deleted contacts are never members)."""
    if not group_ids:
        return {}
    rows = await session.execute(
        sa.select(col(GroupMember.group_id), sa.func.count())
        .where(col(GroupMember.group_id).in_(group_ids))
        .group_by(col(GroupMember.group_id))
    )
    counts = {str(g): int(n) for g, n in rows.all()}
    return {g: counts.get(g, 0) for g in group_ids}


async def create_group(hub: Hub, name: str, description: str = "") -> GroupRow:
    """A new, empty group; 409 when the name is taken."""
    name = _name(name)
    async with hub.db.write() as session:
        existing = await _by_name(session, name)
        if existing is not None:
            raise _taken(name, existing.id)
        group = Group(id=new_id("grp"), name=name, description=description)
        session.add(group)
        return GroupRow(group, 0)


async def list_groups(hub: Hub) -> list[GroupRow]:
    """Every group by name, with member counts."""
    async with hub.db.read() as session:
        groups = list((await session.execute(sa.select(Group).order_by(col(Group.name)))).scalars())
        counts = await member_counts(session, [g.id for g in groups])
    return [GroupRow(g, counts[g.id]) for g in groups]


async def _group(session: AsyncSession, group_id: str) -> Group:
    group = await session.get(Group, group_id)
    if group is None:
        raise NotFound(f"group {group_id!r} not found", code="group_not_found")
    return group


async def get_group(hub: Hub, group_id: str) -> GroupRow:
    """One group with its member count; 404 when unknown."""
    async with hub.db.read() as session:
        group = await _group(session, group_id)
        return GroupRow(group, (await member_counts(session, [group.id]))[group.id])


async def update_group(hub: Hub, group_id: str, changes: dict[str, Any]) -> GroupRow:
    """Rename a group or change its description; 409 when the new name is taken."""
    async with hub.db.write() as session:
        group = await _group(session, group_id)
        if changes.get("name") is not None:
            name = _name(changes["name"])
            existing = await _by_name(session, name)
            if existing is not None and existing.id != group.id:
                raise _taken(name, existing.id)
            group.name = name
        if changes.get("description") is not None:
            group.description = changes["description"]
        group.updated_at = utcnow()
        session.add(group)
        count = (await member_counts(session, [group.id]))[group.id]
        return GroupRow(group, count)


async def delete_group(hub: Hub, group_id: str) -> None:
    """Delete a group and its memberships (the contacts stay)."""
    async with hub.db.write() as session:
        group = await _group(session, group_id)
        found = await session.execute(
            sa.select(col(GroupMember.contact_id)).where(col(GroupMember.group_id) == group.id)
        )
        members = [str(c) for c in found.scalars()]
        await session.execute(sa.delete(GroupMember).where(col(GroupMember.group_id) == group.id))
        await session.delete(group)
    await reschedule_after(hub, members)  # their fires of the group's campaigns are cancelled


async def _contacts_for_phones(
    hub: Hub, session: AsyncSession, phones: list[str], report: MembersAdded
) -> dict[str, str]:
    """Given value -> contact id, creating contacts for unknown numbers."""
    found: dict[str, str] = {}
    for raw in phones:
        try:
            phone = to_e164(raw, hub.settings.default_region)
        except InvalidNumber as exc:
            report.refused.append({"value": raw, "reason": str(exc)})
            continue
        contact = await get_or_create_contact(session, phone)
        contact.deleted_at = None  # adding a deleted contact's number brings it back
        session.add(contact)
        found[raw] = contact.id
    return found


async def _contacts_for_ids(
    session: AsyncSession, ids: list[str], report: MembersAdded
) -> dict[str, str]:
    rows = await session.execute(
        sa.select(col(Contact.id)).where(
            col(Contact.id).in_(ids), col(Contact.deleted_at).is_(None)
        )
    )
    live = {str(r) for r in rows.scalars()}
    for value in ids:
        if value not in live:
            report.refused.append({"value": value, "reason": "no such contact"})
    return {value: value for value in ids if value in live}


async def add_members(
    hub: Hub,
    group_id: str,
    *,
    phones: list[str] | None = None,
    contact_ids: list[str] | None = None,
) -> MembersAdded:
    """Add contacts (by phone, created when missing, or by id) to a group."""
    values = list(dict.fromkeys([*(phones or []), *(contact_ids or [])]))
    if len(values) > MAX_MEMBERS_PER_CALL:
        raise Unprocessable(f"at most {MAX_MEMBERS_PER_CALL} members per call")
    report = MembersAdded()
    async with hub.db.write() as session:
        group = await _group(session, group_id)
        wanted = await _contacts_for_phones(hub, session, list(dict.fromkeys(phones or [])), report)
        if contact_ids:
            wanted.update(
                await _contacts_for_ids(session, list(dict.fromkeys(contact_ids)), report)
            )
        now = utcnow()
        for value, contact_id in wanted.items():
            row = {"group_id": group.id, "contact_id": contact_id, "added_at": now}
            added = await insert_ignore(
                session, GroupMember, row, conflict=["group_id", "contact_id"]
            )
            (report.added if added else report.already_members).append(value)
    await reschedule_after(hub, wanted.values())  # joining schedules the campaigns' fires
    return report


async def remove_member(hub: Hub, group_id: str, contact_id: str) -> None:
    """Take a contact out of a group; 404 when it was not in it."""
    async with hub.db.write() as session:
        await _group(session, group_id)
        result = await session.execute(
            sa.delete(GroupMember).where(
                col(GroupMember.group_id) == group_id, col(GroupMember.contact_id) == contact_id
            )
        )
        if not getattr(result, "rowcount", 0):
            raise NotFound(
                f"contact {contact_id!r} is not in group {group_id!r}", code="member_not_found"
            )
    await reschedule_after(hub, [contact_id])  # leaving cancels the campaigns' fires
