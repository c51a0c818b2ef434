"""The send job: hand one queued SMS to its gateway, exactly once.

It checks the message is still queued (a re-run after a crash finds it handed over and
stops), waits while it is scheduled for later or inside its quiet hours, picks the
device and SIM (``hub.services.sims``: sticky per contact, else in turn) and waits while
no SIM has capacity, marks it ``sending`` (durable) *before* calling the connector, then
records the provider's id. Every wait re-times the job's row (a timer in the queue,
never a sleeping task) and writes why on the message (``waiting_reason``,
``next_attempt_at``). A message found ``sending`` was interrupted mid-hand-over by a
crash: it is resent only through gateways that dedupe on our id (``idempotent_send``);
otherwise it fails as ``send_interrupted`` — a duplicate SMS is worse than an honest
unknown. Each step is one unit on the hot path's store; pacing decisions use
``hub.clock``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from connectors.base import CanSend, SendError, SendRequest, SendResult
from hub.context import ChannelRuntime, Hub
from hub.metrics import SENDS
from hub.queue.base import Retry
from hub.queue.runner import backoff_s
from hub.services import pacing, sims
from hub.services.followups import schedule_followups
from hub.services.messages import MessageRow, apply_status, load_message, record_status
from hub.store import Unit, as_datetime, as_json, execute, fetch_one, fetch_value

log = logging.getLogger("smshub.handover")

#: Job: hand one queued message to its gateway.
SEND_MESSAGE = "send_message"

_INTERRUPTED = (
    "send_interrupted: the hub stopped while handing this message to the gateway; "
    "it may or may not have been sent"
)


#: Picks of a free SIM before a hand-over waits a moment (each lost to another worker).
CHOICE_TRIES = 3


@dataclass(frozen=True, slots=True)
class Wait:
    """The message cannot go before ``until``; ``reason`` is shown on it (None: scheduled)."""

    until: datetime
    reason: str | None


def stamp(at: datetime) -> str:
    """A time as the waiting reasons show it (UTC, seconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def send_message(hub: Hub, message_id: str, channel_id: str | None = None) -> None:
    """Job: hand one queued message to its gateway (idempotent: a re-run after a crash is safe)."""
    if channel_id is None:  # a job queued before the channel was part of its arguments
        channel_id = await hub.store.read(
            fetch_value("SELECT channel_id FROM messages WHERE id = ?", (message_id,))
        )
    channel = await hub.channels.get(channel_id) if channel_id else None
    token = HandOver()  # marks this job's hand-over in hub.handing (see _in_flight_until)
    try:
        await _hand_over(hub, message_id, channel, token)
    finally:
        # A job cancelled (timed out) while its unit still waits in the store: the unit
        # may run later and register the token, which must then not count as alive.
        token.alive = False
        if hub.handing.get(message_id) is token:
            del hub.handing[message_id]


class HandOver:
    """One send job's claim on a message it marks ``sending`` (alive while the job runs)."""

    __slots__ = ("alive",)

    def __init__(self) -> None:
        self.alive = True


async def _hand_over(
    hub: Hub, message_id: str, channel: ChannelRuntime | None, token: HandOver
) -> None:
    # A maker, not a unit: on PostgreSQL a hand-over that loses a deadlock (two batches
    # each holding a SIM row the other wants) is run again at once, not failed.
    prepared = await hub.store.write(lambda: _prepare(hub, message_id, channel, token))
    if prepared is None:
        return
    if isinstance(prepared, Wait):
        delay = (prepared.until - hub.clock()).total_seconds()
        raise Retry(max(0.05, delay), count_attempt=False, reason=prepared.reason or "scheduled")
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
    hub: Hub, message_id: str, channel: ChannelRuntime | None, token: HandOver
) -> Unit[tuple[SendRequest, int] | Wait | None]:
    """Unit: check, time, route and pace the message, then mark it ``sending``."""
    message = yield from load_message(hub, message_id, lock=True)
    if message is None or message.status not in ("scheduled", "queued", "sending"):
        return None  # already handed over (a re-run), final or cancelled
    if channel is None or not channel.enabled or not channel.can_send:
        yield from record_status(hub, message, "failed", detail="channel deleted or disabled")
        return None
    elsewhere = _in_flight_until(hub, message, token)
    if elsewhere is not None:
        yield from _waiting(message, elsewhere)
        return elsewhere
    refusal = yield from _refusal(message, channel)
    if refusal is not None:
        yield from record_status(hub, message, "failed", detail=refusal)
        return None
    now = hub.clock()
    # A re-run of an interrupted hand-over (status sending) is not held by quiet hours.
    wait = None if message.status == "sending" else (yield from _timing(hub, message, channel, now))
    if wait is None:
        chosen = yield from _route(hub, channel, message, now)
        wait = chosen if isinstance(chosen, Wait) else None
    if wait is not None:
        yield from _waiting(message, wait)
        return wait
    sim = cast(sims.Sim | None, chosen)
    message.attempts += 1
    yield from execute(
        "UPDATE messages SET attempts = ?, handed_at = ?, device_id = ?, sim_slot = ?, "
        "waiting_reason = NULL, next_attempt_at = NULL WHERE id = ?",
        (message.attempts, now, message.device_id, message.sim_slot, message.id),
    )
    if message.status != "sending":
        yield from record_status(hub, message, "sending", now=now)
    if token.alive:  # before the commit: a unit after it in the batch sees it
        hub.handing[message.id] = token
    request = SendRequest(
        message_id=message.id,
        to=message.to_number or "",
        text=message.body,
        from_number=message.from_number or channel.phone_number,
        device_id=sim.external_id if sim else None,
        sim_slot=message.sim_slot,
        status_callback_url=f"{hub.settings.public_url.rstrip('/')}/webhooks/{channel.id}/status",
    )
    return request, message.attempts


def _waiting(message: MessageRow, wait: Wait) -> Unit[None]:
    """Unit: why and until when the message waits, on the message."""
    yield from execute(
        "UPDATE messages SET waiting_reason = ?, next_attempt_at = ? WHERE id = ?",
        (wait.reason, wait.until, message.id),
    )


def _in_flight_until(hub: Hub, message: MessageRow, token: HandOver) -> Wait | None:
    """A wait while a message marked ``sending`` may still be in another job's hand-over
    (a second send job of the same message, e.g. one queued again by a resume): resending
    it now would hand it over twice, failing it as interrupted would undo a send that works.

    Another job of this process is known (``hub.handing``). One of another process is
    presumed while the hand-over is younger than a job lease — the queue runs a job again
    only once its lease ran out — unless no other process can be running jobs (the
    embedded default after a restart: the one that marked it is dead)."""
    if message.status != "sending" or message.handed_at is None:
        return None
    until = message.handed_at + timedelta(seconds=hub.settings.job_lease_s)
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    owner = hub.handing.get(message.id)
    # This job's own claim (its unit run again after a lost deadlock) is no other job's.
    busy = owner is not None and owner is not token and owner.alive
    if not busy and (hub.queue.exclusive or until <= hub.clock()):
        return None
    until = max(until, hub.clock() + timedelta(seconds=1))
    return Wait(until, f"being handed over by another job; checked again at {stamp(until)}")


def _refusal(message: MessageRow, channel: ChannelRuntime) -> Unit[str | None]:
    """Why this message must not go out now, if it must not."""
    if message.status == "sending" and not channel.connector.capabilities.idempotent_send:
        # We crashed while handing it over and this gateway cannot dedupe a resend:
        # a duplicate SMS is worse than an honest "unknown", so stop here.
        return _INTERRUPTED
    found = yield from fetch_one(
        "SELECT opted_out, blocked FROM contacts WHERE id = ?", (message.contact_id,)
    )
    if found and found[1]:  # blocked: nothing goes out, not even a STOP confirmation
        return "blocked: the contact is blocked"
    if found and found[0] and not message.bypass_opt_out:
        return "opted_out: the contact replied STOP"
    return None


def _timing(
    hub: Hub, message: MessageRow, channel: ChannelRuntime, now: datetime
) -> Unit[Wait | None]:
    """Unit: a wait for a scheduled message's time or for the end of its quiet hours (in
    the contact's timezone, else the channel's, else UTC); a scheduled message that is
    due becomes ``queued``."""
    found = yield from fetch_one(
        "SELECT m.send_at, m.quiet_hours, c.timezone FROM messages m "
        "JOIN contacts c ON c.id = m.contact_id WHERE m.id = ?",
        (message.id,),
    )
    send_at, quiet, contact_tz = found if found else (None, None, None)
    send_at = as_datetime(send_at)
    if message.status == "scheduled":
        if send_at is not None and send_at > now:
            return Wait(send_at, None)  # moved later, or an early timer
        yield from record_status(hub, message, "queued", now=now)
    tz = pacing.zone(contact_tz) or sims.channel_zone(channel)
    try:
        window = pacing.parse_quiet_hours(as_json(quiet))
    except ValueError:
        window = None  # written by an older version: not ours to refuse now
    until = pacing.quiet_until(window, now, tz)
    return Wait(until, f"quiet hours until {stamp(until)}") if until else None


def _route(
    hub: Hub, channel: ChannelRuntime, message: MessageRow, now: datetime
) -> Unit[sims.Sim | Wait | None]:
    """Unit: the SIM that takes the message now (counted), a wait for capacity, or None
    (a gateway without devices: nothing to route or pace).

    The choice is made on the SIMs as read, then only the chosen SIM's row is locked and
    read again (PostgreSQL: another worker may just have counted a send on it); when it
    can no longer take the message, the choice is made again. A hand-over so holds one
    SIM row, never the channel's: sends on different SIMs do not wait for each other."""
    if not message.device_id and not channel.connector.capabilities.devices:
        return None
    tz = sims.channel_zone(channel)
    own = yield from _own_sim(hub, channel, message, now)
    found = yield from sims.load_sims(
        hub, channel_id=channel.id, tz=tz, device_id=own[0] if own else message.device_id
    )
    if message.sim_slot is not None and not message.device_id:
        found = [s for s in found if s.slot == message.sim_slot] or found
    if not found:
        return None
    turn = 0 if own is not None else sims.next_turn(channel.id)
    for _ in range(CHOICE_TRIES):
        choice = sims.choose(found, now, message.segments, own=own, turn=turn)
        if choice.sim is None or (
            yield from sims.still_free(hub, choice.sim, now, message.segments)
        ):
            break
    else:  # every pick was taken meanwhile: look again in a moment
        return Wait(now + timedelta(seconds=0.1), "waiting for capacity")
    if choice.sim is None:
        until = choice.wait_until or now
        pinned = next((s for s in found if own and (s.device_id, s.slot) == own), None)
        if pinned and not message.device_id and sims.at_cap(pinned, now, message.segments):
            until = now  # the sticky SIM reached its cap meanwhile: choose again at once
        return Wait(until, f"waiting for capacity until {stamp(until)}")
    sim = choice.sim
    message.device_id = sim.device_id
    if sim.known_slot:
        message.sim_slot = sim.slot
    yield from sims.take(hub, sim, now, message.segments)
    return sim


def _own_sim(
    hub: Hub, channel: ChannelRuntime, message: MessageRow, now: datetime
) -> Unit[tuple[str, int] | None]:
    """The SIM the message must wait for: its own (device and slot), else the one the
    contact last texted in on unless that SIM is at its daily cap (then any SIM may)."""
    if message.device_id:
        return (message.device_id, message.sim_slot) if message.sim_slot is not None else None
    sticky = yield from _sticky(message, channel)
    if sticky is None:
        return None
    tz = sims.channel_zone(channel)
    peek = yield from sims.load_sims(hub, channel_id=channel.id, tz=tz, device_id=sticky[0])
    pinned = next((s for s in peek if (s.device_id, s.slot) == sticky), None)
    return None if pinned and sims.at_cap(pinned, now, message.segments) else sticky


def _sticky(message: MessageRow, channel: ChannelRuntime) -> Unit[tuple[str, int] | None]:
    """The device and SIM the contact last texted in on, if any."""
    last = yield from fetch_one(
        "SELECT device_id, sim_slot FROM messages WHERE contact_id = ? AND channel_id = ? "
        "AND direction = 'inbound' AND device_id IS NOT NULL ORDER BY id DESC LIMIT 1",
        (message.contact_id, channel.id),
    )
    if last is None:
        return None
    return str(last[0]), int(last[1] or 0)


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
