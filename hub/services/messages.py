"""Message status rules: statuses only move forward, and every change is recorded once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hub.event_data import channel_ref, device_ref, sms_status
from hub.models import Channel, Device, Message, MessageStatusChange, utcnow
from hub.services.events import emit

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
        device = await session.get(Device, message.device_id) if message.device_id else None
        data = sms_status(
            message,
            provider_status=provider_status,
            channel=channel_ref(await session.get(Channel, message.channel_id), message.channel_id),
            device=device_ref(device),
        )
        await emit(
            session,
            type=f"sms.{status}",
            channel_id=message.channel_id,
            dedupe_key=f"status:{message.id}:{status}",
            message_id=message.id,
            data=data,
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
