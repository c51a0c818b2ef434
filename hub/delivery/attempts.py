"""One attempt of a delivery: build the signed request, send it, record what happened.

Recording is one transaction: the attempt row, the delivery's new state (succeeded,
rescheduled, or failed = dead letter), and the endpoint's health (a 2xx clears its
failure record; a 410, or failing for ``delivery_disable_after_s`` straight, disables it
and emits ``endpoint.disabled``).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.context import Hub
from hub.delivery import presets
from hub.delivery.endpoints import current_secrets, extra_headers
from hub.delivery.models import Delivery, DeliveryAttempt, Endpoint
from hub.delivery.outbound import USER_AGENT, RequestOutcome, clean_text, perform
from hub.delivery.signing import sign_headers
from hub.models import Event, utcnow
from hub.services.events import emit, iso

log = logging.getLogger("smshub.delivery")

#: Retry-After values beyond this are capped (a day): a typo should not park a delivery.
MAX_RETRY_AFTER_S = 86_400.0
#: Scheduled delays are spread by ± this fraction so retries of a burst do not align.
RETRY_JITTER = 0.1
#: Statuses whose Retry-After header is honoured.
RETRY_AFTER_STATUSES = (429, 503)


@dataclass(frozen=True)
class Plan:
    """Everything one attempt needs, read before the request (no session held open)."""

    delivery_id: str
    generation: int
    endpoint_id: str
    url: str
    preset: str
    secrets: list[str]
    headers: dict[str, str]
    rate_limit_per_s: int | None
    event_id: str
    payload: dict[str, Any]
    test: bool

    @property
    def trigger(self) -> str:
        """What started this attempt: schedule, manual (retry or replay) or test."""
        if self.test:
            return "test"
        return "schedule" if self.generation == 0 else "manual"


def make_plan(hub: Hub, delivery: Delivery, endpoint: Endpoint, payload: dict[str, Any]) -> Plan:
    """The plan of the next attempt of ``delivery``."""
    return Plan(
        delivery_id=delivery.id,
        generation=delivery.generation,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        preset=endpoint.preset,
        secrets=current_secrets(hub, endpoint),
        headers=extra_headers(hub, endpoint),
        rate_limit_per_s=endpoint.rate_limit_per_s,
        event_id=delivery.event_id,
        payload=payload,
        test=delivery.test,
    )


async def payload_of(session: AsyncSession, delivery: Delivery) -> dict[str, Any] | None:
    """The event body of a delivery (stored on test deliveries, else the event row's)."""
    if delivery.payload is not None:
        return delivery.payload
    event = await session.get(Event, delivery.event_id)
    return event.payload if event is not None else None


def build_request(plan: Plan, at: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an attempt at ``at``: shaped by the preset, then signed."""
    body = json.dumps(
        presets.shape_body(plan.preset, plan.payload), separators=(",", ":"), ensure_ascii=False
    )
    headers = {
        **plan.headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # The event id is the webhook id: the same on every retry and replay, so the
        # receiver can drop duplicates.
        **sign_headers(plan.event_id, at, body, plan.secrets),
    }
    return body.encode(), headers


async def send(hub: Hub, plan: Plan) -> RequestOutcome:
    """Sign and send one attempt."""
    content, headers = build_request(plan, hub.clock())
    return await perform(
        hub,
        method="POST",
        url=plan.url,
        headers=headers,
        content=content,
        timeout_s=hub.settings.delivery_timeout_s,
    )


def describe(outcome: RequestOutcome) -> str | None:
    """The attempt's error in words (None for a 2xx)."""
    if outcome.ok:
        return None
    if outcome.status is None:
        return outcome.error or "no response"
    try:
        phrase = HTTPStatus(outcome.status).phrase
    except ValueError:
        phrase = ""
    text = f"HTTP {outcome.status} {phrase}".strip()
    if 300 <= outcome.status < 400:
        where = outcome.headers.get("location", "?")
        return clean_text(f"{text}: redirect to {where[:500]} not followed")
    return text


def retry_after_s(outcome: RequestOutcome, now: datetime) -> float | None:
    """Seconds a 429/503 asked us to wait (Retry-After: seconds or an HTTP date)."""
    if outcome.status not in RETRY_AFTER_STATUSES:
        return None
    value = outcome.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def scheduled_delay(schedule: list[float], attempts_done: int) -> float:
    """The wait before the next attempt, with jitter."""
    base = schedule[min(attempts_done, len(schedule) - 1)]
    return base * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)


async def record(hub: Hub, plan: Plan, outcome: RequestOutcome) -> float | None:
    """Store the attempt and its consequences; the delay before the next attempt, if any."""
    async with hub.db.write() as session:
        delay = await _record(hub, session, plan, outcome)
    hub.queue.notify()
    return delay


async def _record(
    hub: Hub, session: AsyncSession, plan: Plan, outcome: RequestOutcome
) -> float | None:
    delivery = await session.get(Delivery, plan.delivery_id)
    endpoint = await session.get(Endpoint, plan.endpoint_id)
    if delivery is None or endpoint is None:
        return None
    now = utcnow()
    error = describe(outcome)
    delivery.attempts += 1
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            generation=plan.generation,
            trigger=plan.trigger,
            at=now - timedelta(milliseconds=outcome.duration_ms),
            duration_ms=outcome.duration_ms,
            status_code=outcome.status,
            response_body=outcome.body if outcome.status is not None else None,
            response_truncated=outcome.truncated,
            error=error,
        )
    )
    delivery.last_status_code = outcome.status
    delivery.last_error = error
    delivery.updated_at = now
    session.add(delivery)
    if not plan.test:
        await _track_health(hub, session, endpoint, outcome, now)
    if delivery.generation != plan.generation or delivery.status != "pending":
        return None  # cancelled or replaced while on the wire: keep the attempt, nothing more
    delivery.generation_attempts += 1
    wait = retry_after_s(outcome, now)
    more = delivery.generation_attempts < delivery.max_attempts
    if outcome.ok:
        _finish(delivery, "succeeded", now)
    elif outcome.status == 410 or not endpoint.enabled or not more:
        _finish(delivery, "failed", now)
    else:
        delay = scheduled_delay(hub.settings.retry_schedule, delivery.generation_attempts)
        if wait is not None:
            delay = max(delay, wait)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        return delay
    return None


def _finish(delivery: Delivery, status: str, now: datetime) -> None:
    delivery.status = status
    delivery.next_attempt_at = None
    delivery.finished_at = now


async def _track_health(
    hub: Hub, session: AsyncSession, endpoint: Endpoint, outcome: RequestOutcome, now: datetime
) -> None:
    """A success clears the failure record; 410 or days of failures disable the endpoint."""
    if outcome.ok:
        if endpoint.failing_since is not None:
            endpoint.failing_since = None
            session.add(endpoint)
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        session.add(endpoint)
    if outcome.status == 410:
        await disable(session, endpoint, now, "the endpoint answered 410 Gone")
        return
    failing_for = now - endpoint.failing_since
    if failing_for >= timedelta(seconds=hub.settings.delivery_disable_after_s):
        days = failing_for.total_seconds() / 86_400
        await disable(
            session,
            endpoint,
            now,
            f"every delivery failed for {days:.1f} days (since {iso(endpoint.failing_since)})",
        )


async def disable(session: AsyncSession, endpoint: Endpoint, now: datetime, reason: str) -> None:
    """Disable an endpoint and emit ``endpoint.disabled`` (once per disabling)."""
    if not endpoint.enabled or endpoint.deleted_at is not None:
        return
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:500]
    endpoint.updated_at = now
    session.add(endpoint)
    log.warning("endpoint %s (%s) disabled: %s", endpoint.id, endpoint.url, reason)
    await emit(
        session,
        type="endpoint.disabled",
        channel_id="hub",
        dedupe_key=f"endpoint.disabled:{endpoint.id}:{iso(now)}",
        data={
            "endpoint_id": endpoint.id,
            "url": endpoint.url,
            "description": endpoint.description,
            "reason": reason,
            "failing_since": iso(endpoint.failing_since) if endpoint.failing_since else None,
            "disabled_at": iso(now),
        },
    )
