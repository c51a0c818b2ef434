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
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.context import Hub
from hub.dbutil import dialect_insert
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
from hub.queue.base import Retry, enqueue

#: Job: the next attempt of one delivery.
DELIVER_JOB = "deliver_webhook"


def job_key(delivery_id: str, generation: int) -> str:
    """One job per delivery and generation: a double enqueue (two replay clicks) is one job."""
    return f"deliver:{delivery_id}:{generation}"


def subscribed(event_types: list[str], event_type: str) -> bool:
    """True when an endpoint with ``event_types`` wants ``event_type``."""
    return "*" in event_types or event_type in event_types


async def fan_out(hub: Hub, session: AsyncSession, payloads: list[dict[str, Any]]) -> None:
    """Sink: one delivery (and its job) per event and enabled endpoint subscribed to its type."""
    events = [
        (str(p.get("id") or ""), str(p.get("type") or ""))
        for p in payloads
        if p.get("id") and p.get("type")
    ]
    if not events:
        return
    rows = await session.execute(
        sa.select(Endpoint).where(
            col(Endpoint.enabled).is_(True), col(Endpoint.deleted_at).is_(None)
        )
    )
    endpoints = list(rows.scalars())
    if not endpoints:
        return
    schedule = hub.settings.retry_schedule
    now = utcnow()
    values: list[dict[str, Any]] = []
    for (event_id, event_type), endpoint in ((e, ep) for e in events for ep in endpoints):
        if subscribed(endpoint.event_types, event_type):
            delay = scheduled_delay(schedule, 0)
            values.append(
                {
                    "id": new_id("dlv"),
                    "endpoint_id": endpoint.id,
                    "event_id": event_id,
                    "event_type": event_type,
                    "status": "pending",
                    "generation": 0,
                    "generation_attempts": 0,
                    "max_attempts": len(schedule),
                    "attempts": 0,
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "test": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if not values:
        return
    # One multi-row INSERT … ON CONFLICT DO NOTHING: a re-dispatch inserts nothing.
    inserted = set(await insert_many_ignore(session, values))
    for row in values:
        if row["id"] in inserted:
            delay = (row["next_attempt_at"] - now).total_seconds()
            await enqueue(
                session,
                DELIVER_JOB,
                {"delivery_id": row["id"], "generation": 0},
                delay_s=delay,
                key=job_key(row["id"], 0),
            )


async def insert_many_ignore(session: AsyncSession, values: list[dict[str, Any]]) -> list[str]:
    """Insert deliveries, skipping (endpoint, event) pairs that exist; the ids written."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session)
    stmt = (
        insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        .returning(table.c.id)
    )
    return list((await session.execute(stmt)).scalars())


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
