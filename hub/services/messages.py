"""Message status rules and the outbound message row that every sender shares."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.segments import segment_info
from hub.context import Hub
from hub.ids import new_id
from hub.models import Message, MessageStatusChange, utcnow
from hub.queue.base import enqueue
from hub.services.events import emit, message_data

#: Outbound statuses in the order they can happen; a status only ever moves forward.
#: delivered and failed are both final: whichever comes first stays.
STATUS_RANK = {
    "queued": 0,
    "sending": 1,
    "accepted": 2,
    "sent": 3,
    "delivered": 4,
    "failed": 4,
    "suppressed": 4,
}
FINAL_STATUSES = frozenset({"delivered", "failed", "suppressed"})
#: Statuses announced to subscribers as ``sms.<status>`` events.
PUBLIC_STATUSES = frozenset({"sent", "delivered", "failed"})

_EVENT_STATUS = {"sms.sent": "sent", "sms.delivered": "delivered", "sms.failed": "failed"}


def event_status(event_type: str) -> str:
    """The message status a delivery event stands for."""
    return _EVENT_STATUS.get(event_type, "sent")


def moves_forward(current: str, new: str) -> bool:
    """True when ``new`` is a later status than ``current``."""
    if current in FINAL_STATUSES:
        return False
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1)


async def record_status(
    session: AsyncSession,
    message: Message,
    status: str,
    *,
    provider_status: str | None = None,
    detail: str | None = None,
    event_id: str | None = None,
    now: datetime | None = None,
) -> None:
    """Set a message's status, append the change to its history and, for outbound
    messages reaching sent / delivered / failed, emit the public ``sms.<status>`` event
    (once per message and status, whatever retries happen)."""
    at = now or utcnow()
    message.status = status
    message.updated_at = at
    if status == "failed" and detail:
        message.error = detail
    session.add(message)
    session.add(
        MessageStatusChange(
            message_id=message.id,
            status=status,
            provider_status=provider_status,
            detail=detail,
            event_id=event_id,
            at=at,
        )
    )
    if message.direction == "outbound" and status in PUBLIC_STATUSES:
        await emit(
            session,
            type=f"sms.{status}",
            channel_id=message.channel_id,
            dedupe_key=f"status:{message.id}:{status}",
            message_id=message.id,
            data=message_data(message, provider_status=provider_status),
            at=at,
        )


async def apply_status(
    session: AsyncSession,
    message: Message,
    status: str,
    *,
    provider_status: str | None = None,
    detail: str | None = None,
    event_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Move a message forward to ``status``; a late or repeated report changes nothing."""
    if not moves_forward(message.status, status):
        return False
    await record_status(
        session,
        message,
        status,
        provider_status=provider_status,
        detail=detail,
        event_id=event_id,
        now=now,
    )
    return True


async def create_outbound(
    hub: Hub,
    session: AsyncSession,
    *,
    channel_id: str,
    contact_id: str,
    to: str,
    text: str,
    device_id: str | None = None,
    sim_slot: int | None = None,
    from_number: str | None = None,
    idempotency_key: str | None = None,
    source: str = "api",
    bypass_opt_out: bool = False,
    suppressed: str | None = None,
) -> Message:
    """Write a queued outbound message and the job that sends it (same transaction).

    With ``suppressed`` (the reason), the message is stored as ``suppressed`` and never
    sent: policy (opt-out, loop breaker) refused it, and the record says why."""
    now = utcnow()
    info = segment_info(text)
    message = Message(
        id=new_id("msg"),
        direction="outbound",
        channel_id=channel_id,
        device_id=device_id,
        sim_slot=sim_slot,
        contact_id=contact_id,
        from_number=from_number,
        to_number=to,
        body=text,
        segments=info.segments,
        encoding=info.encoding,
        status="suppressed" if suppressed else "queued",
        error=suppressed,
        idempotency_key=idempotency_key,
        source=source,
        bypass_opt_out=bypass_opt_out,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.add(
        MessageStatusChange(message_id=message.id, status=message.status, detail=suppressed, at=now)
    )
    await session.flush()
    if suppressed:
        return message
    await enqueue(
        session,
        "send_message",
        {"message_id": message.id},
        key=f"send:{message.id}",
        max_attempts=hub.settings.send_max_attempts + 5,
    )
    return message


async def queue_system_reply(
    hub: Hub, session: AsyncSession, inbound: Message, text: str
) -> Message:
    """Answer an inbound message from the hub itself (opt-out confirmations, HELP)."""
    existing = await session.execute(
        sa.select(Message).where(col(Message.idempotency_key) == f"auto:{inbound.id}")
    )
    found = existing.scalar_one_or_none()
    if found is not None:
        return found
    return await create_outbound(
        hub,
        session,
        channel_id=inbound.channel_id,
        contact_id=inbound.contact_id,
        to=inbound.from_number or "",
        text=text,
        device_id=inbound.device_id,
        sim_slot=inbound.sim_slot,
        from_number=inbound.to_number,
        idempotency_key=f"auto:{inbound.id}",
        source="system",
        bypass_opt_out=True,
    )
