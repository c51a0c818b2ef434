"""Groups: list, create, rename, delete; members added by number, removed one by one."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from hub.errors import ApiError
from hub.services import groups, queries
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, read_form, render, see_other

MEMBERS_SHOWN = 200


class GroupsController(Controller):
    path = "/groups"
    guards = [require_user]
    include_in_schema = False

    async def _list(
        self,
        request: Request[Any, Any, Any],
        errors: FormErrors | None = None,
        values: dict[str, str] | None = None,
    ) -> Template:
        return render(
            request,
            "contacts/groups.html",
            status_code=422 if errors else 200,
            groups=await groups.list_groups(hub_of(request)),
            errors=errors or FormErrors(),
            values=values or {},
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        return await self._list(request)

    @post("/", status_code=200)
    async def create(self, request: Request[Any, Any, Any]) -> Template | Response[Any]:
        form = await read_form(request)
        errors = FormErrors()
        name = errors.required(form, "name", "name the group, e.g. 'Clinic patients'")
        if errors:
            return await self._list(request, errors, form)
        try:
            row = await groups.create_group(hub_of(request), name, form.get("description", ""))
        except ApiError as exc:
            return await self._list(request, FormErrors.from_api_error(exc), form)
        return see_other(f"/groups/{row.group.id}")

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        group_id: str,
        errors: FormErrors | None = None,
        values: dict[str, str] | None = None,
        report: groups.MembersAdded | None = None,
    ) -> Template:
        hub = hub_of(request)
        row = await groups.get_group(hub, group_id)
        members, more = await queries.list_contacts(
            hub, limit=MEMBERS_SHOWN, cursor=None, group_id=group_id
        )
        return render(
            request,
            "contacts/group.html",
            status_code=422 if errors else 200,
            row=row,
            members=members,
            more=more is not None,
            errors=errors or FormErrors(),
            values=values or {"name": row.group.name},
            report=report,
        )

    @get("/{group_id:str}")
    async def detail(self, request: Request[Any, Any, Any], group_id: FromPath[str]) -> Template:
        return await self._detail(request, group_id)

    @post("/{group_id:str}/rename", status_code=200)
    async def rename(
        self, request: Request[Any, Any, Any], group_id: FromPath[str]
    ) -> Template | Response[Any]:
        form = await read_form(request)
        errors = FormErrors()
        name = errors.required(form, "name", "a group needs a name")
        if not errors:
            try:
                await groups.update_group(hub_of(request), group_id, {"name": name})
            except ApiError as exc:
                errors = FormErrors.from_api_error(exc)
        if errors:
            return await self._detail(request, group_id, errors, form)
        return see_other(f"/groups/{group_id}")

    @post("/{group_id:str}/delete", status_code=303)
    async def delete(
        self, request: Request[Any, Any, Any], group_id: FromPath[str]
    ) -> Response[Any]:
        await groups.delete_group(hub_of(request), group_id)
        return see_other("/groups")

    @post("/{group_id:str}/members", status_code=200)
    async def add(self, request: Request[Any, Any, Any], group_id: FromPath[str]) -> Template:
        """Numbers, one a line or separated by commas; new ones become contacts."""
        form = await read_form(request)
        phones = [p.strip() for p in form.get("phones", "").replace(",", "\n").splitlines()]
        phones = [p for p in phones if p]
        errors = FormErrors()
        if not phones:
            errors.add("phones", "type one number a line, e.g. +15550001234")
            return await self._detail(request, group_id, errors, form)
        if len(phones) > groups.MAX_MEMBERS_PER_CALL:
            errors.add("phones", f"at most {groups.MAX_MEMBERS_PER_CALL} at once; import a CSV")
            return await self._detail(request, group_id, errors, form)
        report = await groups.add_members(hub_of(request), group_id, phones=phones)
        return await self._detail(request, group_id, report=report)

    @post("/{group_id:str}/members/{contact_id:str}/remove", status_code=303)
    async def remove(
        self, request: Request[Any, Any, Any], group_id: FromPath[str], contact_id: FromPath[str]
    ) -> Response[Any]:
        await groups.remove_member(hub_of(request), group_id, contact_id)
        return see_other(f"/groups/{group_id}")
