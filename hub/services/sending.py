"""Sending: accept a send request, then hand the SMS to its gateway exactly once.

``submit_send`` validates and writes a queued message plus its ``send_message`` job in one
transaction (the API answers 202 after that). The job picks the device and SIM, holds
the message while the device is over its rate limit, calls the connector, and records
the provider's id. Delivery reports then move the message on (``hub.services.ingest``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import CanSend, SendError, SendRequest, SendResult
from hub.context import Hub
from hub.errors import Conflict, Unprocessable
from hub.metrics import SENDS
from hub.models import Channel, Contact, Device, Message, utcnow
from hub.phone import InvalidNumber, to_e164
from hub.queue.base import Retry, enqueue
from hub.queue.jobs import job
from hub.queue.runner import backoff_s
from hub.services.channels import ChannelRuntime
from hub.services.contacts import find_contact, get_or_create_contact
from hub.services.ingest import event_to_json
from hub.services.messages import apply_status, create_outbound, record_status

log = logging.getLogger("smshub.sending")

#: Longest text accepted in one request (Twilio's limit; about 10 concatenated parts).
MAX_TEXT_CHARS = 1600
#: Window of the per-device rate limit.
RATE_WINDOW_S = 60.0
#: Statuses that mean "handed to the gateway" and so count against the rate limit.
HANDED = ("sending", "accepted", "sent", "delivered", "failed")


@dataclass(frozen=True)
class SendCommand:
    """A request to send one SMS (from the API, a flow or the UI)."""

    to: str
    text: str
    channel_id: str | None = None
    device_id: str | None = None
    sim_slot: int | None = None
    idempotency_key: str | None = None
    source: str = "api"


def _field_error(field: str, message: str, code: str = "validation_error") -> Unprocessable:
    return Unprocessable(message, code=code, details=[{"field": field, "message": message}])


async def submit_send(hub: Hub, cmd: SendCommand) -> tuple[Message, bool]:
    """Validate and queue an SMS; (message, created). Same idempotency key → same message."""
    try:
        to = to_e164(cmd.to, hub.settings.default_region)
    except InvalidNumber as exc:
        raise _field_error("to", str(exc), "invalid_number") from exc
    if not cmd.text or not cmd.text.strip():
        raise _field_error("message", "message text is empty")
    if len(cmd.text) > MAX_TEXT_CHARS:
        raise _field_error("message", f"message is longer than {MAX_TEXT_CHARS} characters")
    if cmd.sim_slot is not None and not 0 <= cmd.sim_slot <= 7:
        raise _field_error("sim_slot", "sim_slot must be between 0 and 7 (0 = SIM1)")
    if cmd.idempotency_key:
        existing = await _by_idempotency_key(hub, cmd.idempotency_key)
        if existing is not None:
            return _same_request(existing, to, cmd), False

    route = await resolve_route(hub, to, channel_id=cmd.channel_id, device_id=cmd.device_id)
    channel, device_id = route.channel, route.device_id
    try:
        async with hub.db.write() as session:
            contact = await get_or_create_contact(session, to)
            if contact.opted_out:
                raise Conflict(f"{to} has opted out of SMS (replied STOP)", code="opted_out")
            message = await create_outbound(
                hub,
                session,
                channel_id=channel.id,
                contact_id=contact.id,
                to=to,
                text=cmd.text,
                device_id=device_id,
                sim_slot=cmd.sim_slot,
                from_number=channel.phone_number,
                idempotency_key=cmd.idempotency_key,
                source=cmd.source,
            )
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race.
        existing = await _by_idempotency_key(hub, cmd.idempotency_key or "")
        if existing is None:
            raise
        return _same_request(existing, to, cmd), False
    hub.queue.notify()
    return message, True


async def _by_idempotency_key(hub: Hub, key: str) -> Message | None:
    async with hub.db.read() as session:
        found = await session.execute(sa.select(Message).where(col(Message.idempotency_key) == key))
        return found.scalar_one_or_none()


def _same_request(existing: Message, to: str, cmd: SendCommand) -> Message:
    if existing.to_number != to or existing.body != cmd.text:
        raise Conflict(
            "idempotency_key was already used for a different message",
            code="idempotency_conflict",
            details={"message_id": existing.id},
        )
    return existing


async def _pick_channel(hub: Hub, channel_id: str | None, to: str) -> ChannelRuntime:
    """The requested channel, else the one the contact last texted, else the oldest one."""
    if channel_id:
        channel = await hub.channels.get(channel_id)
        if channel is None:
            raise _field_error("channel_id", f"unknown channel {channel_id!r}", "unknown_channel")
        if not channel.enabled:
            raise _field_error(
                "channel_id", f"channel {channel_id!r} is disabled", "channel_disabled"
            )
        if not isinstance(channel.connector, CanSend) or not channel.connector.capabilities.send:
            raise _field_error("channel_id", f"channel {channel_id!r} cannot send", "cannot_send")
        return channel
    async with hub.db.read() as session:
        candidates: list[str] = []
        contact = await find_contact(session, to)
        if contact is not None:
            last = await session.execute(
                sa.select(col(Message.channel_id))
                .where(col(Message.contact_id) == contact.id, col(Message.direction) == "inbound")
                .order_by(col(Message.id).desc())
                .limit(1)
            )
            candidates.extend(last.scalars())
        rows = await session.execute(
            sa.select(col(Channel.id))
            .where(col(Channel.enabled).is_(True), col(Channel.deleted_at).is_(None))
            .order_by(col(Channel.id))
        )
        candidates.extend(rows.scalars())
    for candidate in candidates:
        channel = await hub.channels.get(candidate)
        if channel and channel.enabled and isinstance(channel.connector, CanSend):
            return channel
    raise _field_error("channel_id", "no channel can send SMS; create one first", "no_channel")


@dataclass(frozen=True)
class Route:
    """Where a message will go out: a channel, and a device when one was asked for."""

    channel: ChannelRuntime
    device_id: str | None


async def resolve_route(
    hub: Hub, to: str, *, channel_id: str | None, device_id: str | None
) -> Route:
    """Check an explicit channel / device, or pick the channel (422 errors otherwise)."""
    channel = await _pick_channel(hub, channel_id, to)
    async with hub.db.read() as session:
        return Route(channel, await _resolve_device(session, channel, device_id))


async def _resolve_device(
    session: AsyncSession, channel: ChannelRuntime, device: str | None
) -> str | None:
    """Our device id for an id or the provider's device id, on this channel."""
    if not device:
        return None
    found = await session.execute(
        sa.select(col(Device.id)).where(
            col(Device.channel_id) == channel.id,
            sa.or_(col(Device.id) == device, col(Device.external_id) == device),
        )
    )
    device_id = found.scalars().first()
    if device_id is None:
        raise _field_error(
            "device_id", f"unknown device {device!r} on channel {channel.id}", "unknown_device"
        )
    return device_id


# --- the job -----------------------------------------------------------------------------


@job("send_message")
async def send_message(hub: Hub, message_id: str) -> None:
    """Hand one queued message to its gateway (idempotent: a re-run after a crash is safe)."""
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
        for followup in result.followups:
            await enqueue(
                session,
                "ingest_followup",
                {
                    "channel_id": channel.id,
                    "event": event_to_json(followup.event),
                    "to_channel_number": followup.to_channel_number,
                },
                delay_s=followup.delay_s,
            )
    hub.queue.notify()
