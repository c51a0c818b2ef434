"""What users do with deliveries: list and inspect them, retry one, replay failed ones, send
a test event, and read samples for REST Hook integrations.

Retry and replay move a *final* delivery back to pending with a new generation in one
conditional UPDATE, so two clicks (or two processes) cannot both win: the second finds
the delivery pending already and queues nothing. Each gets exactly one new attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.context import Hub
from hub.delivery import presets
from hub.delivery.attempts import make_plan, record, send
from hub.delivery.endpoints import field_error, get_endpoint_row, plausible_id
from hub.delivery.jobs import DELIVER_JOB, job_key
from hub.delivery.models import Delivery, DeliveryAttempt, Endpoint
from hub.delivery.samples import sample_event
from hub.errors import Conflict, NotFound
from hub.event_data import EVENT_TYPES
from hub.ids import new_id
from hub.models import Event, utcnow
from hub.paging import keyset_page
from hub.queue.base import enqueue

#: Statuses a delivery can be retried from.
FINAL = ("failed", "succeeded")
#: Payloads ``/hooks/sample/{event}`` returns at most.
SAMPLE_LIMIT = 3


async def list_deliveries(
    hub: Hub,
    *,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    endpoint_id: str | None = None,
    event_id: str | None = None,
    event_type: str | None = None,
) -> tuple[list[Delivery], str | None]:
    """Deliveries matching every filter, newest first (``status=failed`` is the dead letters)."""
    stmt = sa.select(Delivery)
    for column, value in (
        (Delivery.status, status),
        (Delivery.endpoint_id, endpoint_id),
        (Delivery.event_id, event_id),
        (Delivery.event_type, event_type),
    ):
        if value:
            stmt = stmt.where(col(column) == value)
    return await keyset_page(hub.db, stmt, key=col(Delivery.id), limit=limit, cursor=cursor)


async def get_delivery(hub: Hub, delivery_id: str) -> tuple[Delivery, list[DeliveryAttempt]]:
    """A delivery and its attempts, oldest first."""
    async with hub.db.read() as session:
        return await _delivery_row(session, delivery_id), await attempts_of(session, delivery_id)


async def _delivery_row(session: AsyncSession, delivery_id: str) -> Delivery:
    """A delivery or 404."""
    row = await session.get(Delivery, delivery_id) if plausible_id(delivery_id) else None
    if row is None:
        raise NotFound(f"no delivery {delivery_id[:64]!r}", code="delivery_not_found")
    return row


async def attempts_of(session: AsyncSession, delivery_id: str) -> list[DeliveryAttempt]:
    """The attempts of a delivery, oldest first."""
    rows = await session.execute(
        sa.select(DeliveryAttempt)
        .where(col(DeliveryAttempt.delivery_id) == delivery_id)
        .order_by(col(DeliveryAttempt.number))
    )
    return list(rows.scalars())


async def _requeue(session: AsyncSession, *where: Any) -> int:
    """Move the deliveries matching ``where`` to a new pending generation with one attempt
    to make, and queue that attempt; how many moved."""
    now = utcnow()
    stmt = (
        sa.update(Delivery)
        .where(*where)
        .values(
            status="pending",
            generation=Delivery.generation + 1,
            generation_attempts=0,
            max_attempts=1,
            next_attempt_at=now,
            finished_at=None,
            updated_at=now,
        )
        .returning(col(Delivery.id), col(Delivery.generation))
    )
    moved = list((await session.execute(stmt)).all())
    for delivery_id, generation in moved:
        await enqueue(
            session,
            DELIVER_JOB,
            {"delivery_id": delivery_id, "generation": generation},
            key=job_key(delivery_id, generation),
        )
    return len(moved)


def _check_sendable(endpoint: Endpoint) -> None:
    if not endpoint.enabled:
        raise Conflict(
            f"endpoint {endpoint.id} is disabled ({endpoint.disabled_reason or 'by a user'}); "
            "enable it first",
            code="endpoint_disabled",
        )


async def retry_delivery(hub: Hub, delivery_id: str) -> Delivery:
    """Send a finished delivery once more (a pending one is left as it is)."""
    async with hub.db.write() as session:
        row = await _delivery_row(session, delivery_id)
        if row.status == "cancelled":
            raise Conflict("the delivery was cancelled with its endpoint", code="cancelled")
        _check_sendable(await get_endpoint_row(session, row.endpoint_id))
        # A pending delivery matches nothing here: it keeps its queued attempt.
        await _requeue(session, col(Delivery.id) == delivery_id, col(Delivery.status).in_(FINAL))
    hub.queue.notify()
    async with hub.db.read() as session:
        fresh = await session.get(Delivery, delivery_id)
    assert fresh is not None
    return fresh


async def replay_failed(hub: Hub, endpoint_id: str, since: datetime) -> int:
    """Send every failed delivery of an endpoint created since ``since`` once more."""
    async with hub.db.write() as session:
        _check_sendable(await get_endpoint_row(session, endpoint_id))
        replayed = await _requeue(
            session,
            col(Delivery.endpoint_id) == endpoint_id,
            col(Delivery.status) == "failed",
            col(Delivery.created_at) >= since,
            col(Delivery.test).is_(False),
        )
    hub.queue.notify()
    return replayed


async def send_test(hub: Hub, endpoint_id: str, event_type: str | None) -> Delivery:
    """Send a sample event now (one attempt, no retries) and return the recorded delivery."""
    async with hub.db.read() as session:
        endpoint = await get_endpoint_row(session, endpoint_id)
    if event_type is None:
        event_type = next((t for t in endpoint.event_types if t != "*"), "sms.received")
    if event_type not in EVENT_TYPES:
        raise field_error("event_type", f"unknown event type {event_type!r}", "unknown_event_type")
    now = utcnow()
    payload = sample_event(event_type, now)
    delivery = Delivery(
        id=new_id("dlv"),
        endpoint_id=endpoint.id,
        event_id=payload["id"],
        event_type=event_type,
        status="pending",
        max_attempts=1,
        next_attempt_at=now,
        payload=payload,
        test=True,
        created_at=now,
        updated_at=now,
    )
    async with hub.db.write() as session:
        session.add(delivery)
    # A test runs inline, outside the queue and the endpoint gate: the user is waiting.
    plan = make_plan(hub, delivery, endpoint, payload)
    await record(hub, plan, await send(hub, plan))
    async with hub.db.read() as session:
        fresh = await session.get(Delivery, delivery.id)
    assert fresh is not None
    return fresh


async def hook_samples(hub: Hub, event: str, preset: str) -> list[Any]:
    """Recent payloads of ``event`` as ``preset`` would send them (a made-up one if none)."""
    if event != "*" and event not in EVENT_TYPES:
        raise NotFound(
            f"unknown event type {event!r}; use '*' or any of {', '.join(EVENT_TYPES)}",
            code="unknown_event_type",
        )
    stmt = sa.select(col(Event.payload)).where(_public_events())
    stmt = stmt.where(col(Event.type).in_(EVENT_TYPES if event == "*" else [event]))
    stmt = stmt.order_by(col(Event.created_at).desc()).limit(SAMPLE_LIMIT)
    async with hub.db.read() as session:
        found = [row for row in (await session.execute(stmt)).scalars() if row]
    if not found:
        found = [sample_event("sms.received" if event == "*" else event, utcnow())]
    return [presets.shape_body(preset, payload) for payload in found]


def _public_events() -> Any:
    """Rows that were published as events.

    The events table also keeps the gateways' raw delivery reports (typed ``sms.sent`` …
    too, but never dispatched); the public status events are the ones the message status
    machine emits, with dedupe keys ``status:<message>:<status>``.
    """
    status_types = ("sms.sent", "sms.delivered", "sms.failed")
    return sa.or_(col(Event.type).not_in(status_types), col(Event.dedupe_key).startswith("status:"))
