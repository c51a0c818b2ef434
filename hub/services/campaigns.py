"""Campaigns: events timed relative to a date field of every member of one group ("2 days
before ``appointment_date`` at 10:00"), each a text (a template over the contact) or a
published flow, fired once per member and date.

What holds, and where the code makes it hold:

* :func:`create_campaign` / :func:`update_campaign` check everything a client can get
  wrong (422 naming the field: the group, a flow, the channel, an offset, ``at_time``, a
  template) and write the campaign, its events and every member's fire rows with their
  jobs in ONE unit (:func:`hub.services.campaigns_schedule.reschedule_campaign`), so what
  the API acknowledged is scheduled, and a restart keeps it (the jobs are rows).
* Editing the events reschedules every member; pausing cancels the scheduled fires
  (reason ``paused``) and resuming works them out again, future times only; ending
  (``DELETE``) cancels them (reason ``ended``) and keeps the campaign and its counts.
* Changes of a contact reschedule its fires where they happen (see
  :mod:`hub.services.campaigns_schedule`); the fire itself is
  :mod:`hub.services.campaigns_jobs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from flows import TemplateError
from hub.context import Hub
from hub.errors import Conflict, NotFound, Unprocessable
from hub.ids import new_id
from hub.models import Campaign, CampaignEvent
from hub.paging import keyset_page
from hub.services.broadcasts import SAMPLE_CONTACT, check_flow, field_error, render_text
from hub.services.campaign_timing import at_time_problem, offset_minutes, offset_problem
from hub.services.campaigns_schedule import cancel_campaign_fires, reschedule_campaign
from hub.services.sending import MAX_TEXT_CHARS, resolve_route
from hub.store import Json, Unit, as_datetime, execute, fetch_all, fetch_value, insert_rows

#: Most events one campaign may have.
MAX_EVENTS = 20
#: What a fire row can be (the counts of each event).
FIRE_STATUSES = ("scheduled", "fired", "skipped", "cancelled")


@dataclass(frozen=True)
class EventSpec:
    """One event as a client gives it (``id`` keeps an existing event when editing)."""

    field: str
    offset: dict[str, int]
    at_time: str | None = None
    text: str | None = None
    flow_id: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class CampaignSpec:
    """What a client asks for (the API body, checked by :func:`create_campaign`)."""

    name: str
    group_id: str
    events: tuple[EventSpec, ...]
    channel_id: str | None = None


@dataclass(frozen=True)
class CampaignChange:
    """A PATCH: only the given parts change."""

    name: str | None = None
    events: tuple[EventSpec, ...] | None = None
    #: active / paused
    status: str | None = None


@dataclass
class CampaignView:
    """A campaign with its events and each event's counts (what the API and UI show)."""

    campaign: Campaign
    events: list[CampaignEvent]
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)


# -- checks -----------------------------------------------------------------------------


def _check_event(index: int, event: EventSpec) -> None:
    where = f"events[{index}]"
    if bool(event.text) == bool(event.flow_id):
        raise field_error(f"{where}.text", "give exactly one of text or flow_id")
    problem = offset_problem(event.offset)
    if problem:
        raise field_error(f"{where}.offset", problem)
    if event.at_time is not None and (problem := at_time_problem(event.at_time)):
        raise field_error(f"{where}.at_time", problem)
    if event.text is not None:
        if len(event.text) > MAX_TEXT_CHARS:
            raise field_error(f"{where}.text", f"text is longer than {MAX_TEXT_CHARS} characters")
        try:
            render_text(event.text, SAMPLE_CONTACT)
        except TemplateError as exc:
            raise field_error(
                f"{where}.text", f"text is not a valid template: {exc}", "bad_template"
            ) from exc


async def _check_events(hub: Hub, events: tuple[EventSpec, ...]) -> None:
    if not events:
        raise field_error("events", "a campaign needs at least one event")
    if len(events) > MAX_EVENTS:
        raise field_error("events", f"at most {MAX_EVENTS} events per campaign")
    for index, event in enumerate(events):
        _check_event(index, event)
        if event.flow_id:
            try:
                await check_flow(hub, event.flow_id)
            except Unprocessable as exc:
                raise field_error(f"events[{index}].flow_id", str(exc), exc.code) from exc


async def _check_group(hub: Hub, group_id: str) -> None:
    found = await hub.store.read(fetch_value("SELECT id FROM groups WHERE id = ?", (group_id,)))
    if found is None:
        raise field_error("group_id", f"unknown group {group_id!r}", "unknown_group")


async def _channel_for(hub: Hub, spec: CampaignSpec) -> str | None:
    """The campaign's channel: the given one, else the one a send would pick; a campaign
    of flows only may have none (its times are then in UTC for contacts without a zone)."""
    needs = spec.channel_id is not None or any(e.text for e in spec.events)
    try:
        route = await resolve_route(hub, "", channel_id=spec.channel_id, device_id=None)
    except Unprocessable:
        if needs:
            raise
        return None
    return route.channel.id


# -- create, edit, end ------------------------------------------------------------------


async def create_campaign(hub: Hub, spec: CampaignSpec) -> CampaignView:
    """Check and store a campaign with every member's fires; 422 naming the field otherwise."""
    await _check_group(hub, spec.group_id)
    await _check_events(hub, spec.events)
    channel_id = await _channel_for(hub, spec)
    campaign_id = new_id("cmp")
    now = hub.clock()
    await hub.store.write(lambda: _insert(hub, campaign_id, spec, channel_id, now))
    return await get_campaign(hub, campaign_id)


def _insert(
    hub: Hub, campaign_id: str, spec: CampaignSpec, channel_id: str | None, now: datetime
) -> Unit[None]:
    yield from insert_rows(
        "campaigns",
        ("id", "name", "group_id", "channel_id", "status", "created_at", "updated_at"),
        [(campaign_id, spec.name, spec.group_id, channel_id, "active", now, now)],
    )
    yield from _write_events(campaign_id, spec.events, now)
    yield from reschedule_campaign(hub, campaign_id, now)


_EVENT_COLUMNS = (
    "field",
    "offset_parts",
    "offset_minutes",
    "at_time",
    "text",
    "flow_id",
    "position",
)


def _event_values(event: EventSpec, position: int) -> tuple[Any, ...]:
    minutes = offset_minutes(event.offset)
    return (event.field, Json(event.offset), minutes, event.at_time, event.text, event.flow_id) + (
        position,
    )


def _write_events(campaign_id: str, events: tuple[EventSpec, ...], now: datetime) -> Unit[None]:
    """Unit: the events as given: an ``id`` of a live event updates it, others are new;
    live events not given are removed (deleted_at) and their scheduled fires cancelled."""
    rows = yield from fetch_all(
        "SELECT id FROM campaign_events WHERE campaign_id = ? AND deleted_at IS NULL",
        (campaign_id,),
    )
    live = {str(r[0]) for r in rows}
    kept = {e.id for e in events if e.id in live}
    gone = live - kept
    if gone:
        yield from cancel_campaign_fires(campaign_id, "event_removed", now, gone)
        for event_id in sorted(gone):
            yield from execute(
                "UPDATE campaign_events SET deleted_at = ?, updated_at = ? WHERE id = ?",
                (now, now, event_id),
            )
    for position, event in enumerate(events):
        if event.id in kept:
            sets = ", ".join(f"{c} = ?" for c in _EVENT_COLUMNS)
            yield from execute(
                f"UPDATE campaign_events SET {sets}, updated_at = ? WHERE id = ?",
                (*_event_values(event, position), now, event.id),
            )
            continue
        yield from insert_rows(
            "campaign_events",
            ("id", "campaign_id", *_EVENT_COLUMNS, "created_at", "updated_at"),
            [(new_id("cev"), campaign_id, *_event_values(event, position), now, now)],
        )


async def update_campaign(hub: Hub, campaign_id: str, change: CampaignChange) -> CampaignView:
    """Rename, replace the events (rescheduling every member), pause or resume; 409 once
    ended."""
    current = await get_campaign(hub, campaign_id)
    if current.campaign.status == "ended":
        raise Conflict(f"campaign {campaign_id!r} has ended", code="campaign_ended")
    if change.events is not None:
        await _check_events(hub, change.events)
        if any(e.text for e in change.events) and current.campaign.channel_id is None:
            raise field_error("events", "a text event needs a channel; create one first")
        known = {e.id for e in current.events}
        for index, event in enumerate(change.events):
            if event.id is not None and event.id not in known:
                raise field_error(f"events[{index}].id", f"unknown event {event.id!r}")
    await hub.store.write(lambda: _update(hub, campaign_id, change, hub.clock()))
    return await get_campaign(hub, campaign_id)


def _update(hub: Hub, campaign_id: str, change: CampaignChange, now: datetime) -> Unit[None]:
    status = yield from _lock_status(hub, campaign_id)
    if status == "ended":
        return  # ended since the check: nothing to change
    if change.name is not None:
        yield from execute("UPDATE campaigns SET name = ? WHERE id = ?", (change.name, campaign_id))
    if change.events is not None:
        yield from _write_events(campaign_id, change.events, now)
    if change.status is not None and change.status != status:
        status = change.status
        yield from execute("UPDATE campaigns SET status = ? WHERE id = ?", (status, campaign_id))
        if status == "paused":
            yield from cancel_campaign_fires(campaign_id, "paused", now)
    yield from execute("UPDATE campaigns SET updated_at = ? WHERE id = ?", (now, campaign_id))
    if status == "active":
        yield from reschedule_campaign(hub, campaign_id, now)


def _lock_status(hub: Hub, campaign_id: str) -> Unit[str | None]:
    sql = "SELECT status FROM campaigns WHERE id = ?"
    if hub.store.dialect == "postgresql":
        sql += " FOR UPDATE"
    found = yield from fetch_value(sql, (campaign_id,))
    return None if found is None else str(found)


async def end_campaign(hub: Hub, campaign_id: str) -> None:
    """End a campaign: its scheduled fires are cancelled; it stays readable (``ended``)."""
    await get_campaign(hub, campaign_id)
    await hub.store.write(lambda: _end(hub, campaign_id, hub.clock()))


def _end(hub: Hub, campaign_id: str, now: datetime) -> Unit[None]:
    status = yield from _lock_status(hub, campaign_id)
    if status in (None, "ended"):
        return
    yield from execute(
        "UPDATE campaigns SET status = 'ended', ended_at = ?, updated_at = ? WHERE id = ?",
        (now, now, campaign_id),
    )
    yield from cancel_campaign_fires(campaign_id, "ended", now)


# -- reading ----------------------------------------------------------------------------


async def get_campaign(hub: Hub, campaign_id: str) -> CampaignView:
    """One campaign with its live events and their counts, or a 404."""
    async with hub.db.read() as session:
        campaign = await session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id!r} not found", code="campaign_not_found")
        found = await session.execute(
            sa.select(CampaignEvent)
            .where(
                col(CampaignEvent.campaign_id) == campaign_id,
                col(CampaignEvent.deleted_at).is_(None),
            )
            .order_by(col(CampaignEvent.position))
        )
        events = list(found.scalars())
    counts = await hub.store.read(event_counts(campaign_id))
    return CampaignView(campaign, events, counts)


async def list_campaigns(
    hub: Hub, *, limit: int, cursor: str | None, status: str | None = None
) -> tuple[list[CampaignView], str | None]:
    """A page of campaigns, newest first, each with its events and counts."""
    stmt = sa.select(Campaign)
    if status:
        stmt = stmt.where(col(Campaign.status) == status)
    rows, next_cursor = await keyset_page(
        hub.db, stmt, key=col(Campaign.id), limit=limit, cursor=cursor
    )
    return [await get_campaign(hub, row.id) for row in rows], next_cursor


def event_counts(campaign_id: str) -> Unit[dict[str, dict[str, Any]]]:
    """Unit: per event id, its fires by status, the skipped ones by reason and the next
    scheduled time (one grouped query)."""
    rows = yield from fetch_all(
        "SELECT event_id, status, reason, count(*), min(fire_at) FROM campaign_fires "
        "WHERE campaign_id = ? GROUP BY event_id, status, reason",
        (campaign_id,),
    )
    out: dict[str, dict[str, Any]] = {}
    for event_id, status, reason, n, first in rows:
        counts = out.setdefault(str(event_id), _empty_counts())
        counts[status] = counts.get(status, 0) + int(n)
        if status == "skipped":
            key = reason or "skipped"
            counts["skipped_reasons"][key] = counts["skipped_reasons"].get(key, 0) + int(n)
        first = as_datetime(first)
        if status == "scheduled" and first is not None:
            earlier = counts["next_fire_at"]
            counts["next_fire_at"] = first if earlier is None else min(earlier, first)
    return out


def _empty_counts() -> dict[str, Any]:
    return {**dict.fromkeys(FIRE_STATUSES, 0), "skipped_reasons": {}, "next_fire_at": None}


def counts_of(view: CampaignView, event_id: str) -> dict[str, Any]:
    """The counts of one event of a campaign (zeros when it has no fires yet)."""
    return view.counts.get(event_id) or _empty_counts()


def totals(view: CampaignView) -> dict[str, int]:
    """Every event's fires added up, by status."""
    total = dict.fromkeys(FIRE_STATUSES, 0)
    for event in view.events:
        counts = counts_of(view, event.id)
        for status in FIRE_STATUSES:
            total[status] += counts[status]
    return total
