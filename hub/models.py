"""Database tables (SQLModel). API shapes live in ``hub.schemas``, not here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# The delivery tables are imported for their side effect: ``metadata`` below must hold
# every table, for Alembic (hub/migrations/env.py) and the tests.
import hub.delivery.models  # noqa: F401
from hub.broadcast_models import Broadcast as Broadcast  # re-exported: broadcasts
from hub.broadcast_models import BroadcastRecipient as BroadcastRecipient
from hub.campaign_models import Campaign as Campaign  # re-exported: campaigns
from hub.campaign_models import CampaignEvent as CampaignEvent
from hub.campaign_models import CampaignFire as CampaignFire
from hub.columns import UTCDateTime as UTCDateTime  # re-exported: migration 0001 names it
from hub.columns import json_field, ts_field
from hub.columns import utcnow as utcnow  # re-exported: the services import it from here
from hub.concat_models import ConcatGroup as ConcatGroup  # re-exported: long SMS
from hub.concat_models import ConcatPart as ConcatPart
from hub.pacing_models import SimPacing as SimPacing  # re-exported: send pacing
from hub.secret_models import FlowSecret as FlowSecret  # re-exported: flow secrets


class Channel(SQLModel, table=True):
    """A configured gateway account (one connector + its settings)."""

    __tablename__ = "channels"

    id: str = Field(primary_key=True, max_length=40)
    connector: str = Field(max_length=64)
    name: str = Field(max_length=200)
    #: Non-secret config fields, as JSON.
    config: dict[str, Any] = json_field(dict)
    #: Secret config fields, Fernet-encrypted JSON.
    secrets_enc: str | None = Field(default=None)
    webhook_secret_enc: str | None = Field(default=None)
    #: "signature" (the connector's scheme) or "token" (an unguessable token in the URL).
    auth_mode: str = Field(default="signature", max_length=16)
    url_token_enc: str | None = Field(default=None)
    #: The channel's own number when known (simulator loop-back, Twilio "From").
    phone_number: str | None = Field(default=None, max_length=32, index=True)
    enabled: bool = Field(default=True)
    #: Deleted channels keep their history; they answer 404 and are hidden from lists.
    deleted_at: datetime | None = ts_field(nullable=True)
    #: Round-robin position over the channel's devices.
    rr_cursor: int = Field(default=0)
    #: IANA timezone of the channel (daily caps, quiet hours of contacts without one).
    timezone: str | None = Field(default=None, max_length=64)
    #: Default quiet hours of its messages, ``{"start": "21:00", "end": "08:00"}``.
    quiet_hours: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class Device(SQLModel, table=True):
    """A phone behind a gateway channel (Android gateways), with its SIM slots."""

    __tablename__ = "devices"
    __table_args__ = (sa.UniqueConstraint("channel_id", "external_id"),)

    id: str = Field(primary_key=True, max_length=40)
    channel_id: str = Field(foreign_key="channels.id", index=True, max_length=40)
    #: The provider's id for this phone.
    external_id: str = Field(max_length=200)
    name: str = Field(default="", max_length=200)
    #: 0-based SIM slots seen or configured.
    sim_slots: list[int] = json_field(list)
    #: SMS parts a minute for each of its SIMs; None = the hub default (a SIM's own
    #: ``sim_pacing.rate_per_min`` comes first).
    rate_limit_per_min: int | None = Field(default=None)
    last_seen_at: datetime | None = ts_field(nullable=True)
    #: When the hub announced ``device.offline`` (nothing heard for
    #: SMSHUB_DEVICE_OFFLINE_AFTER_S); None while it counts as online (hub.services.devices).
    offline_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()


class Contact(SQLModel, table=True):
    """Someone the hub exchanges SMS with, keyed by E.164 phone number."""

    __tablename__ = "contacts"

    id: str = Field(primary_key=True, max_length=40)
    phone: str = Field(unique=True, max_length=32)
    name: str = Field(default="", max_length=200)
    opted_out: bool = Field(default=False)
    opted_out_at: datetime | None = ts_field(nullable=True)
    #: Blocked by an operator: nothing is sent to it, its inbound SMS start no flow.
    blocked: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    blocked_at: datetime | None = ts_field(nullable=True)
    tags: list[str] = json_field(list)
    fields: dict[str, Any] = json_field(dict)
    #: Preferred language (a BCP 47 tag such as "en" or "pt-BR"); None = unknown.
    language: str | None = Field(default=None, max_length=35)
    #: IANA time zone ("Europe/Paris"); None = the channel's (quiet hours use it).
    timezone: str | None = Field(default=None, max_length=64)
    #: Deleted contacts keep an anonymised row (phone and opt-out only) for the message
    #: history and the opt-out list; they are hidden from lists (hub.services.contacts).
    deleted_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class Message(SQLModel, table=True):
    """One SMS, inbound or outbound, with its current status."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.Index("ix_messages_provider", "channel_id", "provider_message_id"),
        sa.Index("ix_messages_contact_channel", "contact_id", "channel_id", "direction", "id"),
        sa.Index("ix_messages_device_sent", "device_id", "handed_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    direction: str = Field(max_length=8)  # inbound / outbound
    channel_id: str = Field(foreign_key="channels.id", max_length=40)
    device_id: str | None = Field(default=None, foreign_key="devices.id", max_length=40)
    sim_slot: int | None = Field(default=None)
    contact_id: str = Field(foreign_key="contacts.id", max_length=40)
    from_number: str | None = Field(default=None, max_length=32)
    to_number: str | None = Field(default=None, max_length=32)
    body: str = Field(default="")
    #: When data retention cleared ``body`` (hub.services.retention); None while it is kept.
    body_pruned_at: datetime | None = ts_field(nullable=True)
    segments: int = Field(default=1)
    encoding: str = Field(default="GSM-7", max_length=8)
    status: str = Field(max_length=16, index=True)
    provider_message_id: str | None = Field(default=None, max_length=200)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)
    #: Who asked for it: api / flow / system (opt-out confirmations) / ui.
    source: str = Field(default="api", max_length=16)
    #: Outbound system replies (STOP/HELP confirmations) bypass the opt-out check.
    bypass_opt_out: bool = Field(default=False)
    error: str | None = Field(default=None)
    attempts: int = Field(default=0)
    #: When the hub handed it to the provider (rate limiting counts these).
    handed_at: datetime | None = ts_field(nullable=True)
    #: Scheduled messages: when to send (status ``scheduled`` until then).
    send_at: datetime | None = ts_field(nullable=True)
    #: The message's quiet hours (the request's, else the channel's), ``{"start", "end"}``.
    quiet_hours: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    #: Why a queued message is not out yet (capacity, quiet hours) and when it tries again.
    waiting_reason: str | None = Field(default=None)
    next_attempt_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class MessageStatusChange(SQLModel, table=True):
    """The status history of a message: one row per forward move."""

    __tablename__ = "message_status_changes"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(foreign_key="messages.id", index=True, max_length=40)
    status: str = Field(max_length=16)
    provider_status: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None)
    event_id: str | None = Field(default=None, max_length=40)
    at: datetime = ts_field()


class Event(SQLModel, table=True):
    """A normalized event as received (or raised by the hub); unique per channel + dedupe key."""

    __tablename__ = "events"
    __table_args__ = (sa.UniqueConstraint("channel_id", "dedupe_key", name="uq_events_dedupe"),)

    id: str = Field(primary_key=True, max_length=40)
    channel_id: str = Field(max_length=40, index=True)
    type: str = Field(max_length=32)
    dedupe_key: str = Field(max_length=200)
    message_id: str | None = Field(default=None, max_length=40, index=True)
    #: The outbound payload (DESIGN.md event shape) built at ingest.
    payload: dict[str, Any] = json_field(dict)
    created_at: datetime = ts_field()


class Job(SQLModel, table=True):
    """A unit of background work; also the outbox the arq backend sweeps from."""

    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_due", "status", "run_at"),)

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=64)
    args: dict[str, Any] = json_field(dict)
    #: pending / running / dead
    status: str = Field(default="pending", max_length=16)
    run_at: datetime = ts_field()
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=10)
    lease_until: datetime | None = ts_field(nullable=True)
    locked_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None)
    #: Unique key so a logical job is queued once (e.g. "send:msg_…").
    key: str | None = Field(default=None, unique=True, max_length=200)
    #: When the arq backend pushed it to Redis (None = not yet; the sweeper re-pushes).
    enqueued_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()


class ApiKey(SQLModel, table=True):
    """An API key; only its hash is stored."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = ts_field()
    last_used_at: datetime | None = ts_field(nullable=True)
    revoked_at: datetime | None = ts_field(nullable=True)


metadata = SQLModel.metadata


class Flow(SQLModel, table=True):
    """A flow: its editable draft and a pointer to the published version."""

    __tablename__ = "flows"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    #: The working copy the editor saves (DESIGN.md flow JSON); may have errors.
    draft: dict[str, Any] = json_field(dict)
    #: The version new runs use; None until first published.
    published_version: int | None = Field(default=None)
    #: Highest version number created so far.
    latest_version: int = Field(default=0)
    #: Paused flows keep their version but start no new runs.
    enabled: bool = Field(default=True)
    #: Secret token of the flow's trigger.http URL, encrypted.
    http_token_enc: str | None = Field(default=None)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    deleted_at: datetime | None = ts_field(nullable=True)


class FlowVersion(SQLModel, table=True):
    """An immutable published version of a flow; runs are pinned to one."""

    __tablename__ = "flow_versions"
    __table_args__ = (sa.UniqueConstraint("flow_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str = Field(foreign_key="flows.id", index=True, max_length=40)
    version: int
    definition: dict[str, Any] = json_field(dict)
    note: str = Field(default="", max_length=500)
    created_at: datetime = ts_field()


class FlowRun(SQLModel, table=True):
    """One run of one flow version (the engine's Run record, plus indexed columns)."""

    __tablename__ = "runs"
    __table_args__ = (
        sa.Index("ix_runs_flow", "flow_id", "id"),
        sa.Index("ix_runs_wait_reply", "wait_phone", "wait_channel_id", "status"),
    )

    id: str = Field(primary_key=True, max_length=80)
    flow_id: str = Field(max_length=40)
    flow_version: int
    status: str = Field(max_length=16, index=True)
    #: Compare-and-swap counter (see flows.ports.RunStore).
    revision: int = Field(default=0)
    # No length limits on these: a flow's templates can put any text here.
    contact_phone: str | None = Field(default=None, index=True)
    wait_phone: str | None = Field(default=None)
    wait_channel_id: str | None = Field(default=None)
    wait_until: datetime | None = ts_field(nullable=True, index=True)
    #: The engine's whole Run record (flows.runs.Run.to_dict()).
    doc: dict[str, Any] = json_field(dict)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    finished_at: datetime | None = ts_field(nullable=True)


class FlowStep(SQLModel, table=True):
    """One attempt of one node in a run (the engine's Step record)."""

    __tablename__ = "run_steps"

    run_id: str = Field(foreign_key="runs.id", primary_key=True, max_length=80)
    seq: int = Field(primary_key=True)
    node_id: str = Field()
    status: str = Field(max_length=16)
    doc: dict[str, Any] = json_field(dict)
    started_at: datetime = ts_field()
    finished_at: datetime | None = ts_field(nullable=True)


class User(SQLModel, table=True):
    """Someone who signs in to the browser UI; only an argon2 hash of the password is kept."""

    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=40)
    #: Lower-cased; the sign-in name.
    email: str = Field(unique=True, max_length=254)
    password_hash: str = Field(max_length=200)
    created_at: datetime = ts_field()
    last_login_at: datetime | None = ts_field(nullable=True)


class UserSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the table its SHA-256."""

    __tablename__ = "user_sessions"

    #: SHA-256 of the cookie's token (a stolen database does not yield live cookies).
    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    #: The synchronizer token every unsafe request of this session must echo.
    csrf_token: str = Field(max_length=64)
    user_agent: str = Field(default="", max_length=300)
    ip: str = Field(default="", max_length=64)
    created_at: datetime = ts_field()
    last_seen_at: datetime = ts_field()
    expires_at: datetime = ts_field(index=True)


class HubMeta(SQLModel, table=True):
    """Facts about the installation every process checks (the secret key's check value)."""

    __tablename__ = "hub_meta"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=500)
    updated_at: datetime = ts_field()


class LoginFailure(SQLModel, table=True):
    """A failed sign-in, kept a minute: the throttle every process shares (no Redis)."""

    __tablename__ = "login_failures"

    id: int | None = Field(default=None, primary_key=True)
    #: SHA-256 of the throttle key (address + e-mail): no e-mail addresses at rest.
    key: str = Field(index=True, max_length=64)
    at: datetime = ts_field(index=True)


class EditorTestRun(SQLModel, table=True):
    """A flow editor test run: the tested draft and what the tester did, replayed on each
    request (any process can answer it)."""

    __tablename__ = "ui_test_runs"

    id: str = Field(primary_key=True, max_length=40)
    #: The draft document, the start time and the inputs so far (see ``ui.testrun``).
    doc: dict[str, Any] = json_field(dict)
    used_at: datetime = ts_field(index=True)


# --- Issue 11, part A: groups of contacts and CSV imports -----------------------------


class Group(SQLModel, table=True):
    """A named list of contacts (broadcasts send to groups)."""

    __tablename__ = "groups"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(unique=True, max_length=200)
    description: str = Field(default="", max_length=1000)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class GroupMember(SQLModel, table=True):
    """One contact in one group."""

    __tablename__ = "group_members"
    __table_args__ = (sa.Index("ix_group_members_contact", "contact_id"),)

    group_id: str = Field(foreign_key="groups.id", primary_key=True, max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", primary_key=True, max_length=40)
    added_at: datetime = ts_field()


class ContactImport(SQLModel, table=True):
    """A CSV import and its progress (the UI polls it); the report once finished."""

    __tablename__ = "contact_imports"

    id: str = Field(primary_key=True, max_length=40)
    #: running / completed / failed
    status: str = Field(default="running", max_length=16)
    filename: str = Field(default="", max_length=200)
    total_rows: int = Field(default=0)
    processed_rows: int = Field(default=0)
    created: int = Field(default=0)
    updated: int = Field(default=0)
    unchanged: int = Field(default=0)
    #: [{row, phone, reason}], row numbers as in the file (the header is row 1).
    refused: list[dict[str, Any]] = json_field(list)
    error: str | None = Field(default=None)
    created_at: datetime = ts_field()
    finished_at: datetime | None = ts_field(nullable=True)
