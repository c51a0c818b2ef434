"""REST API ``/api/v1/broadcasts``: create, list, read (with live counts), pause, resume,
cancel. The work is :mod:`hub.services.broadcasts`; this module parses and shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, Field

from hub.api.deps import ApiController, Limit
from hub.context import Hub
from hub.models import Broadcast
from hub.schemas import AwareTime, In, Page, QuietHoursIn
from hub.services import broadcasts as service
from hub.services.broadcasts_state import change_state

Cursor = Annotated[
    str | None, QueryParameter(description="`next_cursor` of the previous page.", max_length=40)
]
_Ids = Annotated[str, Field(min_length=1, max_length=40)]


class BroadcastIn(In):
    name: str = Field(min_length=1, max_length=200, description="What the broadcast is called.")
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=1600,
        description="The SMS, a template over the contact: `{{ contact.name }}`, "
        "`{{ contact.fields.x }}`, `contact.phone`, `contact.language`, `contact.tags`. "
        "Exactly one of `text` and `flow_id`.",
    )
    flow_id: str | None = Field(
        default=None,
        max_length=40,
        description="A published flow started once for each recipient instead of `text`; "
        "its runs see `trigger.data.broadcast_id`.",
    )
    group_ids: list[_Ids] = Field(
        default_factory=list, max_length=service.MAX_GROUP_IDS, description="Groups to send to."
    )
    contact_ids: list[_Ids] = Field(
        default_factory=list,
        max_length=service.MAX_CONTACT_IDS,
        description="Contacts to send to (with the groups' members; each contact once).",
    )
    channel_id: str | None = Field(
        default=None,
        max_length=40,
        description="The channel to send on (default: the oldest channel that can send).",
    )
    send_at: AwareTime | None = Field(
        default=None,
        description="Start later (ISO 8601 with offset); recipients are resolved then. "
        "Default: now.",
    )
    quiet_hours: QuietHoursIn | None = Field(
        default=None,
        description="No message goes out in this daily window (the contact's time zone, "
        "else the channel's); default: the channel's quiet hours.",
    )


class CountsOut(BaseModel):
    recipients: int = Field(description="Contacts resolved at start (skipped ones included).")
    skipped_opted_out: int = Field(description="Recipients skipped because they opted out.")
    skipped_blocked: int = Field(description="Recipients skipped because they are blocked.")
    skipped: int = Field(description="Every skipped recipient (opted out, deleted, template).")
    queued: int = Field(description="Not handed to the gateway yet (held while paused).")
    sent: int = Field(description="Handed to the gateway, no delivery report yet.")
    delivered: int = Field(description="Delivered (reported by the gateway).")
    failed: int = Field(description="Failed or refused by the send pipeline.")
    cancelled: int = Field(description="Never sent because the broadcast was cancelled.")
    replied: int = Field(description="Recipients who replied within the reply window.")
    runs: dict[str, int] = Field(description="Flow broadcasts: runs started, by run status.")


class BroadcastOut(BaseModel):
    id: str
    name: str
    status: str = Field(description="scheduled, running, paused, completed or cancelled.")
    text: str | None
    flow_id: str | None
    flow_version: int | None
    channel_id: str | None
    group_ids: list[str]
    contact_ids: list[str]
    send_at: datetime
    quiet_hours: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    counts: CountsOut
    waiting_for_capacity_until: datetime | None = Field(
        default=None,
        description="While running with messages queued and every SIM of the channel at "
        "its rate or daily cap: when the next one can go (nothing is dropped, it waits).",
    )


async def broadcast_out(hub: Hub, row: Broadcast) -> BroadcastOut:
    """API view of a broadcast with its live counts."""
    found = await hub.store.read(service.counts(row.id))
    waiting = await service.waiting_until(hub, row, found)
    return BroadcastOut.model_validate(
        {**row.model_dump(), "counts": found, "waiting_for_capacity_until": waiting}
    )


class BroadcastController(ApiController):
    path = "/broadcasts"
    tags = ["broadcasts"]

    @post("/", status_code=201, summary="Create a broadcast (send now or at send_at)")
    async def create(self, hub: NamedDependency[Hub], data: JSONBody[BroadcastIn]) -> BroadcastOut:
        """422 naming the field for unknown groups, contacts, flow or channel, or a template
        that does not render."""
        row = await service.create_broadcast(
            hub,
            service.BroadcastSpec(
                name=data.name,
                text=data.text,
                flow_id=data.flow_id,
                group_ids=tuple(data.group_ids),
                contact_ids=tuple(data.contact_ids),
                channel_id=data.channel_id,
                send_at=data.send_at,
                quiet_hours=data.quiet_hours.model_dump() if data.quiet_hours else None,
            ),
        )
        return await broadcast_out(hub, row)

    @get("/", summary="List broadcasts, newest first")
    async def list_broadcasts(
        self,
        hub: NamedDependency[Hub],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[
            str | None,
            QueryParameter(pattern="^(scheduled|running|paused|completed|cancelled)$"),
        ] = None,
    ) -> Page[BroadcastOut]:
        rows, next_cursor = await service.list_broadcasts(
            hub, limit=limit, cursor=cursor, status=status
        )
        items = [await broadcast_out(hub, r) for r in rows]
        return Page[BroadcastOut](items=items, next_cursor=next_cursor)

    @get("/{broadcast_id:str}", summary="One broadcast with its status and live counts")
    async def get_broadcast(
        self, hub: NamedDependency[Hub], broadcast_id: FromPath[str]
    ) -> BroadcastOut:
        return await broadcast_out(hub, await service.get_broadcast(hub, broadcast_id))

    @post("/{broadcast_id:str}/pause", status_code=200, summary="Pause a running broadcast")
    async def pause(self, hub: NamedDependency[Hub], broadcast_id: FromPath[str]) -> BroadcastOut:
        """Messages not handed over yet are held; 409 unless running."""
        return await broadcast_out(hub, await change_state(hub, broadcast_id, "pause"))

    @post("/{broadcast_id:str}/resume", status_code=200, summary="Resume a paused broadcast")
    async def resume(self, hub: NamedDependency[Hub], broadcast_id: FromPath[str]) -> BroadcastOut:
        """Carries on where it stopped; 409 unless paused."""
        return await broadcast_out(hub, await change_state(hub, broadcast_id, "resume"))

    @post("/{broadcast_id:str}/cancel", status_code=200, summary="Cancel a broadcast")
    async def cancel(self, hub: NamedDependency[Hub], broadcast_id: FromPath[str]) -> BroadcastOut:
        """Nothing more goes out; the counts stay. 409 once completed or cancelled."""
        return await broadcast_out(hub, await change_state(hub, broadcast_id, "cancel"))


route_handlers = [BroadcastController]
