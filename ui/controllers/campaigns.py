"""Campaigns: the list with each campaign's counts, a form to create one (a group, up to
three events — a date field, an offset before or after it, a local time, a text or a
published flow), each campaign's page with its events' counts and pause / resume / end."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from hub.errors import ApiError
from hub.services import campaigns as service
from hub.services import channels as channel_service
from hub.services import flows as flow_service
from hub.services import groups
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, read_form, render, see_other

#: Event rows the create form shows (a row without a field name is left out).
FORM_EVENTS = 3
_UNITS = ("days", "hours", "minutes")
_API_FIELD = re.compile(r"^events\[(\d+)\]\.(\w+)")


def _form_name(name: str) -> str:
    """A service error's field (``events[0].offset``) as the form names it (``ev0_amount``)."""
    found = _API_FIELD.match(name)
    if not found:
        return name
    part = {"offset": "amount", "id": "field"}.get(found[2], found[2])
    return f"ev{found[1]}_{part}"


def _event(form: dict[str, str], i: int, errors: FormErrors) -> service.EventSpec | None:
    """Event row ``i`` of the form, or None when it is left empty."""
    p = f"ev{i}_"
    field_name = form.get(p + "field", "").strip()
    if not field_name:
        return None
    unit = form.get(p + "unit", "days")
    amount_raw = form.get(p + "amount", "0").strip() or "0"
    if unit not in _UNITS or not re.fullmatch(r"\d{1,7}", amount_raw):
        errors.add(p + "amount", "a whole number of days, hours or minutes")
        return None
    amount = int(amount_raw) * (-1 if form.get(p + "when") == "before" else 1)
    kind_flow = form.get(p + "kind") == "flow"
    text = form.get(p + "text", "").strip()
    flow_id = form.get(p + "flow_id", "").strip()
    if kind_flow and not flow_id:
        errors.add(p + "flow_id", "pick a published flow")
    if not kind_flow and not text:
        errors.add(p + "text", "write the message")
    return service.EventSpec(
        field=field_name[:100],
        offset={unit: amount},
        at_time=form.get(p + "at_time", "").strip() or None,
        text=None if kind_flow else text[:1600],
        flow_id=flow_id if kind_flow else None,
    )


class CampaignsController(Controller):
    path = "/campaigns"
    guards = [require_user]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
    ) -> Template:
        hub = hub_of(request)
        views, _next = await service.list_campaigns(hub, limit=50, cursor=None)
        return render(
            request,
            "campaigns/list.html",
            status_code=422 if errors else 200,
            rows=[{"c": v.campaign, "counts": service.totals(v)} for v in views],
            groups=await groups.list_groups(hub),
            channels=await channel_service.list_channels(hub),
            flows=[f for f in await flow_service.list_flows(hub) if f.published_version],
            events=range(FORM_EVENTS),
            errors=errors or FormErrors(),
            values=values or {},
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        return await self._page(request)

    @post("/", status_code=200)
    async def create(self, request: Request[Any, Any, Any]) -> Template | Response[Any]:
        form = await read_form(request)
        errors = FormErrors()
        name = errors.required(form, "name", "name the campaign, e.g. 'Appointment reminders'")
        group_id = errors.required(form, "group_id", "pick a group")
        events = [e for i in range(FORM_EVENTS) if (e := _event(form, i, errors))]
        if not events and not errors:
            errors.add("ev0_field", "give at least one event: the contact field with the date")
        if errors:
            return await self._page(request, errors, form)
        spec = service.CampaignSpec(
            name=name,
            group_id=group_id,
            events=tuple(events),
            channel_id=form.get("channel_id") or None,
        )
        try:
            view = await service.create_campaign(hub_of(request), spec)
        except ApiError as exc:
            found = FormErrors.from_api_error(exc)
            found.fields = {_form_name(k): v for k, v in found.fields.items()}
            return await self._page(request, found, form)
        return see_other(f"/campaigns/{view.campaign.id}")

    @get("/{campaign_id:str}")
    async def detail(self, request: Request[Any, Any, Any], campaign_id: FromPath[str]) -> Template:
        view = await service.get_campaign(hub_of(request), campaign_id)
        events = [{"e": e, "counts": service.counts_of(view, e.id)} for e in view.events]
        return render(
            request,
            "campaigns/detail.html",
            c=view.campaign,
            events=events,
            counts=service.totals(view),
        )

    @post("/{campaign_id:str}/{action:str}", status_code=303)
    async def act(
        self, request: Request[Any, Any, Any], campaign_id: FromPath[str], action: FromPath[str]
    ) -> Response[Any]:
        """Pause, resume or end (a 409 once ended shows as an error page)."""
        hub = hub_of(request)
        if action == "end":
            await service.end_campaign(hub, campaign_id)
        elif action in ("pause", "resume"):
            status = "paused" if action == "pause" else "active"
            await service.update_campaign(hub, campaign_id, service.CampaignChange(status=status))
        return see_other(f"/campaigns/{campaign_id}")


__all__ = ["CampaignsController"]
