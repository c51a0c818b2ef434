"""Contacts as flows see them (``flows.ContactView``): one reader for every place that
hands a contact to the engine (dispatch, contact updates, broadcasts, campaigns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flows.ports import ContactView
from hub.store import Unit, as_json, fetch_all, fetch_one

__all__ = ["CONTACT_VIEW_COLUMNS", "contact_view_of", "view_from_row"]

#: The contact columns :func:`view_from_row` reads, in its order.
CONTACT_VIEW_COLUMNS = "id, phone, name, language, timezone, opted_out, tags, fields"


def view_from_row(row: Sequence[Any], groups: Sequence[str] = ()) -> ContactView:
    """A ContactView from a row of :data:`CONTACT_VIEW_COLUMNS` and the contact's group ids."""
    contact_id, phone, name, language, timezone, opted_out, tags, fields = row[:8]
    return ContactView(
        id=str(contact_id),
        phone=str(phone),
        name=str(name or ""),
        language=language,
        timezone=timezone,
        opted_out=bool(opted_out),
        tags=tuple(as_json(tags) or ()),
        fields={k: str(v) for k, v in (as_json(fields) or {}).items()},
        groups=tuple(sorted(str(g) for g in groups)),
    )


def contact_view_of(phone: str) -> Unit[ContactView | None]:
    """Unit: the contact with this number and its groups, or None when the hub has none."""
    row = yield from fetch_one(
        f"SELECT {CONTACT_VIEW_COLUMNS} FROM contacts WHERE phone = ?", (phone,)
    )
    if row is None:
        return None
    found = yield from fetch_all(
        "SELECT group_id FROM group_members WHERE contact_id = ?", (row[0],)
    )
    return view_from_row(row, [g[0] for g in found])
