"""STOP / START / HELP on an inbound SMS: the contact's opt-out state and exactly one
confirmation, in the ingest unit (so an acknowledged STOP is honoured). A blocked contact's
keyword still sets its opt-out state but is answered nothing."""

from __future__ import annotations

from datetime import datetime

from hub.context import Hub
from hub.metrics import OPTOUTS
from hub.services.keywords import classify
from hub.services.messages import MessageRow
from hub.services.sending import queue_system_reply
from hub.store import Unit, execute, fetch_one


def handle_keyword(hub: Hub, inbound: MessageRow, now: datetime) -> Unit[None]:
    """Unit: update the contact for a compliance keyword and queue its one confirmation."""
    keyword = classify(inbound.body)
    if keyword is None:
        return
    settings = hub.settings
    found = yield from fetch_one(
        "SELECT opted_out, blocked FROM contacts WHERE id = ?", (inbound.contact_id,)
    )
    opted_out, blocked = (bool(found[0]), bool(found[1])) if found else (False, False)
    if keyword == "help":
        if not blocked:  # a blocked contact gets no answer at all
            yield from queue_system_reply(hub, inbound, settings.help_text)
        OPTOUTS.labels("help").inc()
        return
    if keyword == "start" and inbound.body.strip().upper().startswith("YES") and not opted_out:
        return  # "yes" is an ordinary answer unless the contact is opted out
    stop = keyword == "stop"
    yield from execute(
        "UPDATE contacts SET opted_out = ?, opted_out_at = ?, updated_at = ? WHERE id = ?",
        (stop, now if stop else None, now, inbound.contact_id),
    )
    if not blocked:  # the opt-out state is kept; a blocked contact gets no confirmation
        yield from queue_system_reply(
            hub, inbound, settings.stop_text if stop else settings.start_text
        )
    OPTOUTS.labels(keyword).inc()
