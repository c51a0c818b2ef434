"""The event sink that turns events into deliveries, and the job that attempts one.

Flow: ``dispatch_event`` calls :func:`fan_out` inside its transaction → one ``deliveries``
row per matching enabled endpoint (unique on endpoint + event, inserted with ON CONFLICT
DO NOTHING, so a re-dispatch adds nothing) and one ``deliver_webhook`` job each, keyed by
delivery and generation → the job asks the endpoint gate for a slot, sends, records, and
raises ``Retry(count_attempt=False)`` to sleep until the next scheduled attempt (the
delivery row keeps the real attempt count; the job's own attempts are for crashes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.context import Hub
from hub.delivery.attempts import (
    Plan,
    make_plan,
    record,
    retry_after_s,
    scheduled_delay,
    send,
)
from hub.delivery.gate import Ticket
from hub.ids import new_id
from hub.models import utcnow
from hub.queue.base import Retry, enqueue_job
from hub.store import Unit, as_datetime, as_json, execute, fetch_all, fetch_one, insert_rows

#: Job: the next attempt of one delivery.
DELIVER_JOB = "deliver_webhook"


def job_key(delivery_id: str, generation: int) -> str:
    """One job per delivery and generation: a double enqueue (two replay clicks) is one job."""
    return f"deliver:{delivery_id}:{generation}"


def subscribed(event_types: list[str], event_type: str) -> bool:
    """True when an endpoint with ``event_types`` wants ``event_type``."""
    return "*" in event_types or event_type in event_types


_DELIVERY_COLUMNS = (
    "id",
    "endpoint_id",
    "event_id",
    "event_type",
    "status",
    "generation",
    "generation_attempts",
    "max_attempts",
    "attempts",
    "next_attempt_at",
    "test",
    "created_at",
    "updated_at",
)


def fan_out(hub: Hub, payloads: list[dict[str, Any]]) -> Unit[None]:
    """Sink: one delivery (and its job) per event and enabled endpoint subscribed to its type."""
    events = [
        (str(p.get("id") or ""), str(p.get("type") or ""))
        for p in payloads
        if p.get("id") and p.get("type")
    ]
    if not events:
        return
    endpoints = yield from fetch_all(
        "SELECT id, event_types FROM endpoints WHERE enabled = ? AND deleted_at IS NULL", (True,)
    )
    if not endpoints:
        return
    schedule = hub.settings.retry_schedule
    now = utcnow()
    delay = scheduled_delay(schedule, 0)
    first = now + timedelta(seconds=delay)
    attempts = len(schedule)
    rows = [
        (
            *(new_id("dlv"), endpoint_id, event_id, event_type, "pending", 0, 0, attempts, 0),
            *(first, False, now, now),
        )
        for event_id, event_type in events
        for endpoint_id, event_types in endpoints
        if subscribed(as_json(event_types), event_type)
    ]
    # One multi-row INSERT … ON CONFLICT DO NOTHING: a re-dispatch inserts nothing.
    inserted = yield from insert_rows(
        "deliveries",
        _DELIVERY_COLUMNS,
        rows,
        conflict="ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        returning="id",
    )
    lease = hub.queue.lease() if delay <= 0 else None
    for (delivery_id,) in inserted:
        yield from enqueue_job(
            DELIVER_JOB,
            {"delivery_id": delivery_id, "generation": 0},
            delay_s=delay,
            key=job_key(delivery_id, 0),
            lease=lease,
        )


async def deliver_webhook(hub: Hub, delivery_id: str, generation: int = 0) -> None:
    """Job: make the next attempt of one delivery (a stale or finished one is left alone)."""
    plan = await _prepare(hub, delivery_id, generation)
    if plan is None:
        return
    gate = hub.gates
    admission = await gate.admit(plan.endpoint_id, rate_per_s=plan.rate_limit_per_s)
    if not isinstance(admission, Ticket):
        raise Retry(admission, count_attempt=False, reason="endpoint busy: deferred")
    try:
        outcome = await send(hub, plan)
    finally:
        await gate.release(admission)
    delay = await record(hub, plan, outcome)
    asked = retry_after_s(outcome, utcnow())
    if asked:
        # "Retry-After" speaks for the whole endpoint: hold its other deliveries too.
        gate.pause(plan.endpoint_id, asked)
    if delay is not None:
        raise Retry(delay, count_attempt=False, reason=f"next attempt in {delay:.1f}s")


@dataclass(frozen=True, slots=True)
class _Due:
    """The columns of a delivery and its endpoint that an attempt needs (one read)."""

    id: str
    generation: int
    event_id: str
    test: bool
    generation_attempts: int
    max_attempts: int
    status: str
    next_attempt_at: datetime | None
    payload: dict[str, Any] | None
    endpoint: EndpointRow


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """What :func:`hub.delivery.attempts.make_plan` reads of an endpoint."""

    id: str
    url: str
    preset: str
    rate_limit_per_s: int | None
    failing_since: datetime | None
    secret_enc: str
    previous_secret_enc: str | None
    previous_secret_until: datetime | None
    headers_enc: str | None
    enabled: bool
    deleted_at: datetime | None
    disabled_reason: str | None


_DUE = (
    "SELECT d.generation, d.event_id, d.test, d.generation_attempts, d.max_attempts, "
    "d.status, d.next_attempt_at, d.payload, e.id, e.url, e.preset, e.rate_limit_per_s, "
    "e.failing_since, e.secret_enc, e.previous_secret_enc, e.previous_secret_until, "
    "e.headers_enc, e.enabled, e.deleted_at, e.disabled_reason, ev.payload "
    "FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id "
    "LEFT JOIN events ev ON ev.id = d.event_id WHERE d.id = ?"
)


def _load_due(delivery_id: str) -> Unit[_Due | None]:
    """Unit (read): the delivery, its endpoint and the event body, in one round trip."""
    row = yield from fetch_one(_DUE, (delivery_id,))
    if row is None:
        return None
    (generation, event_id, test, generation_attempts, max_attempts, status, next_attempt_at,
     own_payload, *endpoint_columns, event_payload) = row  # fmt: skip
    (endpoint_id, url, preset, rate_limit_per_s, failing_since, secret_enc,
     previous_secret_enc, previous_secret_until, headers_enc, enabled, deleted_at,
     disabled_reason) = endpoint_columns  # fmt: skip
    endpoint = EndpointRow(
        id=endpoint_id,
        url=url,
        preset=preset,
        rate_limit_per_s=rate_limit_per_s,
        failing_since=as_datetime(failing_since),
        secret_enc=secret_enc,
        previous_secret_enc=previous_secret_enc,
        previous_secret_until=as_datetime(previous_secret_until),
        headers_enc=headers_enc,
        enabled=bool(enabled),
        deleted_at=as_datetime(deleted_at),
        disabled_reason=disabled_reason,
    )
    return _Due(
        id=delivery_id,
        generation=generation,
        event_id=event_id,
        test=bool(test),
        generation_attempts=generation_attempts,
        max_attempts=max_attempts,
        status=status,
        next_attempt_at=as_datetime(next_attempt_at),
        # A test delivery carries its own body; every other one is the event's.
        payload=as_json(own_payload if own_payload is not None else event_payload),
        endpoint=endpoint,
    )


async def _prepare(hub: Hub, delivery_id: str, generation: int) -> Plan | None:
    """The plan of a due attempt; None when there is nothing to do; Retry when not yet due."""
    due: _Due | None = await hub.store.read(_load_due(delivery_id))
    if due is None or due.status != "pending" or due.generation != generation:
        return None
    endpoint = due.endpoint
    now = utcnow()
    if endpoint.deleted_at is not None:
        await _close(hub, delivery_id, generation, "cancelled", "endpoint deleted")
        return None
    if not endpoint.enabled:
        reason = f"endpoint disabled: {endpoint.disabled_reason or 'by a user'}"
        await _close(hub, delivery_id, generation, "failed", reason)
        return None
    if due.payload is None:
        await _close(hub, delivery_id, generation, "failed", "the event no longer exists")
        return None
    if due.next_attempt_at is not None and due.next_attempt_at > now:
        # A job that ran early (a lease taken over after a crash): wait for the schedule.
        wait = (due.next_attempt_at - now).total_seconds()
        raise Retry(wait, count_attempt=False, reason="not due yet")
    return make_plan(hub, due, endpoint, due.payload)


async def _close(hub: Hub, delivery_id: str, generation: int, status: str, reason: str) -> None:
    """Finish a pending delivery without an attempt (endpoint deleted or disabled)."""
    now = utcnow()
    await hub.store.write(
        execute(
            "UPDATE deliveries SET status = ?, last_error = ?, next_attempt_at = NULL, "
            "updated_at = ?, finished_at = ? "
            "WHERE id = ? AND generation = ? AND status = 'pending'",
            (status, reason, now, now, delivery_id, generation),
        )
    )
