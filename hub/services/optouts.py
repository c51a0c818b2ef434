"""STOP / START / HELP on an inbound SMS: the contact's opt-out state and exactly one
confirmation, in the ingest transaction (so an acknowledged STOP is honoured)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hub.context import Hub
from hub.models import Contact, Message
from hub.services.keywords import classify
from hub.services.sending import queue_system_reply


async def handle_keyword(
    hub: Hub, session: AsyncSession, contact: Contact, inbound: Message, now: datetime
) -> None:
    """Update the contact for a compliance keyword and queue its one confirmation."""
    keyword = classify(inbound.body)
    if keyword is None:
        return
    settings = hub.settings
    if keyword == "stop":
        contact.opted_out = True
        contact.opted_out_at = now
        text = settings.stop_text
    elif keyword == "start":
        if inbound.body.strip().upper().startswith("YES") and not contact.opted_out:
            return  # "yes" is an ordinary answer unless the contact is opted out
        contact.opted_out = False
        contact.opted_out_at = None
        text = settings.start_text
    else:
        text = settings.help_text
    contact.updated_at = now
    session.add(contact)
    await queue_system_reply(hub, session, inbound, text)
