"""The "simulate an inbound SMS" form, posted from a channel's page or the conversations page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from litestar import Request, Response

from hub.errors import ApiError
from ui import readmodels
from ui.auth import hub_of
from ui.pages import FormErrors, see_other
from ui.simulate import simulate_inbound

#: Re-renders the page the form is on with its messages (status code, errors).
ShowErrors = Callable[[int, FormErrors], Awaitable[Response[Any]]]


async def simulate_from_form(
    request: Request[Any, Any, Any],
    form: Mapping[str, str],
    *,
    channel_id: str,
    fields: Iterable[str],
    show_errors: ShowErrors,
) -> Response[Any]:
    """Post the form's SMS to the channel; then its thread, or the form again with errors."""
    hub = hub_of(request)
    try:
        phone = await simulate_inbound(
            hub,
            channel_id=channel_id,
            sender=form.get("from", ""),
            text=form.get("text", ""),
        )
    except ApiError as exc:
        return await show_errors(exc.status_code, FormErrors.from_api_error(exc).shown_on(fields))
    contact = await readmodels.contact_by_phone(hub, phone)
    # Ingest always creates the contact; the thread list is a safe landing all the same.
    return see_other(f"/conversations/{contact.id}/{channel_id}" if contact else "/conversations")
