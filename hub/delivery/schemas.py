"""API shapes of endpoints, deliveries and REST Hooks (request and response bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hub.delivery.presets import Preset
from hub.schemas import In, Patch, UtcTime

#: Longest URL accepted.
MAX_URL_CHARS = 2000


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail at INSERT.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


#: Free text that is stored as it is.
Text = Annotated[str, AfterValidator(_no_nul)]

#: The body an endpoint gets: the Standard Webhooks event, or MySMSGate's webhook bodies.
Format = Literal["standard", "mysmsgate"]
_FORMAT_DESCRIPTION = (
    "standard (the signed event envelope), or mysmsgate: SMS events posted as MySMSGate "
    "posts them, signed in X-Signature too (docs/events.md); the same as preset mysmsgate."
)


def _format_to_preset(fmt: str | None, preset: str | None) -> str | None:
    """The preset a format asks for (``format`` is the API's name for preset mysmsgate)."""
    if fmt == "mysmsgate":
        if preset not in (None, "generic", "mysmsgate"):
            raise ValueError(f"format mysmsgate cannot be combined with preset {preset!r}")
        return "mysmsgate"
    if fmt == "standard" and preset == "mysmsgate":
        raise ValueError("preset mysmsgate is format mysmsgate, not standard")
    return preset


def format_of(preset: str) -> Format:
    """The format an endpoint's preset means."""
    return "mysmsgate" if preset == "mysmsgate" else "standard"


class EndpointIn(In):
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS, description="Where events are POSTed.")
    event_types: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=20,
        description='Event types to receive; ["*"] for all.',
    )
    description: Text = Field(default="", max_length=500)
    enabled: bool = True
    headers: dict[str, str] | None = Field(
        default=None, description="Extra request headers (e.g. n8n header auth); stored encrypted."
    )
    rate_limit_per_s: int | None = Field(
        default=None, ge=1, le=10_000, description="Requests per second at most."
    )
    preset: Preset = Field(
        default="generic", description="generic, zapier, make, n8n (or mysmsgate: see format)."
    )
    # Not a column: it sets the preset (the validator below), so dumps leave it out.
    format: Format | None = Field(default=None, description=_FORMAT_DESCRIPTION, exclude=True)
    secret: str | None = Field(
        default=None,
        min_length=10,
        max_length=200,
        description="A whsec_ secret to use; generated when not given.",
    )

    @model_validator(mode="after")
    def _format(self) -> EndpointIn:
        self.preset = _format_to_preset(self.format, self.preset) or "generic"  # type: ignore[assignment]
        return self


class EndpointPatch(Patch):
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_CHARS)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=20)
    description: Text | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    headers: dict[str, str] | None = None
    rate_limit_per_s: int | None = Field(default=None, ge=1, le=10_000)
    preset: Preset | None = None
    # Not a column: it sets the preset (the validator below), so dumps leave it out.
    format: Format | None = Field(default=None, description=_FORMAT_DESCRIPTION, exclude=True)

    @model_validator(mode="after")
    def _format(self) -> EndpointPatch:
        preset = _format_to_preset(self.format, self.preset)
        if preset != self.preset:
            self.preset = preset  # type: ignore[assignment]
        return self


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    preset: str
    format: Format = Field(description="standard, or mysmsgate (MySMSGate's webhook bodies).")
    kind: str = Field(description='"api", or "hook" for a REST Hook subscription.')
    enabled: bool
    headers: dict[str, str] = Field(description="Header names; values are shown as '********'.")
    rate_limit_per_s: int | None
    secret: str | None = Field(
        default=None, description="The whsec_ signing secret; shown on create, rotate and GET."
    )
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="Until then the previous secret signs too (rotation)."
    )
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class RotateIn(In):
    overlap_s: int | None = Field(
        default=None,
        ge=0,
        le=7 * 86400,
        description="Seconds the old secret keeps signing (default: the hub's setting, 24 h).",
    )


class TestIn(In):
    event_type: str | None = Field(
        default=None,
        max_length=32,
        description="Sample event type (default: the first subscribed).",
    )


class ReplayIn(In):
    since: UtcTime = Field(description="Re-send every failed delivery created at or after this.")


class ReplayOut(BaseModel):
    replayed: int = Field(description="Deliveries queued again (each gets one new attempt).")


class AttemptOut(BaseModel):
    number: int
    generation: int
    trigger: str
    at: datetime
    duration_ms: int
    status_code: int | None
    response_body: str | None
    response_truncated: bool
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: str
    event_id: str = Field(description="Also the webhook-id header.")
    event_type: str
    status: str = Field(description="pending, succeeded, failed (dead letter) or cancelled.")
    attempt_count: int
    generation: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    test: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    attempts: list[AttemptOut] | None = Field(
        default=None, description="On the delivery's own GET."
    )


class HookIn(BaseModel):
    """A REST Hook subscription; unknown fields (Zapier sends ``subscription_url``) are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    target_url: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    event: str = Field(min_length=1, max_length=32, description='An event type, or "*".')


class HookOut(BaseModel):
    id: str
    target_url: str
    event: str
    preset: str
    secret: str = Field(
        description="The whsec_ secret signing its deliveries (Standard Webhooks), to verify them."
    )
