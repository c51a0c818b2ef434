"""Sending: accept a send request, then hand the SMS to its gateway exactly once.

``submit_send`` validates and writes a queued message plus its ``send_message`` job in one
transaction (the API answers 202 after that); :func:`create_outbound` is that row and job
for every sender (API, flows, opt-out confirmations). The job itself — device, SIM, rate
limit, the connector call — is ``hub.services.handover``; delivery reports then move the
message on (``hub.services.reports``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import CanSend
from connectors.segments import segment_info
from hub.context import ChannelRuntime, Hub
from hub.errors import Conflict, Unprocessable
from hub.ids import new_id
from hub.models import Channel, Device, Message, MessageStatusChange, utcnow
from hub.phone import InvalidNumber, to_e164
from hub.queue.base import enqueue
from hub.services.contacts import find_contact, get_or_create_contact
from hub.services.handover import SEND_MESSAGE

log = logging.getLogger("smshub.sending")

#: Longest text accepted in one request (Twilio's limit; about 10 concatenated parts).
MAX_TEXT_CHARS = 1600


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
        SEND_MESSAGE,
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
