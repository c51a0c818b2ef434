"""Contacts: search by number or name, opt-out state, tags."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromQuery
from litestar.response import Template

from hub.errors import ApiError
from hub.services import queries
from ui import readmodels
from ui.auth import hub_of, require_user
from ui.pages import render

PAGE_SIZE = 50
_STATES = {"": None, "subscribed": False, "opted_out": True}


class ContactsController(Controller):
    path = "/contacts"
    guards = [require_user]
    include_in_schema = False

    @get("/")
    async def list_contacts(
        self,
        request: Request[Any, Any, Any],
        q: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        hub = hub_of(request)
        errors: dict[str, str] = {}
        state = status or ""
        if state not in _STATES:
            errors["state"] = "pick one of the listed states"
            state = ""
        rows: list[Any] = []
        next_cursor = None
        try:
            rows, next_cursor = await queries.list_contacts(
                hub,
                limit=PAGE_SIZE,
                cursor=(cursor or "")[:40] or None,
                q=(q or "").strip()[:64] or None,
                opted_out=_STATES[state],
            )
        except ApiError as exc:
            errors["q"] = exc.message
        channels = await readmodels.contact_channels(hub, [row.id for row in rows])
        return render(
            request,
            "contacts/list.html",
            status_code=422 if errors else 200,
            contacts=rows,
            next_cursor=next_cursor,
            q=q or "",
            state=state,
            errors=errors,
            contact_channels=channels,
        )
