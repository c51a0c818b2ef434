"""Conversations: one thread per contact and channel, sending, simulated inbound SMS."""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from hub.errors import ApiError
from hub.services import channels as channel_service
from hub.services import queries
from hub.services.sending import SendCommand, submit_send
from ui import readmodels
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, is_htmx, read_form, render, see_other
from ui.simulate import simulator_channels
from ui.simulate_form import simulate_from_form

#: Service error fields -> the UI form's field names.
_SEND_FIELDS = {"to": "to", "message": "message", "channel_id": "channel_id"}


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
        try:
            await submit_send(
                hub, SendCommand(to=contact.phone, text=text, channel_id=channel_id, source="ui")
            )
        except ApiError as exc:
            errors = _send_errors(exc)
            if is_htmx(request):
                return render(
                    request,
                    "conversations/_send_form.html",
                    status_code=200,
                    contact=contact,
                    channel_id=channel_id,
                    send_errors=errors,
                    send_values=form,
                )
            return await self._page(
                request,
                contact_id=contact.id,
                channel_id=channel_id,
                status_code=exc.status_code,
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
                headers={"HX-Trigger": json.dumps({"smshub:sent": True})},
            )
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
