"""MySMSGate: a cloud service relaying SMS through Android phones running its app.

Incoming SMS and delivery reports go to two separately configured webhook URLs
(``…/incoming`` and ``…/status``). MySMSGate does not publish a signature scheme, so the
channel either checks a configurable HMAC-SHA256 header (hex of the raw body), or, for
accounts that cannot sign, relies on the hub's per-channel URL token.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from typing import ClassVar

from pydantic import Field

from connectors._payload import Fields, decode_json, json_object, to_datetime
from connectors._sending import answer_id, answer_object, call, raise_for_status
from connectors._signing import (
    REPLAY_WINDOW_S,
    check_hex,
    check_window,
    hmac_hex,
    require_header,
    require_secret,
)
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
)

DEFAULT_BASE_URL = "https://mysmsgate.net"
SEND_PATH = "/api/v1/send"
#: Delivery-report statuses that become hub events; pending and sending are progress only.
STATUS_EVENTS: dict[str, EventType] = {
    "sent": "sms.sent",
    "delivered": "sms.delivered",
    "failed": "sms.failed",
}


class MySMSGateConfig(HttpGatewayConfig):
    """A MySMSGate account."""

    base_url: str = Field(DEFAULT_BASE_URL, description="MySMSGate API root.")
    api_key: str = Field(
        min_length=1, description="API key from the dashboard.", json_schema_extra={"secret": True}
    )
    signature_header: str = Field(
        "X-Signature",
        max_length=64,
        description=(
            "Header carrying the hex HMAC-SHA256 of the raw body, keyed with the channel's "
            "webhook secret. Empty: the account cannot sign; the webhook URL's token is used."
        ),
    )
    replay_window_s: int = Field(
        REPLAY_WINDOW_S,
        ge=0,
        le=86_400,
        description="Reject bodies whose timestamp is further off than this (0 disables).",
    )


class MySMSGateConnector(Connector):
    """Send and receive through MySMSGate."""

    name: ClassVar[str] = "mysmsgate"
    title: ClassVar[str] = "MySMSGate"
    description: ClassVar[str] = "Your Android phones as SMS gateway, through mysmsgate.net."
    config_model: ClassVar[type[ConnectorConfig]] = MySMSGateConfig
    capabilities: ClassVar[Capabilities] = Capabilities(devices=True)

    def requires_url_token(self, config: MySMSGateConfig) -> bool:
        """True when no signature header is configured."""
        return not config.signature_header

    def verify(
        self, config: MySMSGateConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> None:
        """Check the body's HMAC, then that its ``timestamp`` is within the replay window."""
        if self.requires_url_token(config):
            return  # Nothing to check here: the hub has checked the URL token.
        key = require_secret(secret)
        signature = require_header(request.header(config.signature_header), config.signature_header)
        check_hex(hmac_hex(key, request.body), signature, config.signature_header)
        if config.replay_window_s:
            signed_at = _body_timestamp(request.body)
            if signed_at is not None:
                check_window(signed_at, now, config.replay_window_s)

    def sign(
        self, config: MySMSGateConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> WebhookRequest:
        """The request with the signature header (the timestamp is the body's own)."""
        if self.requires_url_token(config):
            return request
        headers = dict(request.headers)
        headers[config.signature_header.lower()] = hmac_hex(require_secret(secret), request.body)
        return replace(request, headers=headers)

    def parse(self, config: MySMSGateConfig, request: WebhookRequest) -> list[InboundEvent]:
        """An incoming SMS or a delivery report, told apart by URL (or by shape on the bare one)."""
        body = json_object(request.body)
        kind = request.path or _guess_kind(body)
        if kind == "incoming":
            return [_incoming(body)]
        return _delivery_report(body)

    async def send(
        self, config: MySMSGateConfig, message: SendRequest, http: HttpClient
    ) -> SendResult:
        """POST /api/v1/send; MySMSGate answers 202 with the new SMS's id."""
        payload: dict[str, object] = {"to": message.to, "message": message.text}
        if message.device_id:
            payload["device_id"] = message.device_id
        if message.sim_slot is not None:
            payload["slot"] = message.sim_slot
        resp = await call(
            http,
            self.title,
            f"{config.base_url}{SEND_PATH}",
            headers={"Authorization": f"Bearer {config.api_key}"},
            json=payload,
            timeout=config.timeout_s,
        )
        raise_for_status(resp, self.title)
        answer = answer_object(resp, self.title, retryable=False)
        pid = answer_id(answer.get("id")) or answer_id(answer.get("sms_id"))
        if pid is None:
            raise SendError(
                f"{self.title} accepted the SMS but its answer has no id or sms_id",
                retryable=False,
                status_code=resp.status,
            )
        status = answer.get("status")
        if status == "failed":
            raise SendError(f"{self.title} refused the SMS: {answer}", retryable=False)
        return SendResult(
            provider_message_id=pid,
            status="sent" if status in ("sent", "delivered") else "queued",
            raw=answer,
        )


def _body_timestamp(body: bytes) -> float | None:
    """The signed body's ``timestamp`` in unix seconds; None when the body is not an object.

    A body that is not a JSON object is left to ``parse`` to reject (400). A signed object
    without a usable timestamp cannot be told from a replay, so it is refused (401).
    """
    try:
        data = decode_json(body)
    except PayloadError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("timestamp") is None:
        raise SignatureError("signed body has no timestamp; cannot rule out a replay")
    try:
        return to_datetime(data["timestamp"]).timestamp()
    except ValueError as exc:
        raise SignatureError(f"signed body's timestamp is unusable: {exc}") from exc


def _guess_kind(body: Fields) -> str:
    if "status" in body and "message_id" in body:
        return "status"
    if "message" in body and "from" in body:
        return "incoming"
    raise PayloadError(
        "cannot tell an incoming SMS (from, message) from a delivery report "
        "(message_id, status); point MySMSGate at the …/incoming and …/status URLs"
    )


def _incoming(body: Fields) -> InboundEvent:
    from_number = body.req_str("from")
    to_number = body.opt_str("to")
    text = body.req_str("message", allow_empty=True)
    device_id = body.opt_str("device_id")
    sim_slot = body.opt_int("sim_slot", minimum=0)
    occurred_at = body.opt_time("timestamp")
    # MySMSGate gives an incoming SMS no id, and a retry carries the same fields, so the
    # dedupe key is a hash of them. Two identical texts from one sender within the same
    # second (the timestamp's resolution) would count as one.
    fingerprint = json.dumps(
        [from_number, to_number, text, device_id, sim_slot, body.data.get("timestamp")],
        ensure_ascii=False,
    )
    return InboundEvent(
        type="sms.received",
        dedupe_key="in:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32],
        from_number=from_number,
        to_number=to_number,
        body=text,
        device_id=device_id,
        sim_slot=sim_slot,
        occurred_at=occurred_at,
        raw=dict(body.data),
    )


def _delivery_report(body: Fields) -> list[InboundEvent]:
    message_id = body.req_str("message_id")
    status = body.req_str("status")
    status_text = body.opt_str("status_text")
    event = STATUS_EVENTS.get(status.lower())
    # Read every field before deciding, so a malformed report is a 400 whatever its status.
    to_number = body.opt_str("to")
    device_id = body.opt_str("device_id")
    sim_slot = body.opt_int("sim_slot", minimum=0)
    occurred_at = body.opt_time("timestamp")
    refunded = body.opt_bool("refunded")
    if event is None:
        return []
    return [
        InboundEvent(
            type=event,
            dedupe_key=f"{message_id}:{status.lower()}",
            provider_message_id=message_id,
            to_number=to_number,
            device_id=device_id,
            sim_slot=sim_slot,
            occurred_at=occurred_at,
            error=(status_text or status) if event == "sms.failed" else None,
            provider_status=status_text or status,
            refunded=refunded,
            raw=dict(body.data),
        )
    ]
