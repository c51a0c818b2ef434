"""Broadcasts: the list with progress bars and counts, a form to create one (groups, text
with a preview for one member, SMS parts and encoding, or a published flow; now or later,
in the channel's time zone), each broadcast's page with pause / resume / cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from hub.context import Hub
from hub.errors import ApiError
from hub.services import broadcasts as service
from hub.services import channels as channel_service
from hub.services import flows as flow_service
from hub.services import groups
from hub.services.broadcasts_state import change_state
from hub.services.sending import resolve_route
from ui.auth import hub_of, require_user
from ui.controllers.conversations import _FormError, _send_later, _zone_of
from ui.pages import FormErrors, is_htmx, read_form, read_form_lists, render, see_other

#: The form's fields (errors on anything else go to the form's own message).
FIELDS = ("name", "text", "flow_id", "group_ids", "channel_id", "send_at", "quiet_hours")


class BroadcastsController(Controller):
    path = "/broadcasts"
    guards = [require_user]
    include_in_schema = False

    async def _rows(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        hub = hub_of(request)
        rows, _next = await service.list_broadcasts(hub, limit=50, cursor=None)
        return [{"b": r, "counts": await hub.store.read(service.counts(r.id))} for r in rows]

    async def _page(
        self,
        request: Request[Any, Any, Any],
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
    ) -> Template:
        hub = hub_of(request)
        return render(
            request,
            "broadcasts/list.html",
            status_code=422 if errors else 200,
            rows=await self._rows(request),
            groups=await groups.list_groups(hub),
            channels=await channel_service.list_channels(hub),
            flows=[f for f in await flow_service.list_flows(hub) if f.published_version],
            errors=errors or FormErrors(),
            values=values or {},
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        if is_htmx(request):  # the list refreshes itself while something runs
            return render(request, "broadcasts/_rows.html", rows=await self._rows(request))
        return await self._page(request)

    @post("/", status_code=200)
    async def create(self, request: Request[Any, Any, Any]) -> Template | Response[Any]:
        hub = hub_of(request)
        form = await read_form(request)
        lists = await read_form_lists(request)
        values: dict[str, Any] = {**form, "group_ids": lists.get("group_ids", [])}
        errors = FormErrors()
        name = errors.required(form, "name", "name the broadcast, e.g. 'Spring sale'")
        text, flow_id = _content(form, errors)
        send_at = await _send_at(hub, form, errors)
        quiet = _quiet(form, errors)
        if errors:
            return await self._page(request, errors, values)
        spec = service.BroadcastSpec(
            name=name,
            text=text,
            flow_id=flow_id,
            group_ids=tuple(values["group_ids"]),
            channel_id=form.get("channel_id") or None,
            send_at=send_at,
            quiet_hours=quiet,
        )
        try:
            row = await service.create_broadcast(hub, spec)
        except ApiError as exc:
            errors = FormErrors.from_api_error(exc).shown_on(FIELDS)
            return await self._page(request, errors, values)
        return see_other(f"/broadcasts/{row.id}")

    @post("/preview", status_code=200)
    async def preview(self, request: Request[Any, Any, Any]) -> Template:
        """The text for one member of the first group picked, its parts and encoding."""
        form = await read_form(request)
        picked = (await read_form_lists(request)).get("group_ids", [])
        found = await service.preview(
            hub_of(request), form.get("text", ""), picked[0] if picked else None
        )
        return render(request, "broadcasts/_preview.html", preview=found)

    @get("/{broadcast_id:str}")
    async def detail(
        self, request: Request[Any, Any, Any], broadcast_id: FromPath[str]
    ) -> Template:
        hub = hub_of(request)
        row = await service.get_broadcast(hub, broadcast_id)
        counts = await hub.store.read(service.counts(row.id))
        waiting = await service.waiting_until(hub, row, counts)
        name = "broadcasts/_progress.html" if is_htmx(request) else "broadcasts/detail.html"
        return render(request, name, b=row, counts=counts, waiting=waiting)

    @post("/{broadcast_id:str}/{action:str}", status_code=303)
    async def act(
        self, request: Request[Any, Any, Any], broadcast_id: FromPath[str], action: FromPath[str]
    ) -> Response[Any]:
        """Pause, resume or cancel (a 409 from the wrong state shows as an error page)."""
        if action not in ("pause", "resume", "cancel"):
            return see_other(f"/broadcasts/{broadcast_id}")
        await change_state(hub_of(request), broadcast_id, action)
        return see_other(f"/broadcasts/{broadcast_id}")


def _content(form: dict[str, str], errors: FormErrors) -> tuple[str | None, str | None]:
    """(text, None) for a text broadcast, (None, flow id) for a flow one (``kind``)."""
    if form.get("kind") == "flow":
        flow_id = form.get("flow_id", "").strip()
        if not flow_id:
            errors.add("flow_id", "pick a published flow")
        return None, flow_id or None
    return errors.required(form, "text", "write the message", most=1600), None


async def _send_at(hub: Hub, form: dict[str, str], errors: FormErrors) -> datetime | None:
    """The start time, read in the time zone of the channel picked (else of the channel
    the hub picks, else UTC) by the conversation composer's helper; None for now."""
    channel_id = form.get("channel_id") or None
    zone = await _zone_of(hub, channel_id)
    if channel_id is None and form.get("send_at", "").strip():
        try:
            zone = (await resolve_route(hub, "", channel_id=None, device_id=None)).channel.timezone
        except ApiError:
            zone = None  # no channel can send: create_broadcast says so for text
    try:
        return _send_later(form.get("send_at", ""), zone)
    except _FormError as exc:
        errors.merge(exc.errors)
    except OverflowError:
        errors.add("send_at", "a date and time, e.g. 2026-12-24T09:00")
    return None


def _quiet(form: dict[str, str], errors: FormErrors) -> dict[str, str] | None:
    start, end = form.get("quiet_start", "").strip(), form.get("quiet_end", "").strip()
    if not start and not end:
        return None
    if not (start and end) or start == end:
        errors.add("quiet_hours", "give both ends of the window, e.g. 21:00 and 08:00")
        return None
    return {"start": start, "end": end}


__all__ = ["BroadcastsController"]
