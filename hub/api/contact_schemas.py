"""API shapes of contacts, groups and CSV imports (issue 11, part A)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from hub.schemas import In, Patch


class ContactIn(In):
    phone: str = Field(
        min_length=1, max_length=64, description="E.164 or national (SMSHUB_DEFAULT_REGION)."
    )
    name: str = Field(default="", max_length=200)
    language: str | None = Field(default=None, max_length=35, description="BCP 47 tag, e.g. en.")
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA time zone, e.g. Europe/Paris."
    )
    tags: list[str] = Field(default_factory=list, max_length=100)
    fields: dict[str, str] = Field(default_factory=dict, description="Free fields, name: value.")
    blocked: bool = Field(
        default=False, description="Blocked: nothing is sent to it, its SMS start no flow."
    )


class GroupIn(In):
    name: str = Field(min_length=1, max_length=200, description="Unique among groups.")
    description: str = Field(default="", max_length=1000)


class GroupPatch(Patch):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)


class GroupOut(BaseModel):
    id: str
    name: str
    description: str
    member_count: int = Field(description="Contacts in the group.")
    created_at: datetime
    updated_at: datetime


class MembersIn(In):
    phones: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Numbers to add; a number that is not a contact yet becomes one.",
    )
    contact_ids: list[str] = Field(default_factory=list, max_length=1000)


class RefusedMember(BaseModel):
    value: str = Field(description="The phone or contact id as given.")
    reason: str


class MembersOut(BaseModel):
    added: list[str] = Field(description="Phones / contact ids added now, as given.")
    already_members: list[str]
    refused: list[RefusedMember]


class RefusedRow(BaseModel):
    row: int = Field(description="Line in the file; the header is line 1.")
    phone: str = Field(description="The phone cell as written.")
    reason: str


class ImportOut(BaseModel):
    id: str
    status: str = Field(description="running, completed or failed.")
    filename: str
    total_rows: int = Field(description="Non-blank rows below the header.")
    processed_rows: int
    created: int
    updated: int
    unchanged: int
    refused: list[RefusedRow]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
