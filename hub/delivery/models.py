"""Tables of the delivery subsystem: endpoints, deliveries and their attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.columns import json_field, ts_field


class Endpoint(SQLModel, table=True):
    """A URL that subscribes to public events (an API endpoint or a REST Hook)."""

    __tablename__ = "endpoints"

    id: str = Field(primary_key=True, max_length=40)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    #: Subscribed event types; ["*"] is every type.
    event_types: list[str] = json_field(list)
    #: generic / zapier / make / n8n (hub.delivery.presets).
    preset: str = Field(default="generic", max_length=16)
    #: "api" (created under /endpoints) or "hook" (a REST Hook subscription under /hooks).
    kind: str = Field(default="api", max_length=8)
    enabled: bool = Field(default=True)
    #: The ``whsec_`` signing secret, encrypted with the hub's key.
    secret_enc: str
    #: The secret before the last rotation; it signs too until ``previous_secret_until``.
    previous_secret_enc: str | None = Field(default=None)
    previous_secret_until: datetime | None = ts_field(nullable=True)
    #: Extra request headers (e.g. n8n header auth), encrypted JSON.
    headers_enc: str | None = Field(default=None)
    #: Requests per second this endpoint accepts; None = no limit beyond concurrency.
    rate_limit_per_s: int | None = Field(default=None)
    #: Start of the current run of failures (None after a success); 5 days of it disables.
    failing_since: datetime | None = ts_field(nullable=True)
    disabled_at: datetime | None = ts_field(nullable=True)
    disabled_reason: str | None = Field(default=None, max_length=500)
    #: Deleted endpoints keep their delivery history; they answer 404 and get nothing.
    deleted_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class Delivery(SQLModel, table=True):
    """One event for one endpoint: its state and retry schedule (attempts are rows below)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # One delivery per endpoint and event: a re-dispatched event is a no-op.
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_deliveries_endpoint_event"),
        sa.Index("ix_deliveries_endpoint_status", "endpoint_id", "status", "created_at"),
        sa.Index("ix_deliveries_status", "status", "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    endpoint_id: str = Field(foreign_key="endpoints.id", max_length=40)
    #: The event's id; it is also the ``webhook-id`` header, so it never changes on retries.
    event_id: str = Field(max_length=40, index=True)
    event_type: str = Field(max_length=32)
    #: pending / succeeded / failed (the dead-letter list) / cancelled (endpoint deleted).
    status: str = Field(default="pending", max_length=16)
    #: 0 for the scheduled run; each manual retry or replay adds one. A job carries the
    #: generation it was queued for, so a job left over from an earlier one does nothing.
    generation: int = Field(default=0)
    #: Attempts in this generation, and how many it may make (the schedule, or 1 on replay).
    generation_attempts: int = Field(default=0)
    max_attempts: int = Field(default=1)
    #: Attempts over all generations.
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = ts_field(nullable=True)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None)
    #: The body of a test delivery (sample events are not stored as events); else None.
    payload: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    test: bool = Field(default=False)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    finished_at: datetime | None = ts_field(nullable=True)


class DeliveryAttempt(SQLModel, table=True):
    """One HTTP request of a delivery and what came back."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="deliveries.id", index=True, max_length=40)
    #: 1-based over all generations.
    number: int
    generation: int = Field(default=0)
    #: schedule / retry / replay / test — what started it.
    trigger: str = Field(default="schedule", max_length=16)
    at: datetime = ts_field()
    duration_ms: int = Field(default=0)
    status_code: int | None = Field(default=None)
    #: The first 64 KiB of the response body at most (decoded as UTF-8, bad bytes replaced).
    response_body: str | None = Field(default=None)
    response_truncated: bool = Field(default=False)
    #: Timeout, refused connection, SSRF refusal, unfollowed redirect… None on a 2xx.
    error: str | None = Field(default=None)
