"""The send job: hand one queued SMS to its gateway, exactly once.

It checks the message is still queued (a re-run after a crash finds it handed over and
stops), picks the device and SIM, holds the message while the device is over its rate
limit, marks it ``sending`` (durable) *before* calling the connector, then records the
provider's id. A message found ``sending`` was interrupted mid-hand-over by a crash: it
is resent only through gateways that dedupe on our id (``idempotent_send``); otherwise
it fails as ``send_interrupted`` — a duplicate SMS is worse than an honest unknown.
Each step is one unit on the hot path's store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from connectors.base import CanSend, SendError, SendRequest, SendResult
from hub.context import ChannelRuntime, Hub
from hub.metrics import SENDS
from hub.models import utcnow
from hub.queue.base import Retry
from hub.queue.runner import backoff_s
from hub.services.followups import schedule_followups
from hub.services.messages import MessageRow, apply_status, load_message, record_status
from hub.store import Unit, as_datetime, execute, fetch_all, fetch_one, fetch_value

log = logging.getLogger("smshub.handover")

#: Job: hand one queued message to its gateway.
SEND_MESSAGE = "send_message"
#: Window of the per-device rate limit.
RATE_WINDOW_S = 60.0
_WINDOW = timedelta(seconds=RATE_WINDOW_S)

_INTERRUPTED = (
    "send_interrupted: the hub stopped while handing this message to the gateway; "
    "it may or may not have been sent"
)


@dataclass(frozen=True, slots=True)
class _Device:
    id: str
    external_id: str
    rate_limit_per_min: int | None
    rate_window_start: Any
    rate_current: int
    rate_previous: int


@dataclass(frozen=True, slots=True)
class RateWindow:
    """A device's send counter: parts handed over in the current minute and the one before.

    The rate in "the last 60 s" is estimated as the previous minute's count, weighted by
    how much of it still overlaps the last 60 s, plus the current minute's: O(1) to check
    and to update, unlike counting the messages of the last minute (a scan that grew
    with the load), and shared by every process through the device row."""

    start: datetime
    current: int = 0
    previous: int = 0

    @classmethod
    def at(cls, now: datetime, start: datetime | None, current: int, previous: int) -> RateWindow:
        """The counter as it stands at ``now`` (minutes rolled over as needed)."""
        if start is None or now - start >= 2 * _WINDOW:
            return cls(now)
        if now - start >= _WINDOW:
            return cls(start + _WINDOW, 0, current)
        return cls(start, current, previous)

    def wait_for(self, now: datetime, parts: int, limit: int) -> float:
        """Seconds until ``parts`` more may go without passing ``limit`` (0: now)."""
        elapsed = (now - self.start) / _WINDOW
        used = self.previous * (1 - elapsed) + self.current
        if used <= 0 or used + parts <= limit:
            return 0.0
        if self.current + parts > limit:  # too much even once the previous minute is gone
            ahead = max(0.0, 1 - (limit - parts) / self.current) if self.current else 0.0
            return (1 - elapsed + ahead) * RATE_WINDOW_S
        needed = 1 - (limit - self.current - parts) / self.previous
        return max(0.0, needed - elapsed) * RATE_WINDOW_S

    def taken(self, parts: int) -> RateWindow:
        """The counter after handing over ``parts``."""
        return RateWindow(self.start, self.current + parts, self.previous)


async def send_message(hub: Hub, message_id: str, channel_id: str | None = None) -> None:
    """Job: hand one queued message to its gateway (idempotent: a re-run after a crash is safe)."""
    if channel_id is None:  # a job queued before the channel was part of its arguments
        channel_id = await hub.store.read(
            fetch_value("SELECT channel_id FROM messages WHERE id = ?", (message_id,))
        )
    channel = await hub.channels.get(channel_id) if channel_id else None
    prepared = await hub.store.write(_prepare(hub, message_id, channel))
    if prepared is None:
        return
    request, attempt = prepared
    assert channel is not None
    try:
        result = await cast(CanSend, channel.connector).send(channel.config, request, hub.http)
    except (SendError, OSError, TimeoutError) as exc:
        error = exc if isinstance(exc, SendError) else SendError(str(exc), retryable=True)
        SENDS.labels(channel.connector.name, "retry" if error.retryable else "failed").inc()
        retry = error.retryable and attempt < hub.settings.send_max_attempts
        await hub.store.write(_send_failed(hub, message_id, error, retry=retry))
        if retry:
            raise Retry(backoff_s(attempt), count_attempt=False, reason=str(error)) from exc
        return
    SENDS.labels(channel.connector.name, "accepted").inc()
    await hub.store.write(_record_sent(hub, channel, message_id, result))


def _prepare(
    hub: Hub, message_id: str, channel: ChannelRuntime | None
) -> Unit[tuple[SendRequest, int] | None]:
    """Unit: check, route and rate-limit the message, then mark it ``sending``."""
    message = yield from load_message(hub, message_id, lock=True)
    if message is None or message.status not in ("queued", "sending"):
        return None  # already handed over (a re-run) or final
    if channel is None or not channel.enabled or not channel.can_send:
        yield from record_status(hub, message, "failed", detail="channel deleted or disabled")
        return None
    refusal = yield from _refusal(message, channel)
    if refusal is not None:
        yield from record_status(hub, message, "failed", detail=refusal)
        return None
    device = yield from _route(hub, channel, message)
    now = utcnow()
    if device is not None:
        yield from _check_rate(hub, device, message)
    message.attempts += 1
    yield from execute(
        "UPDATE messages SET attempts = ?, handed_at = ?, device_id = ?, sim_slot = ? WHERE id = ?",
        (message.attempts, now, message.device_id, message.sim_slot, message.id),
    )
    if message.status != "sending":
        yield from record_status(hub, message, "sending", now=now)
    request = SendRequest(
        message_id=message.id,
        to=message.to_number or "",
        text=message.body,
        from_number=message.from_number or channel.phone_number,
        device_id=device.external_id if device else None,
        sim_slot=message.sim_slot,
        status_callback_url=f"{hub.settings.public_url.rstrip('/')}/webhooks/{channel.id}/status",
    )
    return request, message.attempts


def _refusal(message: MessageRow, channel: ChannelRuntime) -> Unit[str | None]:
    """Why this message must not go out now, if it must not."""
    if message.status == "sending" and not channel.connector.capabilities.idempotent_send:
        # We crashed while handing it over and this gateway cannot dedupe a resend:
        # a duplicate SMS is worse than an honest "unknown", so stop here.
        return _INTERRUPTED
    if not message.bypass_opt_out:
        opted = yield from fetch_value(
            "SELECT opted_out FROM contacts WHERE id = ?", (message.contact_id,)
        )
        if opted:
            return "opted_out: the contact replied STOP"
    return None


def _route(hub: Hub, channel: ChannelRuntime, message: MessageRow) -> Unit[_Device | None]:
    """Explicit device; else the device (and SIM) the contact last texted; else round-robin."""
    if message.device_id:
        return (yield from _device(hub, message.device_id))
    if not channel.connector.capabilities.devices:
        return None
    last = yield from fetch_one(
        "SELECT device_id, sim_slot FROM messages WHERE contact_id = ? AND channel_id = ? "
        "AND direction = 'inbound' AND device_id IS NOT NULL ORDER BY id DESC LIMIT 1",
        (message.contact_id, channel.id),
    )
    if last is not None:
        message.device_id = last[0]
        if message.sim_slot is None:
            message.sim_slot = last[1]
        return (yield from _device(hub, last[0]))
    devices = yield from fetch_all(
        "SELECT id FROM devices WHERE channel_id = ? ORDER BY id", (channel.id,)
    )
    if not devices:
        return None
    # One atomic increment, so concurrent workers never pick the same turn.
    turn = yield from fetch_value(
        "UPDATE channels SET rr_cursor = rr_cursor + 1 WHERE id = ? RETURNING rr_cursor",
        (channel.id,),
    )
    chosen = devices[((turn or 1) - 1) % len(devices)][0]
    message.device_id = chosen
    return (yield from _device(hub, chosen))


def _device(hub: Hub, device_id: str) -> Unit[_Device | None]:
    sql = (
        "SELECT id, external_id, rate_limit_per_min, rate_window_start, rate_current, "
        "rate_previous FROM devices WHERE id = ?"
    )
    if hub.store.dialect == "postgresql":
        # Serialize rate decisions per device across workers (SQLite's one writer does
        # it). NO KEY UPDATE, because FOR UPDATE would also wait on the KEY SHARE locks of
        # messages referencing this device and deadlock two workers.
        sql += " FOR NO KEY UPDATE"
    found = yield from fetch_one(sql, (device_id,))
    return _Device(*found) if found else None


def _check_rate(hub: Hub, device: _Device, message: MessageRow) -> Unit[None]:
    """Count the message against its device's rate, or hold it (Retry without using an
    attempt) while the device is at its limit."""
    limit = device.rate_limit_per_min or hub.settings.device_rate_limit_per_min
    now = utcnow()
    window = RateWindow.at(
        now, as_datetime(device.rate_window_start), device.rate_current, device.rate_previous
    )
    wait = window.wait_for(now, message.segments, limit)
    if wait > 0:
        raise Retry(
            max(0.5, wait),
            count_attempt=False,
            reason=f"device {device.id} at its limit of {limit} parts a minute",
        )
    window = window.taken(message.segments)
    yield from execute(
        "UPDATE devices SET rate_window_start = ?, rate_current = ?, rate_previous = ? "
        "WHERE id = ?",
        (window.start, window.current, window.previous, device.id),
    )


def _send_failed(hub: Hub, message_id: str, exc: SendError, *, retry: bool) -> Unit[None]:
    """Unit: a retryable error puts the message back in the queue; anything else fails it."""
    message = yield from load_message(hub, message_id, lock=True)
    if message is None or message.status != "sending":
        return
    message.error = str(exc)[:1000]
    if retry:
        yield from record_status(hub, message, "queued", detail=f"retrying: {exc}")
    else:
        yield from record_status(hub, message, "failed", detail=str(exc)[:1000])


def _record_sent(
    hub: Hub, channel: ChannelRuntime, message_id: str, result: SendResult
) -> Unit[None]:
    """Unit: store the provider's id and status, and schedule the connector's follow-ups."""
    message = yield from load_message(hub, message_id, lock=True)
    if message is None:
        return
    message.provider_message_id = result.provider_message_id
    message.error = None
    yield from execute(
        "UPDATE messages SET provider_message_id = ?, error = NULL WHERE id = ?",
        (result.provider_message_id, message.id),
    )
    status = "sent" if result.status == "sent" else "accepted"
    yield from apply_status(hub, message, status, provider_status=result.status)
    yield from schedule_followups(hub, channel.id, result.followups)
