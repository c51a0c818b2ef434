"""Conversations: one thread per contact and channel, sending, simulated inbound SMS."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from hub.errors import ApiError
from hub.services import channels as channel_service
from hub.services import pacing, queries, scheduled
from hub.services.sending import SendCommand, submit_send
from ui import readmodels
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, is_htmx, read_form, render, see_other
from ui.simulate import simulator_channels
from ui.simulate_form import simulate_from_form

#: Service error fields -> the UI form's field names.
_SEND_FIELDS = {"to": "to", "message": "message", "channel_id": "channel_id", "send_at": "send_at"}


def _send_later(value: str, zone_name: str | None) -> datetime | None:
    """The composer's "send later" field (a local date and time in the channel's timezone,
    else UTC) as aware UTC; None when empty; ApiError naming the field when unreadable."""
    if not value.strip():
        return None
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        errors = FormErrors()
        errors.add("send_at", "give a date and time, e.g. 2026-12-24T09:00")
        raise _FormError(errors) from None
    zone = pacing.zone(zone_name) or UTC
    return local.replace(tzinfo=zone).astimezone(UTC) if local.tzinfo is None else local


class _FormError(Exception):
    def __init__(self, errors: FormErrors) -> None:
        super().__init__("form error")
        self.errors = errors


def _send_errors(exc: ApiError) -> FormErrors:
    if exc.code == "opted_out":
        errors = FormErrors()
        errors.add("message", exc.message)
        return errors
    errors = FormErrors.from_api_error(exc)
    errors.fields = {_SEND_FIELDS.get(k, "message"): v for k, v in errors.fields.items()}
    if errors.message and not errors.fields:
        errors.add("message", errors.message)
        errors.message = ""
    return errors


async def _zone_of(hub: Any, channel_id: str | None) -> str | None:
    """The channel's timezone name (the "send later" field is read in it)."""
    channel = await hub.channels.get(channel_id) if channel_id else None
    return channel.timezone if channel is not None else None


class ConversationsController(Controller):
    path = "/conversations"
    guards = [require_user]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        *,
        contact_id: str | None = None,
        channel_id: str | None = None,
        q: FromQuery[str | None] = None,
        status_code: int = 200,
        **extra: Any,
    ) -> Template:
        hub = hub_of(request)
        contact = await queries.get_contact(hub, contact_id) if contact_id else None
        channels = await channel_service.list_channels(hub)
        context: dict[str, Any] = {
            "threads": await readmodels.threads(hub, q=q),
            "q": q or "",
            "contact": contact,
            "channel_id": channel_id,
            "channel_names": await readmodels.channel_names(hub),
            "channels": channels,
            "sim_channels": await simulator_channels(hub),
            "messages": (
                await readmodels.thread_messages(hub, contact.id, channel_id or "")
                if contact
                else []
            ),
            "send_errors": FormErrors(),
            "send_values": {},
            "send_zone": await _zone_of(hub, channel_id),
            "new_errors": FormErrors(),
            "new_values": {},
            "sim_errors": FormErrors(),
            "sim_values": {},
        }
        context.update(extra)
        return render(request, "conversations/page.html", status_code=status_code, **context)

    @get("/")
    async def index(
        self, request: Request[Any, Any, Any], q: FromQuery[str | None] = None
    ) -> Template:
        return await self._page(request, q=(q or "")[:64])

    @get("/threads")
    async def thread_list(
        self,
        request: Request[Any, Any, Any],
        q: FromQuery[str | None] = None,
        active: FromQuery[str | None] = None,
    ) -> Template:
        """The thread list (htmx polls it)."""
        hub = hub_of(request)
        return render(
            request,
            "conversations/_threads.html",
            threads=await readmodels.threads(hub, q=(q or "")[:64]),
            channel_names=await readmodels.channel_names(hub),
            active=active or "",
        )

    @get("/{contact_id:str}/{channel_id:str}")
    async def thread(
        self, request: Request[Any, Any, Any], contact_id: FromPath[str], channel_id: FromPath[str]
    ) -> Template:
        return await self._page(request, contact_id=contact_id, channel_id=channel_id)

    @get("/{contact_id:str}/{channel_id:str}/messages")
    async def messages(
        self, request: Request[Any, Any, Any], contact_id: FromPath[str], channel_id: FromPath[str]
    ) -> Template:
        """The bubbles of one thread (htmx polls this every 2 s)."""
        hub = hub_of(request)
        contact = await queries.get_contact(hub, contact_id)
        return render(
            request,
            "conversations/_messages.html",
            contact=contact,
            messages=await readmodels.thread_messages(hub, contact.id, channel_id),
        )

    @post("/{contact_id:str}/{channel_id:str}/send", status_code=200)
    async def send(
        self, request: Request[Any, Any, Any], contact_id: FromPath[str], channel_id: FromPath[str]
    ) -> Response[Any]:
        """Send from the browser through the normal pipeline (source "ui")."""
        hub = hub_of(request)
        contact = await queries.get_contact(hub, contact_id)
        form = await read_form(request)
        text = form.get("message", "")
        zone = await _zone_of(hub, channel_id)
        try:
            send_at = _send_later(form.get("send_at", ""), zone)
            await submit_send(
                hub,
                SendCommand(
                    to=contact.phone, text=text, channel_id=channel_id, source="ui", send_at=send_at
                ),
            )
        except (ApiError, _FormError) as exc:
            errors = exc.errors if isinstance(exc, _FormError) else _send_errors(exc)
            status = exc.status_code if isinstance(exc, ApiError) else 422
            if is_htmx(request):
                return render(
                    request,
                    "conversations/_send_form.html",
                    status_code=200,
                    contact=contact,
                    channel_id=channel_id,
                    send_errors=errors,
                    send_values=form,
                    send_zone=zone,
                )
            return await self._page(
                request,
                contact_id=contact.id,
                channel_id=channel_id,
                status_code=status,
                send_errors=errors,
                send_values=form,
            )
        if is_htmx(request):
            return render(
                request,
                "conversations/_send_form.html",
                contact=contact,
                channel_id=channel_id,
                send_errors=FormErrors(),
                send_values={},
                send_zone=zone,
                headers={"HX-Trigger": json.dumps({"smshub:sent": True})},
            )
        return see_other(f"/conversations/{contact.id}/{channel_id}")

    @post("/{contact_id:str}/{channel_id:str}/messages/{message_id:str}/cancel", status_code=303)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        contact_id: FromPath[str],
        channel_id: FromPath[str],
        message_id: FromPath[str],
    ) -> Response[Any]:
        """Cancel a message not handed over yet; one that has gone just shows how it went."""
        hub = hub_of(request)
        contact = await queries.get_contact(hub, contact_id)
        try:
            await scheduled.cancel_message(hub, message_id)
        except ApiError as exc:
            if exc.status_code != 409:
                raise
        return see_other(f"/conversations/{contact.id}/{channel_id}")

    @post("/new", status_code=303)
    async def new(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Start a conversation: send to any number."""
        hub = hub_of(request)
        form = await read_form(request)
        channel_id = form.get("channel_id") or None
        try:
            message, _ = await submit_send(
                hub,
                SendCommand(
                    to=form.get("to", ""),
                    text=form.get("message", ""),
                    channel_id=channel_id,
                    source="ui",
                ),
            )
        except ApiError as exc:
            return await self._page(
                request,
                status_code=exc.status_code,
                new_errors=_send_errors(exc),
                new_values=form,
            )
        return see_other(f"/conversations/{message.contact_id}/{message.channel_id}")

    @post("/simulate", status_code=303)
    async def simulate(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """An SMS "arrives" on a simulator channel, through its signed webhook."""
        form = await read_form(request)

        async def show_errors(status_code: int, errors: FormErrors) -> Response[Any]:
            return await self._page(
                request, status_code=status_code, sim_errors=errors, sim_values=form
            )

        return await simulate_from_form(
            request,
            form,
            channel_id=form.get("channel_id", ""),
            fields=("channel_id", "from", "text"),
            show_errors=show_errors,
        )
