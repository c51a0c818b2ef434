"""Twilio Programmable Messaging: form-encoded webhooks signed with the account's auth token."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field

from connectors._payload import Fields, form_object, form_pairs
from connectors._sending import answer_id, answer_object, call, raise_for_status
from connectors._signing import require_header, require_secret
from connectors.base import (
    Capabilities,
    Connector,
    ConnectorConfig,
    EventType,
    HttpClient,
    HttpGatewayConfig,
    InboundEvent,
    PayloadError,
    SendError,
    SendRequest,
    SendResult,
    SignatureError,
    WebhookRequest,
    WebhookResponse,
    constant_time_equals,
)

DEFAULT_BASE_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"
#: TwiML for "stored, no reply".
EMPTY_TWIML = b"<Response/>"
#: Status callbacks that become hub events; queued, accepted, scheduled and sending are
#: steps on the way and give none.
STATUS_EVENTS: dict[str, EventType] = {
    "sent": "sms.sent",
    "delivered": "sms.delivered",
    "read": "sms.delivered",
    "undelivered": "sms.failed",
    "failed": "sms.failed",
    "canceled": "sms.failed",
}
_DEFAULT_PORTS = {"https": 443, "http": 80}


class TwilioConfig(HttpGatewayConfig):
    """A Twilio account (or subaccount) and who messages come from."""

    base_url: str = Field(DEFAULT_BASE_URL, description="Twilio REST API root.")
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$", description="Account SID (AC…).")
    auth_token: str = Field(
        min_length=1,
        description="Auth token; also the key Twilio signs webhooks with.",
        json_schema_extra={"secret": True},
    )
    from_number: str | None = Field(None, description="Sender number (E.164) or sender id.")
    messaging_service_sid: str | None = Field(
        None,
        pattern=r"^MG[0-9a-fA-F]{32}$",
        description="Messaging Service SID (MG…); picks the sender when set.",
    )


def signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's signature: base64 HMAC-SHA1 of the URL followed by each param's name+value."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with its default port added or removed.

    Twilio signs whichever form it was configured with, and a proxy in front of the hub
    may add or drop ":443"; its own validator accepts both, so does this.
    """
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    try:
        port = parts.port
    except ValueError:
        return [url]
    if port is None and default is not None:
        other = parts._replace(netloc=f"{prefix}{host}:{default}")
    elif port is not None and port == default:
        other = parts._replace(netloc=f"{prefix}{host}")
    else:
        return [url]
    return [url, urlunsplit(other)]


class TwilioConnector(Connector):
    """Send and receive through Twilio."""

    name: ClassVar[str] = "twilio"
    title: ClassVar[str] = "Twilio"
    description: ClassVar[str] = "Twilio Programmable Messaging (SMS)."
    config_model: ClassVar[type[ConnectorConfig]] = TwilioConfig
    capabilities: ClassVar[Capabilities] = Capabilities()
    content_types: ClassVar[frozenset[str]] = frozenset({FORM})

    def signing_secret(self, config: TwilioConfig, webhook_secret: str | None) -> str | None:
        """Twilio signs with the account's auth token, not a per-webhook secret."""
        return config.auth_token

    def verify(
        self, config: TwilioConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> None:
        """Check ``X-Twilio-Signature`` over the called URL and every form parameter.

        Twilio's scheme has no timestamp; replays are caught by the dedupe keys.
        """
        key = require_secret(secret)
        given = require_header(request.header(SIGNATURE_HEADER), SIGNATURE_HEADER)
        try:
            params = form_pairs(request.body)
        except PayloadError as exc:
            raise SignatureError(f"cannot read the signed form: {exc}") from exc
        for url in _url_variants(request.url):
            if constant_time_equals(signature(key, url, params), given):
                return
        raise SignatureError(f"{SIGNATURE_HEADER} does not match")

    def sign(
        self, config: TwilioConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> WebhookRequest:
        """The request with the signature Twilio would send."""
        headers = dict(request.headers)
        headers[SIGNATURE_HEADER.lower()] = signature(
            require_secret(secret), request.url, form_pairs(request.body)
        )
        return replace(request, headers=headers)

    def parse(self, config: TwilioConfig, request: WebhookRequest) -> list[InboundEvent]:
        """An inbound SMS, or a status callback (which has MessageStatus)."""
        if request.content_type not in ("", FORM):
            raise PayloadError(f"expected {FORM}, got {request.content_type}")
        params = form_object(request.body)
        status = params.opt_str("MessageStatus")
        if status is None or status == "received":
            return [_inbound(params)]
        return _status_callback(params, status)

    def webhook_response(
        self, request: WebhookRequest, events: list[InboundEvent]
    ) -> WebhookResponse:
        """Empty TwiML: stored, no automatic reply (replies go out through the API)."""
        return WebhookResponse(media_type="text/xml", body=EMPTY_TWIML)

    async def send(
        self, config: TwilioConfig, message: SendRequest, http: HttpClient
    ) -> SendResult:
        """Create a Message resource."""
        form = {"To": message.to, "Body": message.text}
        # A sender routing chose wins; else the Messaging Service picks from its pool.
        if message.from_number:
            form["From"] = message.from_number
        elif config.messaging_service_sid:
            form["MessagingServiceSid"] = config.messaging_service_sid
        elif config.from_number:
            form["From"] = config.from_number
        else:
            raise SendError(
                "Twilio needs a sender: set from_number or messaging_service_sid",
                retryable=False,
            )
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        resp = await call(
            http,
            self.title,
            f"{config.base_url}/2010-04-01/Accounts/{config.account_sid}/Messages.json",
            data=form,
            basic_auth=(config.account_sid, config.auth_token),
            timeout=config.timeout_s,
        )
        raise_for_status(resp, self.title)
        answer = answer_object(resp, self.title, retryable=False)
        sid = answer_id(answer.get("sid"))
        if sid is None:
            raise SendError(
                "Twilio accepted the message but its answer has no sid",
                retryable=False,
                status_code=resp.status,
            )
        status = answer.get("status")
        if status in ("failed", "undelivered", "canceled"):
            reason = answer.get("error_message") or answer.get("error_code")
            raise SendError(
                f"Twilio marked the message {status}: {reason}",
                retryable=False,
                status_code=resp.status,
            )
        return SendResult(
            provider_message_id=sid, status="sent" if status == "sent" else "queued", raw=answer
        )


def _inbound(params: Fields) -> InboundEvent:
    sid = params.req_str("MessageSid")
    return InboundEvent(
        type="sms.received",
        dedupe_key=sid,
        provider_message_id=sid,
        from_number=params.req_str("From"),
        to_number=params.req_str("To"),
        body=params.req_str("Body", allow_empty=True),
        segments=params.opt_int("NumSegments", minimum=1),
        provider_status="received",
        raw=dict(params.data),
    )


def _status_callback(params: Fields, status: str) -> list[InboundEvent]:
    sid = params.req_str("MessageSid")
    event = STATUS_EVENTS.get(status)
    if event is None:
        return []
    error_code = params.opt_str("ErrorCode") or None
    return [
        InboundEvent(
            type=event,
            dedupe_key=f"{sid}:{status}",
            provider_message_id=sid,
            # A status callback is about a message we sent: From is us, To the handset.
            from_number=params.opt_str("From"),
            to_number=params.opt_str("To"),
            error=(error_code or status) if event == "sms.failed" else None,
            provider_status=status,
            raw=dict(params.data),
        )
    ]
