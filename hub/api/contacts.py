"""REST API ``/api/v1``: contacts, groups, CSV import and export."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from hub.api.contact_schemas import (
    ContactIn,
    GroupIn,
    GroupOut,
    GroupPatch,
    ImportOut,
    MembersIn,
    MembersOut,
    RefusedMember,
)
from hub.api.deps import ApiController, Limit
from hub.context import Hub
from hub.errors import BadRequest, UnsupportedMediaType
from hub.schemas import ContactOut, ContactPatch, Page, view
from hub.services import contacts as contact_service
from hub.services import contacts_import, groups, queries

Cursor = Annotated[
    str | None, QueryParameter(description="`next_cursor` of the previous page.", max_length=40)
]
_CSV_TYPES = ("text/csv", "application/csv", "text/plain")


def group_out(row: groups.GroupRow) -> GroupOut:
    """API view of a group."""
    return view(GroupOut, row.group, member_count=row.member_count)


async def csv_body(request: Request[Any, Any, Any]) -> tuple[bytes, str]:
    """The CSV of an import request (a multipart ``file`` field or a text/csv body)."""
    content_type, _ = request.content_type
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest(
                "send the CSV in a multipart field named 'file'",
                details=[{"field": "file", "message": "missing"}],
            )
        return await upload.read(), upload.filename or ""
    if content_type in _CSV_TYPES:
        return await request.body(), ""
    raise UnsupportedMediaType(
        "send the CSV as text/csv or as multipart/form-data with a 'file' field",
        code="unsupported_media_type",
    )


class ContactController(ApiController):
    path = "/contacts"
    tags = ["contacts"]

    @get("/", summary="List contacts, newest first")
    async def list_contacts(
        self,
        hub: NamedDependency[Hub],
        limit: Limit = 50,
        cursor: Cursor = None,
        q: Annotated[
            str | None, QueryParameter(description="Phone or name contains.", max_length=64)
        ] = None,
        opted_out: FromQuery[bool | None] = None,
        blocked: Annotated[
            bool | None, QueryParameter(description="Only blocked (true) or unblocked (false).")
        ] = None,
        group_id: Annotated[
            str | None, QueryParameter(description="Only members of this group.", max_length=40)
        ] = None,
    ) -> Page[ContactOut]:
        if group_id:
            await groups.get_group(hub, group_id)  # 404 for an unknown group
        rows, next_cursor = await queries.list_contacts(
            hub,
            limit=limit,
            cursor=cursor,
            q=q,
            opted_out=opted_out,
            blocked=blocked,
            group_id=group_id,
        )
        return Page[ContactOut](items=[view(ContactOut, r) for r in rows], next_cursor=next_cursor)

    @post("/", status_code=201, summary="Create a contact (409 if the number is one already)")
    async def create_contact(
        self, hub: NamedDependency[Hub], data: JSONBody[ContactIn]
    ) -> ContactOut:
        return view(ContactOut, await contact_service.create_contact(hub, data.model_dump()))

    @get("/export", summary="All contacts as CSV (the import's columns)", media_type="text/csv")
    async def export(self, hub: NamedDependency[Hub]) -> Response[str]:
        return Response(
            await contacts_import.export_csv(hub),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
        )

    @post(
        "/import",
        status_code=200,
        summary="Import contacts from CSV (multipart 'file' or a text/csv body, ≤ 10 MB)",
        request_max_body_size=contacts_import.MAX_IMPORT_BYTES + 64 * 1024,
    )
    async def import_contacts(
        self, hub: NamedDependency[Hub], request: Request[Any, Any, Any]
    ) -> ImportOut:
        """Upsert by phone; answers the report once every row is written. Columns: phone,
        name, language, timezone, group, tags, opted_out, blocked, field:<name>
        (docs/contacts.md)."""
        data, filename = await csv_body(request)
        return view(ImportOut, await contacts_import.import_csv(hub, data, filename))

    @get("/imports/{import_id:str}", summary="An import's progress and report")
    async def get_import(self, hub: NamedDependency[Hub], import_id: FromPath[str]) -> ImportOut:
        return view(ImportOut, await contacts_import.get_import(hub, import_id))

    @get("/{contact_id:str}", summary="One contact")
    async def get_contact(self, hub: NamedDependency[Hub], contact_id: FromPath[str]) -> ContactOut:
        return view(ContactOut, await queries.get_contact(hub, contact_id))

    @patch("/{contact_id:str}", summary="Change a contact (name, language, timezone, tags, …)")
    async def update_contact(
        self, hub: NamedDependency[Hub], contact_id: FromPath[str], data: JSONBody[ContactPatch]
    ) -> ContactOut:
        return view(
            ContactOut, await contact_service.update_contact(hub, contact_id, data.changes())
        )

    @delete("/{contact_id:str}", status_code=204, summary="Delete a contact's personal data")
    async def delete_contact(self, hub: NamedDependency[Hub], contact_id: FromPath[str]) -> None:
        """Erases name, language, timezone, fields, tags and group memberships; the number
        and its opt-out state stay for the message history (docs/contacts.md)."""
        await contact_service.delete_contact(hub, contact_id)


class GroupController(ApiController):
    path = "/groups"
    tags = ["contacts"]

    @post("/", status_code=201, summary="Create a group (409 if the name is taken)")
    async def create_group(self, hub: NamedDependency[Hub], data: JSONBody[GroupIn]) -> GroupOut:
        return group_out(await groups.create_group(hub, data.name, data.description))

    @get("/", summary="List groups by name, with member counts")
    async def list_groups(self, hub: NamedDependency[Hub]) -> list[GroupOut]:
        return [group_out(r) for r in await groups.list_groups(hub)]

    @get("/{group_id:str}", summary="One group")
    async def get_group(self, hub: NamedDependency[Hub], group_id: FromPath[str]) -> GroupOut:
        return group_out(await groups.get_group(hub, group_id))

    @patch("/{group_id:str}", summary="Rename a group or change its description")
    async def update_group(
        self, hub: NamedDependency[Hub], group_id: FromPath[str], data: JSONBody[GroupPatch]
    ) -> GroupOut:
        return group_out(await groups.update_group(hub, group_id, data.changes()))

    @delete("/{group_id:str}", status_code=204, summary="Delete a group (its contacts stay)")
    async def delete_group(self, hub: NamedDependency[Hub], group_id: FromPath[str]) -> None:
        await groups.delete_group(hub, group_id)

    @post("/{group_id:str}/members", status_code=200, summary="Add contacts to a group")
    async def add_members(
        self, hub: NamedDependency[Hub], group_id: FromPath[str], data: JSONBody[MembersIn]
    ) -> MembersOut:
        """By phone (a number that is not a contact yet becomes one) or by contact id."""
        if not data.phones and not data.contact_ids:
            raise BadRequest(
                "give 'phones' or 'contact_ids'",
                details=[{"field": "phones", "message": "empty"}],
            )
        done = await groups.add_members(
            hub, group_id, phones=data.phones, contact_ids=data.contact_ids
        )
        return MembersOut(
            added=done.added,
            already_members=done.already_members,
            refused=[RefusedMember(**r) for r in done.refused],
        )

    @delete(
        "/{group_id:str}/members/{contact_id:str}",
        status_code=204,
        summary="Take a contact out of a group",
    )
    async def remove_member(
        self, hub: NamedDependency[Hub], group_id: FromPath[str], contact_id: FromPath[str]
    ) -> None:
        await groups.remove_member(hub, group_id, contact_id)


route_handlers = [ContactController, GroupController]
