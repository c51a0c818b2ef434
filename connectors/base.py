"""What every connector is made of: a declarative spec, normalized events, and small ports.

A connector never touches the hub's database or HTTP server. The hub hands it a parsed
:class:`WebhookRequest` (ingress) or a :class:`SendRequest` plus an :class:`HttpClient`
(sending) and gets plain values back.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: ``device.heartbeat`` is a gateway's sign of life (SMS Gateway for Android's
#: ``system:ping``): the hub marks the device seen and stores no event or message for it.
EventType = Literal["sms.received", "sms.sent", "sms.delivered", "sms.failed", "device.heartbeat"]
ConnectorKind = Literal["gateway", "destination"]
#: Which of a channel's webhook URLs a request came in on: ``/webhooks/{id}`` is "",
#: ``/webhooks/{id}/incoming`` is "incoming", ``/webhooks/{id}/status`` is "status".
WebhookPath = Literal["", "incoming", "status"]


class ConnectorError(Exception):
    """Base of the errors a connector raises on purpose."""


class SignatureError(ConnectorError):
    """The request is not authentic: bad or missing signature, or a stale timestamp (401)."""


class PayloadError(ConnectorError):
    """The request is authentic but its body cannot be understood (400); says what is wrong."""


class GatewaySetupError(ConnectorError):
    """Setting the gateway up through its API failed; the message says what to fix.

    ``reason``: ``unreachable`` (no connection or no answer), ``unauthorized`` (the gateway
    refused the credentials), ``refused`` (any other error answer)."""

    def __init__(
        self,
        message: str,
        *,
        reason: Literal["unreachable", "unauthorized", "refused"],
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status_code = status_code


class SendError(ConnectorError):
    """The provider refused or could not take a message.

    ``retryable`` tells the hub whether trying again later may succeed (network error,
    5xx, 429) or not (4xx validation, bad credentials).
    """

    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


class ConnectorConfig(BaseModel):
    """Base for connector configs; secret fields carry ``json_schema_extra={"secret": True}``."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """Names of the fields the hub must store encrypted and never echo back."""
        return frozenset(
            name
            for name, f in cls.model_fields.items()
            if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("secret")
        )


class HttpGatewayConfig(ConnectorConfig):
    """Base for configs of gateways reached over HTTP: where the API is and how long to wait."""

    #: Subclasses redeclare this with the provider's public API as default.
    base_url: str = Field(description="Root URL of the provider's API (no trailing slash).")
    timeout_s: float = Field(
        15.0, gt=0, le=120, description="Seconds to wait for the provider's answer."
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query string or fragment")
        return value.strip().rstrip("/")


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound HTTP request as the connector sees it."""

    method: str
    #: The URL the gateway called (built from the hub's public URL, not the socket).
    url: str
    path: WebhookPath
    #: Header names lower-cased.
    headers: Mapping[str, str]
    body: bytes
    #: Query parameters (first value of each).
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """Header value by case-insensitive name."""
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        """Media type without parameters, lower-cased ("" when absent)."""
        raw = self.headers.get("content-type", "")
        return raw.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class MessagePart:
    """Which part of a long SMS an inbound event is, when the gateway hands over the parts
    of a concatenated SMS one by one (Vonage). The hub joins the parts of one ``ref`` from
    one sender into one message; a connector only reports what the gateway said."""

    #: The gateway's reference shared by every part of the message (Vonage's concat-ref).
    ref: str
    #: How many parts the message has (at least 2).
    total: int
    #: This part's position, 1 to ``total``.
    number: int


@dataclass(frozen=True)
class InboundEvent:
    """One normalized event parsed out of a gateway webhook."""

    type: EventType
    #: Unique per channel for this event; a gateway retry carries the same key.
    dedupe_key: str
    #: The provider's id of the SMS this event is about (inbound or outbound).
    provider_message_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    body: str | None = None
    #: The provider's device id (Android gateways), if any.
    device_id: str | None = None
    #: 0-based SIM slot (SIM1 = 0), if known.
    sim_slot: int | None = None
    occurred_at: datetime | None = None
    #: Provider's error code / reason for ``sms.failed``.
    error: str | None = None
    #: Number of parts, when the provider tells.
    segments: int | None = None
    #: The provider's own status word ("undelivered", "RESULT_ERROR_…"), for history.
    provider_status: str | None = None
    #: For delivery reports: the provider credited the send back (MySMSGate's
    #: ``refunded``); None when it says nothing about refunds.
    refunded: bool | None = None
    #: For ``sms.received``: the part of a long SMS this is (None: a whole SMS).
    part: MessagePart | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The event as JSON (job arguments), without ``raw``."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw"}
        data["occurred_at"] = self.occurred_at.isoformat() if self.occurred_at else None
        data["part"] = asdict(self.part) if self.part else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InboundEvent:
        """The inverse of :meth:`to_json`."""
        values = {k: v for k, v in data.items() if k != "raw"}
        if values.get("occurred_at"):
            values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        if values.get("part"):
            values["part"] = MessagePart(**values["part"])
        return cls(**values)


@dataclass(frozen=True)
class WebhookResponse:
    """What the hub answers to the gateway after the events are stored."""

    status_code: int = 200
    media_type: str = "application/json"
    body: bytes = b'{"ok":true}'


@dataclass(frozen=True)
class SendRequest:
    """One SMS to hand to a provider."""

    #: The hub's message id; connectors that support it pass it on as idempotency key.
    message_id: str
    to: str
    text: str
    from_number: str | None = None
    #: The provider's device id (not the hub's), if routing picked one.
    device_id: str | None = None
    sim_slot: int | None = None
    #: URL the provider should post delivery reports to, when it takes one per message.
    status_callback_url: str | None = None


@dataclass(frozen=True)
class ScheduledEvent:
    """An event the hub should ingest later on a channel, as if the gateway had posted it.

    The simulator uses this for its delivery reports and loop-back inbound SMS.
    ``to_channel_number`` set means: deliver to the simulator channel owning that number
    instead of the sending channel.
    """

    delay_s: float
    event: InboundEvent
    to_channel_number: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What the provider answered."""

    provider_message_id: str
    #: Status right after the call: "queued" (accepted, not yet sent) or "sent".
    status: Literal["queued", "sent"] = "queued"
    followups: tuple[ScheduledEvent, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        import json

        return json.loads(self.body)


class HttpClient(Protocol):
    """The outbound HTTP port the hub implements (aiohttp, pooled)."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | bytes | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout: float = 15.0,
    ) -> HttpResponse:
        """Send one request; raise ``OSError``/``TimeoutError`` on transport failure."""
        ...


@dataclass(frozen=True)
class WebhookRegistration:
    """One webhook registered on a gateway through its API: its id there, event and URL."""

    id: str
    event: str
    url: str


@dataclass(frozen=True)
class WebhookSetup:
    """What :meth:`CanRegisterWebhooks.register_webhooks` left on the gateway."""

    #: The hub's registrations as the gateway lists them afterwards.
    registered: tuple[WebhookRegistration, ...]
    #: Ids of older registrations to the same URL that were deleted (they would duplicate).
    removed: tuple[str, ...] = ()
    #: The gateway API's URL that was called.
    api_url: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do."""

    receive: bool = True
    send: bool = True
    delivery_reports: bool = True
    signatures: bool = True
    #: Resending the same ``SendRequest.message_id`` never makes a second SMS.
    idempotent_send: bool = False
    #: Phones with devices and SIM slots (Android gateways).
    devices: bool = False
    #: Its devices report a heartbeat regularly (``device.heartbeat``, when set up to), so a
    #: device silent for long is offline; without it silence only means a quiet phone.
    heartbeats: bool = False


# --- Capability protocols: the hub sorts connectors with isinstance() on these. -----------


@runtime_checkable
class CanReceive(Protocol):
    def verify(
        self, config: Any, secret: str | None, request: WebhookRequest, now: datetime
    ) -> None: ...

    def parse(self, config: Any, request: WebhookRequest) -> list[InboundEvent]: ...


@runtime_checkable
class CanSend(Protocol):
    async def send(self, config: Any, message: SendRequest, http: HttpClient) -> SendResult: ...


@runtime_checkable
class CanRegisterWebhooks(Protocol):
    """Can register the hub's webhook URL on the gateway through the gateway's own API."""

    async def register_webhooks(
        self, config: Any, http: HttpClient, *, url: str, id_prefix: str
    ) -> WebhookSetup:
        """Register ``url`` for every event the hub reads, under ids starting with
        ``id_prefix`` (so running it again replaces them); raise GatewaySetupError."""
        ...


@runtime_checkable
class CanSign(Protocol):
    """Can produce the signature its gateway would send (the CLI's fake webhooks, tests)."""

    def sign(
        self, config: Any, secret: str | None, request: WebhookRequest, now: datetime
    ) -> WebhookRequest: ...


class Connector:
    """Base class: subclasses set the spec as class attributes and implement the behaviour."""

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[ConnectorKind] = "gateway"
    config_model: ClassVar[type[ConnectorConfig]]
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: One line for the UI's connector picker.
    description: ClassVar[str] = ""
    #: Accepted request media types (415 otherwise).
    content_types: ClassVar[frozenset[str]] = frozenset({"application/json"})

    def parse_config(self, raw: Mapping[str, Any]) -> ConnectorConfig:
        """Validate a channel's config dict (raises pydantic ``ValidationError``)."""
        return self.config_model.model_validate(dict(raw))

    def signing_secret(self, config: Any, webhook_secret: str | None) -> str | None:
        """The key inbound signatures are checked with; by default the channel's secret."""
        return webhook_secret

    def requires_url_token(self, config: Any) -> bool:
        """True when this config cannot authenticate requests by signature at all."""
        return not self.capabilities.signatures

    def webhook_response(
        self, request: WebhookRequest, events: list[InboundEvent]
    ) -> WebhookResponse:
        """The answer the gateway expects once its events are stored."""
        return WebhookResponse()


def constant_time_equals(a: str, b: str) -> bool:
    """Compare two secrets without leaking their common prefix length through timing."""
    return hmac.compare_digest(a.encode(), b.encode())
