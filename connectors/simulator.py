"""The built-in simulator: a gateway that needs no phone and no account.

Sending does no I/O: the hub gets back, as scheduled follow-ups, the delivery report a
real gateway would post later and the SMS arriving at the recipient (which the hub
ingests if another simulator channel owns that number). Its webhook takes hand-made
events (``smshub simulate …``) signed with the channel's secret, so ``verify`` is real.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from connectors._payload import Fields, json_object
from connectors._signing import (
    check_hex,
    check_window,
    hmac_hex,
    require_header,
    require_secret,
    unix_seconds,
)
from connectors.base import (
    Capabilities,
    Connector,
    ConnectorConfig,
    EventType,
    HttpClient,
    InboundEvent,
    PayloadError,
    ScheduledEvent,
    SendError,
    SendRequest,
    SendResult,
    WebhookRequest,
)
from connectors.segments import segment_info

SIGNATURE_HEADER = "X-Simulator-Signature"
TIMESTAMP_HEADER = "X-Simulator-Timestamp"
EVENT_TYPES: tuple[EventType, ...] = ("sms.received", "sms.sent", "sms.delivered", "sms.failed")
_EVENT_TYPES: dict[str, EventType] = {name: name for name in EVENT_TYPES}
#: The error a simulated failed delivery reports.
SIMULATED_ERROR = "SIMULATED_FAILURE"
_E164 = r"^\+[1-9]\d{1,14}$"


class SimulatorConfig(ConnectorConfig):
    """A simulated phone."""

    phone_number: str = Field(
        "+15550100000", pattern=_E164, description="This simulated phone's number (E.164)."
    )
    delivery_delay_s: float = Field(
        1.0, ge=0, le=3600, description="Seconds between sending and the delivery report."
    )
    failure_rate: float = Field(
        0.0, ge=0, le=1, description="Share of messages whose delivery fails (0 to 1)."
    )
    device_id: str = Field(
        "sim-device-1", min_length=1, max_length=64, description="Simulated device id."
    )
    sim_slots: int = Field(2, ge=1, le=4, description="SIM slots the simulated phone has.")


def sign_request(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """The headers that make ``body`` a valid simulator webhook at ``now``."""
    timestamp = str(int(now.timestamp()))
    signature = hmac_hex(secret, timestamp.encode() + b"." + body)
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}


def event_body(
    event: EventType,
    *,
    event_id: str,
    from_number: str,
    to_number: str,
    text: str | None = None,
    message_id: str | None = None,
    device_id: str | None = None,
    sim_slot: int | None = None,
    error: str | None = None,
) -> bytes:
    """A simulator webhook body (JSON), as the CLI posts it."""
    data: dict[str, Any] = {"event": event, "id": event_id, "from": from_number, "to": to_number}
    optional = {
        "text": text,
        "message_id": message_id,
        "device_id": device_id,
        "sim_slot": sim_slot,
        "error": error,
    }
    data.update({key: value for key, value in optional.items() if value is not None})
    return json.dumps(data, ensure_ascii=False).encode()


def provider_message_id(message_id: str) -> str:
    """The simulator's id for a hub message: derived, so a resend is the same message."""
    return f"sim-{message_id}"


def delivery_fails(message_id: str, failure_rate: float) -> bool:
    """Whether this message's simulated delivery fails.

    Decided by a hash of the message id rather than a random draw, so resending a
    message gives the same outcome (the simulator is idempotent) and tests need no seed.
    """
    digest = hashlib.sha256(f"failure:{message_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < failure_rate


class SimulatorConnector(Connector):
    """Loops messages back without a network."""

    name: ClassVar[str] = "simulator"
    title: ClassVar[str] = "Simulator"
    description: ClassVar[str] = (
        "Built-in fake phone: delivery reports after a delay, optional failures, "
        "messages between simulator channels."
    )
    config_model: ClassVar[type[ConnectorConfig]] = SimulatorConfig
    capabilities: ClassVar[Capabilities] = Capabilities(idempotent_send=True, devices=True)

    def verify(
        self, config: SimulatorConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> None:
        """Check the HMAC of ``{timestamp}.{body}`` and that the timestamp is recent."""
        key = require_secret(secret)
        signature = require_header(request.header(SIGNATURE_HEADER), SIGNATURE_HEADER)
        raw_ts = require_header(request.header(TIMESTAMP_HEADER), TIMESTAMP_HEADER)
        signed_at = unix_seconds(raw_ts, TIMESTAMP_HEADER)
        expected = hmac_hex(key, raw_ts.encode() + b"." + request.body)
        check_hex(expected, signature, SIGNATURE_HEADER)
        check_window(signed_at, now)

    def sign(
        self, config: SimulatorConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> WebhookRequest:
        """The request with simulator signature headers for ``now``."""
        headers = dict(request.headers)
        signed = sign_request(require_secret(secret), request.body, now)
        headers.update({name.lower(): value for name, value in signed.items()})
        return replace(request, headers=headers)

    def parse(self, config: SimulatorConfig, request: WebhookRequest) -> list[InboundEvent]:
        """One event per body; the body's ``id`` is the dedupe key."""
        body = json_object(request.body)
        name = body.req_str("event")
        event = _EVENT_TYPES.get(name)
        if event is None:
            raise PayloadError(f"field event must be one of {', '.join(EVENT_TYPES)}, not {name!r}")
        return [_event(event, body)]

    async def send(
        self, config: SimulatorConfig, message: SendRequest, http: HttpClient
    ) -> SendResult:
        """Accept at once and schedule the delivery report and the loop-back SMS."""
        slot = 0 if message.sim_slot is None else message.sim_slot
        if not 0 <= slot < config.sim_slots:
            raise SendError(
                f"simulator {config.device_id} has {config.sim_slots} SIM slots, no slot {slot}",
                retryable=False,
            )
        # A simulator channel stands for a whole fleet of phones: any device id the hub
        # routes to exists, so routing and rate limits can be tried without hardware.
        device = message.device_id or config.device_id
        pid = provider_message_id(message.message_id)
        sender = message.from_number or config.phone_number
        fails = delivery_fails(message.message_id, config.failure_rate)
        report = InboundEvent(
            type="sms.failed" if fails else "sms.delivered",
            dedupe_key=f"{pid}:{'failed' if fails else 'delivered'}",
            provider_message_id=pid,
            from_number=sender,
            to_number=message.to,
            device_id=device,
            sim_slot=slot,
            error=SIMULATED_ERROR if fails else None,
            provider_status="failed" if fails else "delivered",
        )
        followups = [ScheduledEvent(delay_s=config.delivery_delay_s, event=report)]
        if not fails:
            # What the recipient's phone receives; the hub drops it unless a simulator
            # channel owns message.to.
            arrival = InboundEvent(
                type="sms.received",
                dedupe_key=f"{pid}:received",
                provider_message_id=pid,
                from_number=sender,
                to_number=message.to,
                body=message.text,
                segments=segment_info(message.text).segments,
            )
            followups.append(
                ScheduledEvent(
                    delay_s=config.delivery_delay_s, event=arrival, to_channel_number=message.to
                )
            )
        return SendResult(
            provider_message_id=pid,
            status="sent",
            followups=tuple(followups),
            raw={"id": pid, "device_id": device, "sim_slot": slot},
        )


def _event(event: EventType, body: Fields) -> InboundEvent:
    is_report = event != "sms.received"
    text = body.opt_str("text")
    if not is_report and text is None:
        raise PayloadError("missing field text (required for sms.received)")
    message_id = body.opt_str("message_id")
    if is_report and not message_id:
        raise PayloadError(f"missing field message_id (required for {event})")
    return InboundEvent(
        type=event,
        dedupe_key=body.req_str("id"),
        provider_message_id=message_id,
        from_number=body.req_str("from"),
        to_number=body.req_str("to"),
        body=text if not is_report else None,
        device_id=body.opt_str("device_id"),
        sim_slot=body.opt_int("sim_slot", minimum=0),
        error=body.opt_str("error"),
        segments=segment_info(text).segments if text is not None and not is_report else None,
        raw=dict(body.data),
    )
