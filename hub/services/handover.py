"""The send job: hand one queued SMS to its gateway, exactly once.

It checks the message is still queued (a re-run after a crash finds it handed over and
stops), picks the device and SIM, holds the message while the device is over its rate
limit, marks it ``sending`` (committed) *before* calling the connector, then records the
provider's id. A message found ``sending`` was interrupted mid-hand-over by a crash: it
is resent only through gateways that dedupe on our id (``idempotent_send``); otherwise
it fails as ``send_interrupted`` — a duplicate SMS is worse than an honest unknown.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import CanSend, SendError, SendRequest, SendResult
from hub.context import ChannelRuntime, Hub
from hub.metrics import SENDS
from hub.models import Channel, Contact, Device, Message, utcnow
from hub.queue.base import Retry
from hub.queue.runner import backoff_s
from hub.services.followups import schedule_followups
from hub.services.messages import apply_status, record_status

log = logging.getLogger("smshub.handover")

#: Job: hand one queued message to its gateway.
SEND_MESSAGE = "send_message"
#: Window of the per-device rate limit.
RATE_WINDOW_S = 60.0
#: Statuses that mean "handed to the gateway" and so count against the rate limit.
HANDED = ("sending", "accepted", "sent", "delivered", "failed")


async def send_message(hub: Hub, message_id: str) -> None:
    """Job: hand one queued message to its gateway (idempotent: a re-run after a crash is safe)."""
    prepared = await _prepare(hub, message_id)
    if prepared is None:
        return
    channel, request, attempt = prepared
    assert isinstance(channel.connector, CanSend)
    try:
        result = await channel.connector.send(channel.config, request, hub.http)
    except (SendError, OSError, TimeoutError) as exc:
        error = exc if isinstance(exc, SendError) else SendError(str(exc), retryable=True)
        SENDS.labels(channel.connector.name, "retry" if error.retryable else "failed").inc()
        await _send_failed(hub, message_id, error, attempt)
        return
    SENDS.labels(channel.connector.name, "accepted").inc()
    await _record_sent(hub, channel, message_id, result)


async def _prepare(hub: Hub, message_id: str) -> tuple[ChannelRuntime, SendRequest, int] | None:
    """Check, route and rate-limit the message, then mark it ``sending`` (committed)."""
    async with hub.db.write() as session:
        message = await session.get(Message, message_id)
        if message is None or message.status not in ("queued", "sending"):
            return None  # already handed over (a re-run) or final
        channel = await hub.channels.get(message.channel_id)
        if channel is None or not channel.enabled or not isinstance(channel.connector, CanSend):
            await record_status(session, message, "failed", detail="channel deleted or disabled")
            return None
        if message.status == "sending" and not channel.connector.capabilities.idempotent_send:
            # We crashed while handing it over and this gateway cannot dedupe a resend:
            # a duplicate SMS is worse than an honest "unknown", so stop here.
            await record_status(
                session,
                message,
                "failed",
                detail="send_interrupted: the hub stopped while handing this message to the "
                "gateway; it may or may not have been sent",
            )
            return None
        contact = await session.get(Contact, message.contact_id)
        if contact is not None and contact.opted_out and not message.bypass_opt_out:
            await record_status(
                session, message, "failed", detail="opted_out: the contact replied STOP"
            )
            return None
        device = await _route(session, channel, message)
        now = utcnow()
        if device is not None:
            await _check_rate(hub, session, device, message, now)
        message.attempts += 1
        message.handed_at = now
        if message.status != "sending":
            await record_status(session, message, "sending", now=now)
        session.add(message)
        request = SendRequest(
            message_id=message.id,
            to=message.to_number or "",
            text=message.body,
            from_number=message.from_number or channel.phone_number,
            device_id=device.external_id if device else None,
            sim_slot=message.sim_slot,
            status_callback_url=f"{hub.settings.public_url.rstrip('/')}/webhooks/{channel.id}/status",
        )
        return channel, request, message.attempts


async def _route(session: AsyncSession, channel: ChannelRuntime, message: Message) -> Device | None:
    """Explicit device; else the device (and SIM) the contact last texted; else round-robin."""
    if message.device_id:
        return await session.get(Device, message.device_id)
    if not channel.connector.capabilities.devices:
        return None
    last = await session.execute(
        sa.select(col(Message.device_id), col(Message.sim_slot))
        .where(
            col(Message.contact_id) == message.contact_id,
            col(Message.channel_id) == channel.id,
            col(Message.direction) == "inbound",
            col(Message.device_id).is_not(None),
        )
        .order_by(col(Message.id).desc())
        .limit(1)
    )
    row = last.first()
    if row is not None:
        message.device_id = row.device_id
        if message.sim_slot is None:
            message.sim_slot = row.sim_slot
        return await session.get(Device, row.device_id)
    devices = list(
        (
            await session.execute(
                sa.select(Device)
                .where(col(Device.channel_id) == channel.id)
                .order_by(col(Device.id))
            )
        ).scalars()
    )
    if not devices:
        return None
    # One atomic increment, so concurrent workers never pick the same turn.
    turn = await session.execute(
        sa.update(Channel)
        .where(col(Channel.id) == channel.id)
        .values(rr_cursor=col(Channel.rr_cursor) + 1)
        .returning(col(Channel.rr_cursor))
    )
    cursor = (turn.scalar() or 1) - 1
    device = devices[cursor % len(devices)]
    message.device_id = device.id
    return device


async def _check_rate(
    hub: Hub, session: AsyncSession, device: Device, message: Message, now: datetime
) -> None:
    """Hold the message (Retry without using an attempt) while the device is at its limit."""
    if hub.db.dialect == "postgresql":
        # Serialize rate decisions per device across workers (SQLite's BEGIN IMMEDIATE does
        # it). NO KEY UPDATE, because FOR UPDATE would also wait on the KEY SHARE locks of
        # messages referencing this device and deadlock two workers.
        lock = sa.select(col(Device.id)).where(col(Device.id) == device.id)
        await session.execute(lock.with_for_update(key_share=True))
    limit = device.rate_limit_per_min or hub.settings.device_rate_limit_per_min
    since = now - timedelta(seconds=RATE_WINDOW_S)
    used_row = await session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(Message.segments), 0), sa.func.min(Message.handed_at)
        ).where(
            col(Message.device_id) == device.id,
            col(Message.handed_at) > since,
            col(Message.status).in_(HANDED),
            col(Message.id) != message.id,
        )
    )
    used, oldest = used_row.one()
    if used and used + message.segments > limit and oldest is not None:
        wait = max(0.5, (oldest + timedelta(seconds=RATE_WINDOW_S) - now).total_seconds())
        raise Retry(
            wait, count_attempt=False, reason=f"device {device.id} at {used}/{limit} parts a minute"
        )


async def _send_failed(hub: Hub, message_id: str, exc: SendError, attempt: int) -> None:
    """A retryable error puts the message back in the queue; anything else fails it."""
    retry = exc.retryable and attempt < hub.settings.send_max_attempts
    async with hub.db.write() as session:
        message = await session.get(Message, message_id)
        if message is None or message.status != "sending":
            return
        message.error = str(exc)[:1000]
        if retry:
            await record_status(session, message, "queued", detail=f"retrying: {exc}")
        else:
            await record_status(session, message, "failed", detail=str(exc)[:1000])
    if retry:
        raise Retry(backoff_s(attempt), count_attempt=False, reason=str(exc))


async def _record_sent(
    hub: Hub, channel: ChannelRuntime, message_id: str, result: SendResult
) -> None:
    """Store the provider's id and status, and schedule the connector's follow-up events."""
    async with hub.db.write() as session:
        message = await session.get(Message, message_id)
        if message is None:
            return
        message.provider_message_id = result.provider_message_id
        message.error = None
        session.add(message)
        status = "sent" if result.status == "sent" else "accepted"
        await apply_status(session, message, status, provider_status=result.status)
        await schedule_followups(session, channel.id, result.followups)
    hub.queue.notify()
