"""The event sink that turns events into deliveries, and the job that attempts one.

Flow: ``dispatch_event`` calls :func:`fan_out` inside its transaction → one ``deliveries``
row per matching enabled endpoint (unique on endpoint + event, inserted with ON CONFLICT
DO NOTHING, so a re-dispatch adds nothing) and one ``deliver_webhook`` job each, keyed by
delivery and generation → the job asks the endpoint gate for a slot, sends, records, and
raises ``Retry(count_attempt=False)`` to sleep until the next scheduled attempt (the
delivery row keeps the real attempt count; the job's own attempts are for crashes).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

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
from hub.delivery.models import Delivery, Endpoint
from hub.ids import new_id
from hub.models import Event, utcnow
from hub.queue.base import Retry, enqueue_job
from hub.store import Unit, as_json, fetch_all, insert_rows

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
    admission = gate.enter(plan.endpoint_id, rate_per_s=plan.rate_limit_per_s)
    if not isinstance(admission, Ticket):
        raise Retry(admission, count_attempt=False, reason="endpoint busy: deferred")
    try:
        outcome = await send(hub, plan)
    finally:
        gate.leave(admission)
    delay = await record(hub, plan, outcome)
    asked = retry_after_s(outcome, utcnow())
    if asked:
        # "Retry-After" speaks for the whole endpoint: hold its other deliveries too.
        gate.pause(plan.endpoint_id, asked)
    if delay is not None:
        raise Retry(delay, count_attempt=False, reason=f"next attempt in {delay:.1f}s")


async def _prepare(hub: Hub, delivery_id: str, generation: int) -> Plan | None:
    """The plan of a due attempt; None when there is nothing to do; Retry when not yet due."""
    async with hub.db.read() as session:
        # One round trip for the delivery, its endpoint and the event body.
        found = (
            await session.execute(
                sa.select(Delivery, Endpoint, col(Event.payload))
                .join(Endpoint, col(Endpoint.id) == col(Delivery.endpoint_id))
                .outerjoin(Event, col(Event.id) == col(Delivery.event_id))
                .where(col(Delivery.id) == delivery_id)
            )
        ).one_or_none()
    if found is None:
        return None
    delivery, endpoint, event_payload = found
    if delivery.status != "pending" or delivery.generation != generation:
        return None
    payload = delivery.payload if delivery.payload is not None else event_payload
    now = utcnow()
    if endpoint.deleted_at is not None:
        await _close(hub, delivery_id, generation, "cancelled", "endpoint deleted")
        return None
    if not endpoint.enabled:
        reason = f"endpoint disabled: {endpoint.disabled_reason or 'by a user'}"
        await _close(hub, delivery_id, generation, "failed", reason)
        return None
    if payload is None:
        await _close(hub, delivery_id, generation, "failed", "the event no longer exists")
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        # A job that ran early (a lease taken over after a crash): wait for the schedule.
        wait = (delivery.next_attempt_at - now).total_seconds()
        raise Retry(wait, count_attempt=False, reason="not due yet")
    return make_plan(hub, delivery, endpoint, payload)


async def _close(hub: Hub, delivery_id: str, generation: int, status: str, reason: str) -> None:
    """Finish a pending delivery without an attempt (endpoint deleted or disabled)."""
    now = utcnow()
    async with hub.db.write() as session:
        await session.execute(
            sa.update(Delivery)
            .where(
                col(Delivery.id) == delivery_id,
                col(Delivery.generation) == generation,
                col(Delivery.status) == "pending",
            )
            .values(
                status=status,
                last_error=reason,
                next_attempt_at=None,
                updated_at=now,
                finished_at=now,
            )
        )
