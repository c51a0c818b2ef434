"""Vonage (Nexmo) SMS API: inbound SMS and delivery receipts, JSON or form, optionally signed.

Signed webhooks carry the signature as a ``sig`` parameter with a ``timestamp``, not in a
header. Accounts without signing (the default at Vonage) are authenticated by the hub's
per-channel URL token instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

from pydantic import Field

from connectors._payload import Fields, decode_json, form_pairs, plus_digits
from connectors._sending import answer_object, call, raise_for_status
from connectors._signing import (
    REPLAY_WINDOW_S,
    check_hex,
    check_window,
    require_secret,
    unix_seconds,
)
from connectors.base import (
    Capabilities,
    Connector,
    ConnectorConfig,
    EventType,
    HttpClient,
    HttpGatewayConfig,
    InboundEvent,
    MessagePart,
    PayloadError,
    SendError,
    SendRequest,
    SendResult,
    SignatureError,
    WebhookRequest,
)
from connectors.segments import segment_info

DEFAULT_BASE_URL = "https://rest.nexmo.com"
SignatureMethod = Literal["none", "md5hash", "md5", "sha1", "sha256", "sha512"]
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
#: Delivery-receipt statuses that become hub events ("unknown" and anything new give none).
STATUS_EVENTS: dict[str, EventType] = {
    "delivered": "sms.delivered",
    "expired": "sms.failed",
    "failed": "sms.failed",
    "rejected": "sms.failed",
    "accepted": "sms.sent",
    "buffered": "sms.sent",
}
#: Send answer status meaning "throttled": the only one worth retrying.
THROTTLED = "1"
#: Send answer statuses worth retrying: throttled, and Vonage's own internal error.
RETRYABLE_STATUSES = frozenset({THROTTLED, "5"})
_DIGITS = re.compile(r"[0-9]+")


class VonageConfig(HttpGatewayConfig):
    """A Vonage API account."""

    base_url: str = Field(DEFAULT_BASE_URL, description="Vonage SMS API root.")
    api_key: str = Field(min_length=1, description="API key.")
    api_secret: str = Field(
        min_length=1, description="API secret.", json_schema_extra={"secret": True}
    )
    from_number: str | None = Field(
        None, description="Sender: a number (E.164) or an alphanumeric sender id."
    )
    signature_method: SignatureMethod = Field(
        "sha256",
        description="How Vonage signs webhooks (account settings); none: use the URL token.",
    )
    signature_secret: str | None = Field(
        None,
        description="Signature secret from the account settings (else the channel's secret).",
        json_schema_extra={"secret": True},
    )


def signature(params: dict[str, str], secret: str, method: SignatureMethod) -> str:
    """Vonage's ``sig`` for these parameters (``sig`` itself excluded by the caller).

    Parameters sorted by name, joined as ``&name=value`` with ``&`` and ``=`` inside values
    replaced by ``_``; HMAC with the secret, or for the legacy "md5hash" an MD5 of that
    string followed by the secret.
    """
    signed = "".join(
        f"&{name}={value.replace('&', '_').replace('=', '_')}"
        for name, value in sorted(params.items())
    ).encode()
    if method == "md5hash":
        return hashlib.md5(signed + secret.encode()).hexdigest()
    if method == "none":
        raise ValueError("signature method 'none' has no signature")
    return hmac.new(secret.encode(), signed, method).hexdigest()


class VonageConnector(Connector):
    """Send and receive through the Vonage SMS API."""

    name: ClassVar[str] = "vonage"
    title: ClassVar[str] = "Vonage"
    description: ClassVar[str] = "Vonage (Nexmo) SMS API."
    config_model: ClassVar[type[ConnectorConfig]] = VonageConfig
    capabilities: ClassVar[Capabilities] = Capabilities()
    content_types: ClassVar[frozenset[str]] = frozenset({JSON, FORM})

    def signing_secret(self, config: VonageConfig, webhook_secret: str | None) -> str | None:
        """The account's signature secret when configured, else the channel's secret."""
        return config.signature_secret or webhook_secret

    def requires_url_token(self, config: VonageConfig) -> bool:
        """True when the account does not sign its webhooks."""
        return config.signature_method == "none"

    def verify(
        self, config: VonageConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> None:
        """Check the ``sig`` parameter and that ``timestamp`` is within ±5 minutes."""
        if self.requires_url_token(config):
            return  # Nothing to check here: the hub has checked the URL token.
        key = require_secret(secret)
        try:
            params = _params(request).data
        except PayloadError as exc:
            raise SignatureError(f"cannot read the signed parameters: {exc}") from exc
        signed = {name: _text(value) for name, value in params.items() if name != "sig"}
        given = params.get("sig")
        if not isinstance(given, str) or not given:
            raise SignatureError("missing sig parameter")
        raw_ts = signed.get("timestamp")
        if not raw_ts:
            raise SignatureError("missing timestamp parameter")
        signed_at = unix_seconds(raw_ts, "timestamp parameter")
        check_hex(signature(signed, key, config.signature_method), given, "sig parameter")
        check_window(signed_at, now, REPLAY_WINDOW_S)

    def sign(
        self, config: VonageConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> WebhookRequest:
        """The request with ``timestamp`` and ``sig`` added the way Vonage adds them."""
        if self.requires_url_token(config):
            return request
        params = {name: _text(value) for name, value in _params(request).data.items()}
        params.pop("sig", None)
        params["timestamp"] = str(int(now.timestamp()))
        params["sig"] = signature(params, require_secret(secret), config.signature_method)
        if request.method.upper() == "GET":
            return replace(request, query=params)
        if _is_json(request):
            return replace(request, body=json.dumps(params).encode())
        return replace(request, body=urlencode(params).encode())

    def parse(self, config: VonageConfig, request: WebhookRequest) -> list[InboundEvent]:
        """A delivery receipt (has ``status``) or an inbound SMS."""
        params = _params(request)
        if "status" in params:
            return _delivery_receipt(params)
        return _inbound(params)

    async def send(
        self, config: VonageConfig, message: SendRequest, http: HttpClient
    ) -> SendResult:
        """POST /sms/json; Vonage answers 200 with a status per part."""
        sender = message.from_number or config.from_number
        if not sender:
            raise SendError("Vonage needs a sender: set from_number", retryable=False)
        form = {
            "api_key": config.api_key,
            "api_secret": config.api_secret,
            "from": _national_free(sender),
            "to": "".join(_DIGITS.findall(message.to)),
            "text": message.text,
            "client-ref": message.message_id,
        }
        if segment_info(message.text).encoding == "UCS-2":
            form["type"] = "unicode"
        if message.status_callback_url:
            form["callback"] = message.status_callback_url
        resp = await call(
            http,
            self.title,
            f"{config.base_url}/sms/json",
            data=form,
            timeout=config.timeout_s,
        )
        raise_for_status(resp, self.title)
        answer = answer_object(resp, self.title, retryable=False)
        return _send_result(answer)


def _send_result(answer: dict[str, Any]) -> SendResult:
    parts = answer.get("messages")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        raise SendError("Vonage answer has no messages list", retryable=False)
    failed = [p for p in parts if str(p.get("status")) != "0"]
    accepted = [p for p in parts if str(p.get("status")) == "0"]
    if failed:
        first = failed[0]
        status = str(first.get("status"))
        raise SendError(
            f"Vonage refused the SMS: status {status} {first.get('error-text', '')}".strip(),
            # Retrying after a part went out would send that part twice.
            retryable=status in RETRYABLE_STATUSES and not accepted,
        )
    message_id = accepted[0].get("message-id")
    if not isinstance(message_id, str) or not message_id:
        raise SendError("Vonage accepted the SMS but gave no message-id", retryable=False)
    # A long text is split by Vonage into parts with their own ids and delivery receipts;
    # the first part's id stands for the message (all ids stay in raw).
    return SendResult(provider_message_id=message_id, status="queued", raw=answer)


def _national_free(sender: str) -> str:
    """Vonage wants numbers without '+'; an alphanumeric sender id stays as it is."""
    stripped = sender.strip()
    if stripped.startswith("+") and _DIGITS.fullmatch(stripped[1:]):
        return stripped[1:]
    return stripped


def _is_json(request: WebhookRequest) -> bool:
    if request.content_type:
        return request.content_type == JSON
    return request.body.lstrip().startswith(b"{")


def _params(request: WebhookRequest) -> Fields:
    """The webhook's parameters, from the query (GET), a JSON object, or a form body."""
    if request.method.upper() == "GET":
        return Fields(dict(request.query))
    if _is_json(request):
        data = decode_json(request.body)
        if not isinstance(data, dict):
            raise PayloadError("expected a JSON object of parameters")
        return Fields(data)
    params: dict[str, str] = {}
    for name, value in form_pairs(request.body):
        params.setdefault(name, value)
    return Fields(params)


def _text(value: object) -> str:
    """A parameter value as it was signed (JSON bodies may carry numbers and booleans)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _inbound(params: Fields) -> list[InboundEvent]:
    message_id = params.req_str("messageId")
    kind = params.opt_str("type")
    from_number = plus_digits(params.req_str("msisdn"))
    to_number = plus_digits(params.req_str("to"))
    occurred_at = params.opt_time("message-timestamp")
    if kind == "binary":
        return []  # Binary SMS (data, udh) carry no text for flows.
    # Long messages arrive as parts, each with its own messageId (the event's dedupe key):
    # the parser only says which part this is; the hub joins them (hub.services.concat),
    # since that needs state across requests.
    return [
        InboundEvent(
            type="sms.received",
            dedupe_key=message_id,
            provider_message_id=message_id,
            from_number=from_number,
            to_number=to_number,
            body=params.req_str("text", allow_empty=True),
            occurred_at=occurred_at,
            part=_part(params),
            raw=dict(params.data),
        )
    ]


#: Most parts a concatenated SMS can have (the UDH counts them in one byte).
MAX_PARTS = 255


def _part(params: Fields) -> MessagePart | None:
    """The concat-* fields of a part of a long SMS; None for a whole one (no ``concat``,
    or a "message" of one part)."""
    concat = params.data.get("concat")
    if concat is None or _text(concat).lower() != "true":
        return None
    ref = params.req_str("concat-ref")
    total = params.opt_int("concat-total", minimum=1)
    number = params.opt_int("concat-part", minimum=1)
    if total is None or number is None:
        missing = "concat-total" if total is None else "concat-part"
        raise PayloadError(f"missing field {missing} (concat is true)")
    if total > MAX_PARTS:
        raise PayloadError(f"field concat-total must be at most {MAX_PARTS}, got {total}")
    if number > total:
        raise PayloadError(f"field concat-part ({number}) is past concat-total ({total})")
    return MessagePart(ref=ref, total=total, number=number) if total > 1 else None


def _delivery_receipt(params: Fields) -> list[InboundEvent]:
    message_id = params.req_str("messageId")
    status = params.req_str("status")
    # In a receipt msisdn is the handset we sent to, and "to" is our sender id.
    handset = plus_digits(params.req_str("msisdn"))
    sender = params.opt_str("to")
    error_code = params.opt_str("err-code")
    occurred_at = params.opt_time("message-timestamp")
    event = STATUS_EVENTS.get(status)
    if event is None:
        return []
    return [
        InboundEvent(
            type=event,
            dedupe_key=f"{message_id}:{status}",
            provider_message_id=message_id,
            from_number=plus_digits(sender) if sender else None,
            to_number=handset,
            occurred_at=occurred_at,
            error=(error_code or status) if event == "sms.failed" else None,
            provider_status=status,
            raw=dict(params.data),
        )
    ]
