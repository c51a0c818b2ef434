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

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.columns import utcnow
from hub.context import Hub
from hub.delivery import presets
from hub.delivery.endpoints import current_secrets, extra_headers
from hub.delivery.models import Delivery, DeliveryAttempt, Endpoint
from hub.delivery.outbound import USER_AGENT, RequestOutcome, clean_text, perform
from hub.delivery.signing import sign_headers
from hub.event_data import endpoint_disabled, iso
from hub.services.events import emit_in_session

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
    #: The delivery's attempts in this generation so far, and its limit.
    generation_attempts: int
    max_attempts: int
    #: The endpoint's failure record when the attempt started.
    failing_since: datetime | None

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
        generation_attempts=delivery.generation_attempts,
        max_attempts=delivery.max_attempts,
        failing_since=endpoint.failing_since,
    )


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
        delay, disabled = await _record(hub, session, plan, outcome)
    if disabled:
        hub.queue.notify()  # the endpoint.disabled event waits to be dispatched
    return delay


async def _record(
    hub: Hub, session: AsyncSession, plan: Plan, outcome: RequestOutcome
) -> tuple[float | None, bool]:
    # Plain conditional UPDATEs rather than load-modify-flush: on SQLite every statement
    # is a round trip while the single write lock is held, and this runs per attempt.
    now = utcnow()
    error = describe(outcome)
    endpoint_enabled = True
    if not plan.test:
        endpoint_enabled = await _track_health(hub, session, plan, outcome, now)
    status, delay = _next_state(hub, plan, outcome, now, endpoint_enabled=endpoint_enabled)
    common: dict[str, Any] = {
        "attempts": col(Delivery.attempts) + 1,
        "last_status_code": outcome.status,
        "last_error": error,
        "updated_at": now,
    }
    number = await _advance(session, plan, common, status, delay, now)
    if number is None:
        # Cancelled or replaced while on the wire: keep the attempt, change nothing else.
        delay = None
        number = await _count_only(session, plan, common)
        if number is None:
            return None, False
    await session.execute(
        sa.insert(DeliveryAttempt).values(
            delivery_id=plan.delivery_id,
            number=number,
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
    return delay, not endpoint_enabled


async def _advance(
    session: AsyncSession,
    plan: Plan,
    common: dict[str, Any],
    status: str,
    delay: float | None,
    now: datetime,
) -> int | None:
    """Move the delivery to its next state if it is still this plan's pending generation;
    its attempt count after, or None when it was not."""
    stmt = (
        sa.update(Delivery)
        .where(
            col(Delivery.id) == plan.delivery_id,
            col(Delivery.generation) == plan.generation,
            col(Delivery.status) == "pending",
        )
        .values(
            **common,
            generation_attempts=col(Delivery.generation_attempts) + 1,
            status=status,
            next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None,
            finished_at=now if status != "pending" else None,
        )
        .returning(col(Delivery.attempts))
    )
    number: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return number


async def _count_only(session: AsyncSession, plan: Plan, common: dict[str, Any]) -> int | None:
    """Count the attempt on a delivery that moved on; its attempt count, None if gone."""
    stmt = (
        sa.update(Delivery)
        .where(col(Delivery.id) == plan.delivery_id)
        .values(**common)
        .returning(col(Delivery.attempts))
    )
    number: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return number


def _next_state(
    hub: Hub, plan: Plan, outcome: RequestOutcome, now: datetime, *, endpoint_enabled: bool
) -> tuple[str, float | None]:
    """The delivery's status after this attempt, and the delay before the next one."""
    if outcome.ok:
        return "succeeded", None
    if outcome.status == 410 or not endpoint_enabled:
        return "failed", None
    done = plan.generation_attempts + 1
    if done >= plan.max_attempts:
        return "failed", None
    delay = scheduled_delay(hub.settings.retry_schedule, done)
    wait = retry_after_s(outcome, now)
    return "pending", max(delay, wait) if wait is not None else delay


async def _track_health(
    hub: Hub, session: AsyncSession, plan: Plan, outcome: RequestOutcome, now: datetime
) -> bool:
    """A success clears the failure record; 410 or days of failures disable. Enabled after?"""
    endpoints = Endpoint.__table__  # type: ignore[attr-defined]
    if outcome.ok:
        if plan.failing_since is not None:
            await session.execute(
                sa.update(endpoints)
                .where(endpoints.c.id == plan.endpoint_id, endpoints.c.failing_since.is_not(None))
                .values(failing_since=None)
            )
        return True
    row = (
        await session.execute(
            sa.update(endpoints)
            .where(endpoints.c.id == plan.endpoint_id)
            .values(failing_since=sa.func.coalesce(endpoints.c.failing_since, now))
            .returning(endpoints.c.failing_since, endpoints.c.enabled)
        )
    ).one_or_none()
    if row is None or not row.enabled:
        return False
    if outcome.status == 410:
        return not await disable(session, plan.endpoint_id, now, "the endpoint answered 410 Gone")
    failing_since: datetime = row.failing_since
    failing_for = now - failing_since
    if failing_for < timedelta(seconds=hub.settings.delivery_disable_after_s):
        return True
    days = failing_for.total_seconds() / 86_400
    reason = f"every delivery failed for {days:.1f} days (since {iso(failing_since)})"
    return not await disable(session, plan.endpoint_id, now, reason)


async def disable(session: AsyncSession, endpoint_id: str, now: datetime, reason: str) -> bool:
    """Disable an endpoint and emit ``endpoint.disabled``; False if it was not enabled."""
    endpoint = await session.get(Endpoint, endpoint_id)
    if endpoint is None or not endpoint.enabled or endpoint.deleted_at is not None:
        return False
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:500]
    endpoint.updated_at = now
    session.add(endpoint)
    log.warning("endpoint %s (%s) disabled: %s", endpoint.id, endpoint.url, reason)
    await emit_in_session(
        session,
        type="endpoint.disabled",
        channel_id="hub",
        dedupe_key=f"endpoint.disabled:{endpoint.id}:{iso(now)}",
        data=endpoint_disabled(
            endpoint_id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            reason=reason,
            failing_since=endpoint.failing_since,
            disabled_at=now,
        ),
    )
    return True
