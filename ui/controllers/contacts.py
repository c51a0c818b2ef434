"""Contacts: search by number, name, state or group; create, edit, block and delete."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from hub.errors import ApiError
from hub.models import Contact
from hub.services import contacts as contact_service
from hub.services import groups, queries
from ui import readmodels
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, read_form, render, see_other

PAGE_SIZE = 50
#: The state filter: its (opted_out, blocked) query.
_STATES: dict[str, tuple[bool | None, bool | None]] = {
    "": (None, None),
    "subscribed": (False, None),
    "opted_out": (True, None),
    "blocked": (None, True),
}
_FORM_FIELDS = ("phone", "name", "language", "timezone", "tags", "fields")


def form_values(contact: Contact) -> dict[str, str]:
    """A contact as the edit form's values."""
    return {
        "phone": contact.phone,
        "name": contact.name,
        "language": contact.language or "",
        "timezone": contact.timezone or "",
        "tags": ", ".join(contact.tags),
        "fields": "\n".join(f"{k}={v}" for k, v in contact.fields.items()),
    }


def parse_form(form: dict[str, str], errors: FormErrors) -> dict[str, Any]:
    """The contact form as service changes; problems go to ``errors`` by field."""
    fields: dict[str, str] = {}
    for number, line in enumerate(form.get("fields", "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            errors.add("fields", f"line {number}: write name=value")
        else:
            fields[key.strip()[:64]] = value.strip()
    for name, most in (("name", 200), ("language", 35), ("timezone", 64)):
        if len(form.get(name, "").strip()) > most:
            errors.add(name, f"use at most {most} characters")
    timezone = form.get("timezone", "").strip()
    problem = contact_service.timezone_problem(timezone) if timezone else None
    if problem:
        errors.add("timezone", problem)
    return {
        "name": form.get("name", "").strip()[:200],
        "language": form.get("language", "").strip()[:35],
        "timezone": timezone[:64],
        "tags": [t for t in (p.strip() for p in form.get("tags", "").split(",")) if t],
        "fields": fields,
    }


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
        group: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        hub = hub_of(request)
        errors: dict[str, str] = {}
        state = status or ""
        if state not in _STATES:
            errors["state"] = "pick one of the listed states"
            state = ""
        all_groups = await groups.list_groups(hub)
        group_id = (group or "")[:40]
        if group_id and group_id not in {g.group.id for g in all_groups}:
            errors["group"] = "pick one of the listed groups"
            group_id = ""
        rows: list[Any] = []
        next_cursor = None
        try:
            rows, next_cursor = await queries.list_contacts(
                hub,
                limit=PAGE_SIZE,
                cursor=(cursor or "")[:40] or None,
                q=(q or "").strip()[:64] or None,
                opted_out=_STATES[state][0],
                blocked=_STATES[state][1],
                group_id=group_id or None,
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
            group=group_id,
            groups=all_groups,
            errors=errors,
            contact_channels=channels,
        )

    def _form(
        self,
        request: Request[Any, Any, Any],
        contact: Contact | None,
        values: dict[str, str],
        errors: FormErrors | None = None,
    ) -> Template:
        return render(
            request,
            "contacts/form.html",
            status_code=422 if errors else 200,
            contact=contact,
            values=values,
            errors=(errors or FormErrors()).shown_on(_FORM_FIELDS),
        )

    @get("/new")
    async def new(self, request: Request[Any, Any, Any]) -> Template:
        return self._form(request, None, {})

    @post("/new", status_code=200)
    async def create(self, request: Request[Any, Any, Any]) -> Template | Response[Any]:
        form = await read_form(request)
        errors = FormErrors()
        phone = errors.required(form, "phone", "the contact's number, e.g. +15550001234", most=64)
        data = parse_form(form, errors)
        if phone:
            try:
                contact_service.check_phone(phone, hub_of(request).settings.default_region)
            except ApiError as exc:
                errors.add("phone", exc.message)
        if errors:
            return self._form(request, None, form, errors)
        try:
            contact = await contact_service.create_contact(
                hub_of(request), {**data, "phone": phone}
            )
        except ApiError as exc:
            return self._form(request, None, form, FormErrors.from_api_error(exc))
        return see_other(f"/contacts?q={contact.phone.lstrip('+')}")

    @get("/{contact_id:str}/edit")
    async def edit(self, request: Request[Any, Any, Any], contact_id: FromPath[str]) -> Template:
        contact = await queries.get_contact(hub_of(request), contact_id)
        return self._form(request, contact, form_values(contact))

    @post("/{contact_id:str}/edit", status_code=200)
    async def update(
        self, request: Request[Any, Any, Any], contact_id: FromPath[str]
    ) -> Template | Response[Any]:
        hub = hub_of(request)
        contact = await queries.get_contact(hub, contact_id)
        form = await read_form(request)
        errors = FormErrors()
        data = parse_form(form, errors)
        values = {**form, "phone": contact.phone}
        if errors:
            return self._form(request, contact, values, errors)
        # The form shows every field: one gone from it is removed (replace_fields).
        try:
            await contact_service.update_contact(hub, contact.id, {**data, "replace_fields": True})
        except ApiError as exc:
            return self._form(request, contact, values, FormErrors.from_api_error(exc))
        return see_other("/contacts")

    @post("/{contact_id:str}/block", status_code=303)
    async def block(
        self, request: Request[Any, Any, Any], contact_id: FromPath[str]
    ) -> Response[Any]:
        """Block (``blocked=1``) or unblock (``blocked=0``) the contact, back to its form."""
        form = await read_form(request)
        blocked = form.get("blocked", "") == "1"
        contact = await contact_service.update_contact(
            hub_of(request), contact_id, {"blocked": blocked}
        )
        return see_other(f"/contacts/{contact.id}/edit")

    @post("/{contact_id:str}/delete", status_code=303)
    async def delete(
        self, request: Request[Any, Any, Any], contact_id: FromPath[str]
    ) -> Response[Any]:
        """Erase the contact's personal data (number and opt-out stay; docs/contacts.md)."""
        await contact_service.delete_contact(hub_of(request), contact_id)
        return see_other("/contacts")
