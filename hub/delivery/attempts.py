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
from typing import Any, Protocol

from hub.columns import utcnow
from hub.context import Hub
from hub.delivery import mysmsgate_format, presets
from hub.delivery.endpoints import SecretFields, current_secrets, extra_headers
from hub.delivery.outbound import USER_AGENT, RequestOutcome, clean_text, perform
from hub.delivery.signing import sign_headers
from hub.event_data import endpoint_disabled, iso
from hub.metrics import DELIVERIES
from hub.services.events import emit
from hub.store import Unit, as_datetime, execute, fetch_one, fetch_value

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


class DeliveryFields(Protocol):
    """What a plan reads of a delivery (an ORM row or a store read)."""

    @property
    def id(self) -> str: ...
    @property
    def generation(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def test(self) -> bool: ...
    @property
    def generation_attempts(self) -> int: ...
    @property
    def max_attempts(self) -> int: ...


class EndpointFields(SecretFields, Protocol):
    """What a plan reads of an endpoint."""

    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def preset(self) -> str: ...
    @property
    def rate_limit_per_s(self) -> int | None: ...
    @property
    def failing_since(self) -> datetime | None: ...


def make_plan(
    hub: Hub, delivery: DeliveryFields, endpoint: EndpointFields, payload: dict[str, Any]
) -> Plan:
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
    if plan.preset == mysmsgate_format.FORMAT and plan.secrets:
        headers.update(mysmsgate_format.signature_header(plan.secrets[0], body))
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
    """Store the attempt and its consequences (one unit on the batching writer); the delay
    before the next attempt, if any."""
    delay: float | None = await hub.store.write(record_unit(hub, plan, outcome))
    return delay


def record_unit(hub: Hub, plan: Plan, outcome: RequestOutcome) -> Unit[float | None]:
    """Unit: the attempt row, the delivery's next state and the endpoint's health.

    Plain conditional UPDATEs, no load-modify-flush: this runs once per attempt, inside
    the writer's batch."""
    now = utcnow()
    error = describe(outcome)
    endpoint_enabled = True
    if not plan.test:
        endpoint_enabled = yield from _track_health(hub, plan, outcome, now)
    status, delay = _next_state(hub, plan, outcome, now, endpoint_enabled=endpoint_enabled)
    common = (outcome.status, error, now)
    number = yield from fetch_value(
        "UPDATE deliveries SET attempts = attempts + 1, last_status_code = ?, last_error = ?, "
        "updated_at = ?, generation_attempts = generation_attempts + 1, status = ?, "
        "next_attempt_at = ?, finished_at = ? "
        "WHERE id = ? AND generation = ? AND status = 'pending' RETURNING attempts",
        (
            *common,
            status,
            now + timedelta(seconds=delay) if delay is not None else None,
            now if status != "pending" else None,
            plan.delivery_id,
            plan.generation,
        ),
    )
    # succeeded, retry (pending again), failed (the dead letter), cancelled on the wire
    counted = "retry" if status == "pending" else status
    if number is None:
        # Cancelled or replaced while on the wire: keep the attempt, change nothing else.
        delay, counted = None, "cancelled"
        number = yield from fetch_value(
            "UPDATE deliveries SET attempts = attempts + 1, last_status_code = ?, "
            "last_error = ?, updated_at = ? WHERE id = ? RETURNING attempts",
            (*common, plan.delivery_id),
        )
        if number is None:
            return None
    yield from execute(
        "INSERT INTO delivery_attempts (delivery_id, number, generation, trigger, at, "
        "duration_ms, status_code, response_body, response_truncated, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            plan.delivery_id,
            number,
            plan.generation,
            plan.trigger,
            now - timedelta(milliseconds=outcome.duration_ms),
            outcome.duration_ms,
            outcome.status,
            outcome.body if outcome.status is not None else None,
            outcome.truncated,
            error,
        ),
    )
    DELIVERIES.labels(counted).inc()
    return delay


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


def _track_health(hub: Hub, plan: Plan, outcome: RequestOutcome, now: datetime) -> Unit[bool]:
    """Unit: a success clears the failure record; 410 or days of failures disable. Enabled
    after?"""
    if outcome.ok:
        if plan.failing_since is not None:
            yield from execute(
                "UPDATE endpoints SET failing_since = NULL "
                "WHERE id = ? AND failing_since IS NOT NULL",
                (plan.endpoint_id,),
            )
        return True
    row = yield from fetch_one(
        "UPDATE endpoints SET failing_since = COALESCE(failing_since, ?) WHERE id = ? "
        "RETURNING failing_since, enabled",
        (now, plan.endpoint_id),
    )
    if row is None or not row[1]:
        return False
    if outcome.status == 410:
        disabled = yield from disable(hub, plan.endpoint_id, now, "the endpoint answered 410 Gone")
        return not disabled
    failing_since = as_datetime(row[0]) or now
    failing_for = now - failing_since
    if failing_for < timedelta(seconds=hub.settings.delivery_disable_after_s):
        return True
    days = failing_for.total_seconds() / 86_400
    reason = f"every delivery failed for {days:.1f} days (since {iso(failing_since)})"
    disabled = yield from disable(hub, plan.endpoint_id, now, reason)
    return not disabled


def disable(hub: Hub, endpoint_id: str, now: datetime, reason: str) -> Unit[bool]:
    """Unit: disable an endpoint and emit ``endpoint.disabled``; False if it was not
    enabled. The event reaches the sinks in the same unit (other endpoints may want it)."""
    reason = reason[:500]
    row = yield from fetch_one(
        "UPDATE endpoints SET enabled = ?, disabled_at = ?, disabled_reason = ?, updated_at = ? "
        "WHERE id = ? AND enabled = ? AND deleted_at IS NULL "
        "RETURNING url, description, failing_since",
        (False, now, reason, now, endpoint_id, True),
    )
    if row is None:
        return False
    url, description, failing_since = row
    log.warning("endpoint %s (%s) disabled: %s", endpoint_id, url, reason)
    yield from emit(
        hub,
        type="endpoint.disabled",
        channel_id="hub",
        dedupe_key=f"endpoint.disabled:{endpoint_id}:{iso(now)}",
        data=endpoint_disabled(
            endpoint_id=endpoint_id,
            url=url,
            description=description,
            reason=reason,
            failing_since=as_datetime(failing_since),
            disabled_at=now,
        ),
        at=now,
    )
    return True
