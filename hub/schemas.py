"""API shapes (request and response bodies), separate from the tables."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlmodel import SQLModel

from hub.columns import as_utc

T = TypeVar("T")
Shape = TypeVar("Shape", bound=BaseModel)


def has_nul(value: Any) -> bool:
    """True when a NUL character hides anywhere in a JSON-like value (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class In(BaseModel):
    """Base of request bodies: unknown fields are an error, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold NUL, and no phone number, name or SMS needs one.
        if has_nul(data):
            raise ValueError("text must not contain NUL (\\x00) characters")
        return data


class Patch(In):
    """Base of PATCH bodies: the fields the client sent are the changes, the rest stays."""

    def changes(self) -> dict[str, Any]:
        """The fields given in the request, by name (an explicit null included)."""
        return self.model_dump(exclude_unset=True)


def _utc(value: datetime) -> datetime:
    # Converted on the way in: an offset that pushes a time past year 1 or 9999 is a 422
    # here rather than an OverflowError when a query binds it.
    try:
        return as_utc(value)
    except OverflowError as exc:
        raise ValueError("the time is out of range once converted to UTC") from exc


#: A time in a request body, as aware UTC (a time without an offset is taken as UTC).
UtcTime = Annotated[datetime, AfterValidator(_utc)]


def view(shape: type[Shape], row: SQLModel, **fields: Any) -> Shape:
    """The API shape of a table row: its columns that ``shape`` has, ``fields`` on top."""
    return shape.model_validate({**row.model_dump(), **fields})


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


class Page(BaseModel, Generic[T]):
    """A page of a list, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = None


# --- sending and messages ----------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give the time with its UTC offset, e.g. 2026-12-24T09:00:00+01:00")
    return _utc(value)


#: A time that must carry its offset (ISO 8601), as aware UTC.
AwareTime = Annotated[datetime, AfterValidator(_aware)]

_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def _zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {value!r} (an IANA name such as Europe/Paris)") from exc
    return value


#: An IANA timezone name.
Zone = Annotated[str, AfterValidator(_zone)]


class QuietHoursIn(In):
    """A daily window, local time, when nothing is sent; may cross midnight (21:00-08:00)."""

    start: str = Field(pattern=_HHMM, description="Start, HH:MM (24 h), e.g. 21:00.")
    end: str = Field(pattern=_HHMM, description="End, HH:MM (24 h), e.g. 08:00.")

    @model_validator(mode="after")
    def _differ(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("quiet_hours.start and quiet_hours.end must differ")
        return self


class SendIn(In):
    to: str = Field(min_length=1, max_length=64, description="Recipient, E.164 or national.")
    message: str = Field(min_length=1, max_length=1600, description="Text of the SMS.")
    channel_id: str | None = Field(default=None, max_length=40)
    device_id: str | None = Field(default=None, max_length=200)
    sim_slot: int | None = Field(default=None, ge=0, le=7, description="0 = SIM1, 1 = SIM2.")
    slot: int | None = Field(
        default=None,
        ge=0,
        le=7,
        description="MySMSGate's name for sim_slot (0 = SIM1, 1 = SIM2), so code written for "
        "its send API works unchanged; 422 when both are given and differ.",
    )
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    send_at: AwareTime | None = Field(
        default=None,
        description="Send later: ISO 8601 with offset, in the future, at most 365 days "
        "ahead. The message is `scheduled` until then.",
    )
    quiet_hours: QuietHoursIn | None = Field(
        default=None,
        description="Hold the message while the contact's local time (else the channel's, "
        "else UTC) is in this window; default: the channel's quiet_hours.",
    )

    @model_validator(mode="after")
    def _one_slot(self) -> SendIn:
        if self.slot is not None:
            if self.sim_slot is not None and self.sim_slot != self.slot:
                raise ValueError("slot and sim_slot name the same SIM: give one, or equal values")
            self.sim_slot = self.slot
        return self


class SendOut(BaseModel):
    id: str
    sms_id: str = Field(description="The same as id (the name MySMSGate's send API answers).")
    status: str = Field(description="queued, or scheduled when send_at was given.")
    duplicate: bool = Field(description="True when the idempotency key matched an earlier send.")


class StatusChangeOut(BaseModel):
    status: str
    at: datetime
    provider_status: str | None = None
    detail: str | None = None


class MessageOut(BaseModel):
    id: str
    direction: Literal["inbound", "outbound"]
    status: str = Field(
        description="scheduled, queued, held (its broadcast is paused), sending, accepted, "
        "sent, then delivered or failed; suppressed (a flow send refused: opt-out, loop "
        "breaker) and cancelled are final too. It only ever moves forward."
    )
    channel_id: str
    device_id: str | None
    sim_slot: int | None
    contact_id: str
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str | None
    body: str = Field(description='The text; "" once data retention cleared it (body_pruned).')
    body_pruned: bool = Field(
        False,
        description="True when data retention (SMSHUB_RETAIN_MESSAGE_BODIES_DAYS) cleared "
        "the text; the rest of the message is kept.",
    )
    body_pruned_at: datetime | None = Field(None, description="When the text was cleared.")
    segments: int
    encoding: str
    provider_message_id: str | None
    source: str
    error: str | None
    send_at: datetime | None = Field(None, description="When a scheduled message goes out.")
    quiet_hours: dict[str, str] | None = Field(None, description="The message's quiet hours.")
    waiting_reason: str | None = Field(
        None,
        description="Why a queued message is not out yet, e.g. 'waiting for capacity until "
        "…' or 'quiet hours until …'.",
    )
    next_attempt_at: datetime | None = Field(None, description="When it tries again.")
    created_at: datetime
    updated_at: datetime
    history: list[StatusChangeOut] | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @model_validator(mode="after")
    def _pruned(self) -> MessageOut:
        self.body_pruned = self.body_pruned_at is not None
        return self


# --- channels, devices, contacts ---------------------------------------------------------


class ChannelIn(In):
    connector: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)
    webhook_secret: str | None = Field(default=None, min_length=8, max_length=500)
    auth_mode: Literal["signature", "token"] | None = None
    phone_number: str | None = Field(default=None, max_length=32)
    enabled: bool = True
    timezone: Zone | None = Field(
        default=None, max_length=64, description="IANA timezone (daily caps, quiet hours)."
    )
    quiet_hours: QuietHoursIn | None = Field(
        default=None, description="Default quiet hours of the channel's messages."
    )


class ChannelPatch(Patch):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    webhook_secret: str | None = Field(default=None, min_length=8, max_length=500)
    auth_mode: Literal["signature", "token"] | None = None
    phone_number: str | None = Field(default=None, max_length=32)
    enabled: bool | None = None
    rotate_url_token: bool = False
    timezone: Zone | None = Field(default=None, max_length=64, description="null = UTC.")
    quiet_hours: QuietHoursIn | None = Field(default=None, description="null = none.")


class WebhookUrls(BaseModel):
    default: str
    incoming: str
    status: str


class ChannelOut(BaseModel):
    id: str
    connector: str
    name: str
    config: dict[str, Any] = Field(description="Secret fields are shown as '********'.")
    auth_mode: str
    phone_number: str | None
    enabled: bool
    timezone: str | None = None
    quiet_hours: dict[str, str] | None = None
    webhook_urls: WebhookUrls
    webhook_secret: str | None = Field(
        default=None, description="Shown on create and on the channel's own page only."
    )
    created_at: datetime
    updated_at: datetime


class WebhookRegistrationOut(BaseModel):
    id: str = Field(description="The registration's id on the gateway (derived from the channel).")
    event: str = Field(description="The gateway's event name, e.g. sms:received.")
    url: str


class GatewayOut(BaseModel):
    connector: str
    mode: str | None = Field(description="local, cloud or private (SMS Gateway for Android).")
    base_url: str
    webhooks_api: str = Field(description="The gateway's webhooks API that was called.")


class ConnectOut(BaseModel):
    registered: list[WebhookRegistrationOut] = Field(
        description="The hub's registrations as the gateway lists them now."
    )
    removed: list[str] = Field(
        description="Ids of older registrations of the same URL, deleted (they would duplicate)."
    )
    gateway: GatewayOut
    signing_key: str | None = Field(
        description="The channel's secret: the app's signing key must be exactly this."
    )
    next_steps: list[str] = Field(description="What to do on the phone to finish.")


class SimOut(BaseModel):
    slot: int
    rate_per_min: int | None = Field(description="Its own rate; null = the default.")
    daily_cap: int | None
    effective_rate_per_min: int
    parts_last_minute: int
    parts_today: int = Field(description="Parts this local day (the channel's timezone).")
    available_at: datetime | None = Field(description="When it can send again; null = now.")


class DeviceOut(BaseModel):
    id: str
    channel_id: str
    external_id: str
    name: str
    sim_slots: list[int]
    rate_limit_per_min: int | None = Field(description="Per SIM; null = the hub default.")
    sims: list[SimOut] = Field(default_factory=list, description="Per-SIM limits and usage.")
    last_seen_at: datetime | None
    offline_at: datetime | None = Field(
        default=None, description="When it was announced offline (device.offline); null = online."
    )
    created_at: datetime


class ContactOut(BaseModel):
    id: str
    phone: str
    name: str
    opted_out: bool
    opted_out_at: datetime | None
    blocked: bool = Field(
        default=False, description="Blocked: nothing is sent to it, its SMS start no flow."
    )
    blocked_at: datetime | None = Field(default=None, description="When it was blocked.")
    tags: list[str]
    fields: dict[str, Any]
    language: str | None = Field(default=None, description="BCP 47 tag, e.g. en or pt-BR.")
    timezone: str | None = Field(default=None, description="IANA time zone, e.g. Europe/Paris.")
    created_at: datetime
    updated_at: datetime


class SimIn(Patch):
    slot: int = Field(ge=0, le=7, description="0 = SIM1, 1 = SIM2.")
    rate_per_min: int | None = Field(
        default=None, ge=1, le=600, description="SMS parts a minute; null = the default."
    )
    daily_cap: int | None = Field(
        default=None, ge=1, le=100_000, description="SMS parts a local day; null = no cap."
    )


class DevicePatch(Patch):
    name: str | None = Field(default=None, max_length=200)
    rate_limit_per_min: int | None = Field(
        default=None,
        ge=1,
        le=600,
        description="SMS parts a minute for each SIM; null = SMSHUB_DEVICE_RATE_LIMIT_PER_MIN.",
    )
    sims: list[SimIn] | None = Field(
        default=None, max_length=8, description="Per-SIM rate_per_min and daily_cap."
    )


class MessagePatch(Patch):
    text: str | None = Field(default=None, min_length=1, max_length=1600)
    send_at: AwareTime | None = Field(default=None, description="ISO 8601 with offset.")


class ContactPatch(Patch):
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=100)
    fields: dict[str, str] | None = None
    language: str | None = Field(
        default=None, max_length=35, description="BCP 47 tag (en, pt-BR); null or '' clears it."
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA time zone; null or '' clears it."
    )
    opted_out: bool | None = Field(
        default=None, description="Set by hand (e.g. a written opt-out); STOP/START set it too."
    )
    blocked: bool | None = Field(
        default=None,
        description="Block (nothing sent, inbound starts no flow) or unblock the contact.",
    )


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    key: str | None = Field(default=None, description="The key itself; shown once, on create.")


class ApiKeyIn(In):
    name: str = Field(min_length=1, max_length=200)


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
