"""Sending: accept a send request, then hand the SMS to its gateway exactly once.

``submit_send`` validates and writes a queued message plus its ``send_message`` job in one
unit (the API answers 202 once that is durable); :func:`create_outbound` is that row and
job for every sender (API, flows, opt-out confirmations, broadcasts). With ``send_at`` the
message is ``scheduled`` and its job row's ``run_at`` is that time (a timer in the queue);
``quiet_hours`` is the message's own window (the request's, else the channel's default
for API and UI sends). The job itself — timing, device, SIM, pacing, the connector call
— is ``hub.services.handover``; delivery reports then move the message on
(``hub.services.reports``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.segments import segment_info
from hub.context import ChannelRuntime, Hub
from hub.errors import Conflict, Unprocessable
from hub.ids import new_id
from hub.models import utcnow
from hub.phone import InvalidNumber, to_e164
from hub.queue.base import enqueue_job
from hub.services.contacts import contact_state
from hub.services.handover import SEND_MESSAGE
from hub.services.messages import (
    MESSAGE_COLUMNS,
    NEW_MESSAGE_COLUMNS,
    MessageRow,
    message_row,
)
from hub.store import (
    IntegrityError,
    Json,
    Unit,
    execute,
    fetch_all,
    fetch_one,
    fetch_value,
    insert_rows,
)

log = logging.getLogger("smshub.sending")

#: Longest text accepted in one request (Twilio's limit; about 10 concatenated parts).
MAX_TEXT_CHARS = 1600
#: How far ahead a message may be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=365)

_MESSAGE_INSERT = (
    *NEW_MESSAGE_COLUMNS,
    "error",
    "idempotency_key",
    "source",
    "bypass_opt_out",
    "attempts",
    "send_at",
    "quiet_hours",
    "created_at",
    "updated_at",
)


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
    #: Send later (aware UTC); None = now.
    send_at: datetime | None = None
    #: ``{"start": "HH:MM", "end": "HH:MM"}``; None = the channel's default.
    quiet_hours: dict[str, str] | None = None


def check_send_at(send_at: datetime, now: datetime) -> None:
    """422 naming ``send_at`` unless it is in the future and at most 365 days ahead."""
    if send_at <= now:
        raise _field_error("send_at", "send_at must be in the future")
    if send_at > now + MAX_SCHEDULE_AHEAD:
        raise _field_error("send_at", "send_at must be at most 365 days ahead")


def _field_error(field: str, message: str, code: str = "validation_error") -> Unprocessable:
    return Unprocessable(message, code=code, details=[{"field": field, "message": message}])


def _check(cmd: SendCommand, region: str) -> str:
    """The recipient in E.164, or a 422 naming the field that is wrong."""
    try:
        to = to_e164(cmd.to, region)
    except InvalidNumber as exc:
        raise _field_error("to", str(exc), "invalid_number") from exc
    if not cmd.text or not cmd.text.strip():
        raise _field_error("message", "message text is empty")
    if len(cmd.text) > MAX_TEXT_CHARS:
        raise _field_error("message", f"message is longer than {MAX_TEXT_CHARS} characters")
    if cmd.sim_slot is not None and not 0 <= cmd.sim_slot <= 7:
        raise _field_error("sim_slot", "sim_slot must be between 0 and 7 (0 = SIM1)")
    return to


async def submit_send(hub: Hub, cmd: SendCommand) -> tuple[MessageRow, bool]:
    """Validate and queue an SMS; (message, created). Same idempotency key → same message."""
    to = _check(cmd, hub.settings.default_region)
    if cmd.send_at is not None and not cmd.idempotency_key:
        check_send_at(cmd.send_at, hub.clock())
    if cmd.idempotency_key:
        existing = await hub.store.read(by_idempotency_key(cmd.idempotency_key))
        if existing is not None:
            return _same_request(existing, to, cmd), False
    if cmd.send_at is not None and cmd.idempotency_key:  # a repeat of a past request passes
        check_send_at(cmd.send_at, hub.clock())
    route = await resolve_route(hub, to, channel_id=cmd.channel_id, device_id=cmd.device_id)
    try:
        message, created = await hub.store.write(_submit(hub, cmd, to, route))
    except IntegrityError:
        # PostgreSQL: a concurrent request with the same key committed first.
        existing = await hub.store.read(by_idempotency_key(cmd.idempotency_key or ""))
        if existing is None:
            raise
        return _same_request(existing, to, cmd), False
    return (message, True) if created else (_same_request(message, to, cmd), False)


def _submit(hub: Hub, cmd: SendCommand, to: str, route: Route) -> Unit[tuple[MessageRow, bool]]:
    if cmd.idempotency_key:  # again inside the write: a concurrent twin may have won
        existing = yield from by_idempotency_key(cmd.idempotency_key)
        if existing is not None:
            return existing, False
    contact_id, opted_out, blocked = yield from contact_state(to)
    if blocked:
        raise Conflict(f"{to} is a blocked contact", code="contact_blocked")
    if opted_out:
        raise Conflict(f"{to} has opted out of SMS (replied STOP)", code="opted_out")
    message = yield from create_outbound(
        hub,
        channel_id=route.channel.id,
        contact_id=contact_id,
        to=to,
        text=cmd.text,
        device_id=route.device_id,
        sim_slot=cmd.sim_slot,
        from_number=route.channel.phone_number,
        idempotency_key=cmd.idempotency_key,
        source=cmd.source,
        send_at=cmd.send_at,
        quiet_hours=cmd.quiet_hours or route.channel.quiet_hours,
    )
    return message, True


def by_idempotency_key(key: str) -> Unit[MessageRow | None]:
    """Unit: the message written with this idempotency key, if any."""
    found = yield from fetch_one(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE idempotency_key = ?", (key,)
    )
    return message_row(found) if found else None


def _same_request(existing: MessageRow, to: str, cmd: SendCommand) -> MessageRow:
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
        if not channel.can_send:
            raise _field_error("channel_id", f"channel {channel_id!r} cannot send", "cannot_send")
        return channel
    for candidate in await hub.store.read(_channel_candidates(to)):
        channel = await hub.channels.get(candidate)
        if channel and channel.enabled and channel.can_send:
            return channel
    raise _field_error("channel_id", "no channel can send SMS; create one first", "no_channel")


def _channel_candidates(to: str) -> Unit[list[str]]:
    """The channel the contact last texted on, then every live channel, oldest first."""
    last = yield from fetch_value(
        "SELECT m.channel_id FROM messages m JOIN contacts c ON c.id = m.contact_id "
        "WHERE c.phone = ? AND m.direction = 'inbound' ORDER BY m.id DESC LIMIT 1",
        (to,),
    )
    rows = yield from fetch_all(
        "SELECT id FROM channels WHERE enabled = ? AND deleted_at IS NULL ORDER BY id", (True,)
    )
    return ([str(last)] if last else []) + [str(r[0]) for r in rows]


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
    if not device_id:
        return Route(channel, None)
    found = await hub.store.read(
        fetch_value(
            "SELECT id FROM devices WHERE channel_id = ? AND (id = ? OR external_id = ?)",
            (channel.id, device_id, device_id),
        )
    )
    if found is None:
        raise _field_error(
            "device_id", f"unknown device {device_id!r} on channel {channel.id}", "unknown_device"
        )
    return Route(channel, str(found))


def create_outbound(
    hub: Hub,
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
    send_at: datetime | None = None,
    quiet_hours: dict[str, str] | None = None,
) -> Unit[MessageRow]:
    """Unit: a queued outbound message, its first history line and the job that sends it.

    With ``suppressed`` (the reason), the message is stored as ``suppressed`` and never
    sent: policy (opt-out, loop breaker) refused it, and the record says why. With
    ``send_at`` it is ``scheduled`` and its job runs then; ``quiet_hours`` is its own
    window (``{"start", "end"}``, HH:MM)."""
    info = segment_info(text)
    status = "suppressed" if suppressed else "scheduled" if send_at else "queued"
    message = MessageRow(
        id=new_id("msg"),
        direction="outbound",
        status=status,
        channel_id=channel_id,
        device_id=device_id,
        sim_slot=sim_slot,
        contact_id=contact_id,
        from_number=from_number,
        to_number=to,
        body=text,
        segments=info.segments,
        encoding=info.encoding,
        provider_message_id=None,
        error=suppressed,
        source=source,
        bypass_opt_out=bypass_opt_out,
        attempts=0,
        handed_at=None,
    )
    yield from _write_outbound(hub, message, idempotency_key, send_at, quiet_hours)
    return message


def _write_outbound(
    hub: Hub,
    m: MessageRow,
    idempotency_key: str | None,
    send_at: datetime | None,
    quiet_hours: dict[str, Any] | None,
) -> Unit[None]:
    """The message row, its first history line, and (unless suppressed) its send job."""
    now = utcnow()
    quiet = Json(quiet_hours) if quiet_hours else None
    yield from insert_rows(
        "messages",
        _MESSAGE_INSERT,
        [
            (
                *(m.id, "outbound", m.channel_id, m.device_id, m.sim_slot, m.contact_id),
                *(m.from_number, m.to_number, m.body, m.segments, m.encoding, m.status),
                *(m.error, idempotency_key, m.source, m.bypass_opt_out, 0, send_at, quiet),
                *(now, now),
            )
        ],
    )
    yield from execute(
        "INSERT INTO message_status_changes (message_id, status, detail, at) VALUES (?, ?, ?, ?)",
        (m.id, m.status, m.error, now),
    )
    if m.status != "suppressed":
        yield from enqueue_job(
            SEND_MESSAGE,
            {"message_id": m.id, "channel_id": m.channel_id},
            run_at=send_at,
            key=f"send:{m.id}",
            max_attempts=hub.settings.send_max_attempts + 5,
            lease=hub.queue.lease(),
        )


def queue_system_reply(hub: Hub, inbound: MessageRow, text: str) -> Unit[MessageRow]:
    """Unit: answer an inbound message from the hub itself (opt-out confirmations, HELP),
    once however often the gateway repeats it."""
    existing = yield from by_idempotency_key(f"auto:{inbound.id}")
    if existing is not None:
        return existing
    reply = yield from create_outbound(
        hub,
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
    return reply
