"""REST API ``/api/v1/campaigns``: create, list, read (each event with its counts), edit,
pause / resume (``status``), end (DELETE). The work is :mod:`hub.services.campaigns`;
this module parses and shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, Field

from hub.api.deps import ApiController, Limit
from hub.context import Hub
from hub.schemas import In, Page
from hub.services import campaigns as service

Cursor = Annotated[
    str | None, QueryParameter(description="`next_cursor` of the previous page.", max_length=40)
]


class OffsetIn(In):
    days: int | None = Field(default=None, description="Days after (negative: before) the date.")
    hours: int | None = Field(default=None, description="Hours after (negative: before).")
    minutes: int | None = Field(default=None, description="Minutes after (negative: before).")

    def as_dict(self) -> dict[str, int]:
        """The units given (at least one; they add up)."""
        return self.model_dump(exclude_none=True)


class EventIn(In):
    id: str | None = Field(
        default=None,
        max_length=40,
        description="PATCH only: an existing event's id keeps that event (its counts) and "
        "changes it; events without an id are new, existing ones not listed are removed.",
    )
    field: str = Field(
        min_length=1,
        max_length=100,
        description="The contact field with the date (`contact.fields[field]`, ISO 8601 "
        "date or date and time).",
    )
    offset: OffsetIn = Field(
        description='When, relative to the date: `{"days": -2}`; days, hours and '
        "minutes may be combined (they add up)."
    )
    at_time: str | None = Field(
        default=None,
        max_length=5,
        description="HH:MM (24 h): fire at this local time (the contact's time zone, else "
        "the channel's, else UTC) on the day the offset lands on.",
    )
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=1600,
        description="The SMS, a template over the contact (`{{ contact.name }}`, "
        "`{{ contact.fields.x }}`). Exactly one of `text` and `flow_id`.",
    )
    flow_id: str | None = Field(
        default=None,
        max_length=40,
        description="A published flow started for the contact instead of `text`; its run "
        "sees `trigger.type` `campaign.event` and `trigger.data.campaign_id`.",
    )

    def spec(self) -> service.EventSpec:
        """The service's view of the event."""
        return service.EventSpec(
            field=self.field,
            offset=self.offset.as_dict(),
            at_time=self.at_time,
            text=self.text,
            flow_id=self.flow_id,
            id=self.id,
        )


class CampaignIn(In):
    name: str = Field(min_length=1, max_length=200, description="What the campaign is called.")
    group_id: str = Field(
        min_length=1, max_length=40, description="The group whose members get the events."
    )
    events: list[EventIn] = Field(
        min_length=1, max_length=service.MAX_EVENTS, description="The events."
    )
    channel_id: str | None = Field(
        default=None,
        max_length=40,
        description="The channel texts go out on, whose time zone contacts without one "
        "use (default: the oldest channel that can send).",
    )


class CampaignPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200, description="A new name.")
    events: list[EventIn] | None = Field(
        default=None,
        min_length=1,
        max_length=service.MAX_EVENTS,
        description="The whole new list of events (every member is rescheduled).",
    )
    status: str | None = Field(
        default=None,
        pattern="^(active|paused)$",
        description="`paused` cancels the scheduled fires; `active` schedules them again "
        "(times still ahead only).",
    )


class EventCountsOut(BaseModel):
    scheduled: int = Field(description="Fires waiting for their time.")
    fired: int = Field(description="Fired: the message was written or the run started.")
    skipped: int = Field(
        description="Not fired: the time had passed when it was worked out (`past`), no "
        "date in the field (`no_date`, `bad_date`), or the text did not render."
    )
    cancelled: int = Field(
        description="Scheduled, then called off: left the group, opted out, blocked, "
        "deleted, paused, ended, event removed."
    )
    skipped_reasons: dict[str, int] = Field(description="The skipped fires by reason.")
    next_fire_at: datetime | None = Field(description="The next scheduled fire, if any.")


class EventOut(BaseModel):
    id: str
    field: str
    offset: dict[str, int]
    at_time: str | None
    text: str | None
    flow_id: str | None
    counts: EventCountsOut


class CampaignOut(BaseModel):
    id: str
    name: str
    group_id: str
    channel_id: str | None
    status: str = Field(description="active, paused or ended.")
    events: list[EventOut]
    counts: dict[str, int] = Field(description="Every event's fires added up, by status.")
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


def campaign_out(view: service.CampaignView) -> CampaignOut:
    """API view of a campaign with its events and their counts."""
    events = [
        {**e.model_dump(), "offset": e.offset_parts, "counts": service.counts_of(view, e.id)}
        for e in view.events
    ]
    c = view.campaign
    return CampaignOut.model_validate(
        {**c.model_dump(), "events": events, "counts": service.totals(view)}
    )


class CampaignController(ApiController):
    path = "/campaigns"
    tags = ["campaigns"]

    @post("/", status_code=201, summary="Create a campaign (events relative to a date field)")
    async def create(self, hub: NamedDependency[Hub], data: JSONBody[CampaignIn]) -> CampaignOut:
        """422 naming the field for an unknown group, flow or channel, a bad offset or
        at_time, or a template that does not render."""
        view = await service.create_campaign(
            hub,
            service.CampaignSpec(
                name=data.name,
                group_id=data.group_id,
                events=tuple(e.spec() for e in data.events),
                channel_id=data.channel_id,
            ),
        )
        return campaign_out(view)

    @get("/", summary="List campaigns, newest first")
    async def list_campaigns(
        self,
        hub: NamedDependency[Hub],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[str | None, QueryParameter(pattern="^(active|paused|ended)$")] = None,
    ) -> Page[CampaignOut]:
        views, next_cursor = await service.list_campaigns(
            hub, limit=limit, cursor=cursor, status=status
        )
        return Page[CampaignOut](items=[campaign_out(v) for v in views], next_cursor=next_cursor)

    @get("/{campaign_id:str}", summary="One campaign with each event's counts")
    async def get_campaign(
        self, hub: NamedDependency[Hub], campaign_id: FromPath[str]
    ) -> CampaignOut:
        return campaign_out(await service.get_campaign(hub, campaign_id))

    @patch("/{campaign_id:str}", summary="Rename, replace the events, pause or resume")
    async def update(
        self, hub: NamedDependency[Hub], campaign_id: FromPath[str], data: JSONBody[CampaignPatch]
    ) -> CampaignOut:
        """Editing the events reschedules every member; 409 once ended."""
        change = service.CampaignChange(
            name=data.name,
            events=tuple(e.spec() for e in data.events) if data.events is not None else None,
            status=data.status,
        )
        return campaign_out(await service.update_campaign(hub, campaign_id, change))

    @delete("/{campaign_id:str}", status_code=204, summary="End a campaign")
    async def end(self, hub: NamedDependency[Hub], campaign_id: FromPath[str]) -> None:
        """Cancels the scheduled fires; the campaign and its counts stay (status ended)."""
        await service.end_campaign(hub, campaign_id)


route_handlers = [CampaignController]
