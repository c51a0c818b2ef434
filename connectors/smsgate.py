"""SMS Gateway for Android (capcom6, sms-gate.app): the open-source app turning a phone into
an SMS gateway, reached on the phone itself (local), through the public cloud server, or
through a self-hosted one (private).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from connectors._payload import Fields, json_object
from connectors._sending import answer_id, answer_object, call, error_text, raise_for_status
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
    GatewaySetupError,
    HttpClient,
    HttpGatewayConfig,
    HttpResponse,
    InboundEvent,
    SendError,
    SendRequest,
    SendResult,
    WebhookRegistration,
    WebhookRequest,
    WebhookSetup,
)

CLOUD_BASE_URL = "https://api.sms-gate.app"
#: Send endpoint on the phone's own server, and on the cloud / private servers.
LOCAL_SEND_PATH = "/message"
SERVER_SEND_PATH = "/3rdparty/v1/messages"
SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
#: The app numbers SIMs from 1 and knows at most 3.
MAX_SIM_NUMBER = 3
EVENTS: dict[str, EventType] = {
    "sms:received": "sms.received",
    "sms:sent": "sms.sent",
    "sms:delivered": "sms.delivered",
    "sms:failed": "sms.failed",
    # The app's optional ping (Settings → Ping): the phone is alive, nothing else.
    "system:ping": "device.heartbeat",
}
#: The events the hub registers on the gateway, one webhook each (the app takes one event
#: per registration).
WEBHOOK_EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping")
#: The webhooks API on the phone's own server, and on the cloud / private servers.
LOCAL_WEBHOOKS_PATH = "/webhooks"
SERVER_WEBHOOKS_PATH = "/3rdparty/v1/webhooks"
#: What to check when the gateway cannot be reached, by mode.
_UNREACHABLE_HINTS = {
    "local": "is the phone on the same network as the hub, the app's Local server switched "
    "on, and this the address the app shows?",
    "cloud": "does the hub's machine have internet access?",
    "private": "is your server running at this address?",
}
#: Time field of each event's payload.
_TIME_FIELDS = {
    "sms:received": "receivedAt",
    "sms:sent": "sentAt",
    "sms:delivered": "deliveredAt",
    "sms:failed": "failedAt",
}


class SMSGateConfig(HttpGatewayConfig):
    """One phone (local) or one account on a server (cloud, private)."""

    mode: Literal["local", "cloud", "private"] = Field(
        "cloud",
        description="local: the phone's own server; cloud: api.sms-gate.app; private: yours.",
    )
    base_url: str = Field(
        CLOUD_BASE_URL,
        description="Cloud default; local e.g. http://192.168.1.20:8080; private: your server.",
    )
    username: str = Field(min_length=1, description="Username shown in the app.")
    password: str = Field(
        min_length=1, description="Password shown in the app.", json_schema_extra={"secret": True}
    )

    @model_validator(mode="after")
    def _base_url_matches_mode(self) -> SMSGateConfig:
        if self.mode != "cloud" and self.base_url == CLOUD_BASE_URL:
            example = "http://192.168.1.20:8080" if self.mode == "local" else "your server's URL"
            raise ValueError(f"{self.mode} mode needs base_url set (e.g. {example})")
        return self


class SMSGateConnector(Connector):
    """Send and receive through SMS Gateway for Android."""

    name: ClassVar[str] = "smsgate"
    title: ClassVar[str] = "SMS Gateway for Android"
    description: ClassVar[str] = (
        "Open-source Android app (sms-gate.app): on the phone, the public cloud, or your server."
    )
    config_model: ClassVar[type[ConnectorConfig]] = SMSGateConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        idempotent_send=True, devices=True, heartbeats=True
    )

    def verify(
        self, config: SMSGateConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> None:
        """Check ``X-Signature`` = HMAC-SHA256(key, body + X-Timestamp) and the timestamp's age."""
        key = require_secret(secret)
        signature = require_header(request.header(SIGNATURE_HEADER), SIGNATURE_HEADER)
        raw_ts = require_header(request.header(TIMESTAMP_HEADER), TIMESTAMP_HEADER)
        signed_at = unix_seconds(raw_ts, TIMESTAMP_HEADER)
        check_hex(hmac_hex(key, request.body + raw_ts.encode()), signature, SIGNATURE_HEADER)
        check_window(signed_at, now)

    def sign(
        self, config: SMSGateConfig, secret: str | None, request: WebhookRequest, now: datetime
    ) -> WebhookRequest:
        """The request with the headers the app would add at ``now``."""
        timestamp = str(int(now.timestamp()))
        headers = dict(request.headers)
        headers[TIMESTAMP_HEADER.lower()] = timestamp
        headers[SIGNATURE_HEADER.lower()] = hmac_hex(
            require_secret(secret), request.body + timestamp.encode()
        )
        return replace(request, headers=headers)

    def parse(self, config: SMSGateConfig, request: WebhookRequest) -> list[InboundEvent]:
        """One event per envelope; a ping is a heartbeat of its device; data SMS, MMS and
        unknown events give none."""
        envelope = json_object(request.body)
        name = envelope.req_str("event")
        event = EVENTS.get(name)
        if event is None:
            return []
        if event == "device.heartbeat":
            return _heartbeat(envelope)
        payload = envelope.obj("payload")
        sim_number = payload.opt_int("simNumber", minimum=1)
        common: dict[str, Any] = {
            "type": event,
            # The envelope id is unique per event; the payload's messageId of a received
            # SMS is derived from its content and repeats.
            "dedupe_key": envelope.req_str("id"),
            "device_id": envelope.opt_str("deviceId"),
            "sim_slot": None if sim_number is None else sim_number - 1,
            "occurred_at": payload.opt_time(_TIME_FIELDS[name]),
            "raw": dict(envelope.data),
        }
        if event == "sms.received":
            # Before app 1.x's sender/recipient fields, the sender was in phoneNumber.
            return [
                InboundEvent(
                    provider_message_id=payload.opt_str("messageId"),
                    from_number=_first(payload, "sender", "phoneNumber"),
                    to_number=payload.opt_str("recipient"),
                    body=payload.req_str("message", allow_empty=True),
                    **common,
                )
            ]
        reason = payload.opt_str("reason")
        return [
            InboundEvent(
                provider_message_id=payload.req_str("messageId"),
                from_number=payload.opt_str("sender"),
                to_number=_first(payload, "recipient", "phoneNumber", required=False),
                segments=payload.opt_int("partsCount", minimum=1),
                error=reason if event == "sms.failed" else None,
                provider_status=reason,
                **common,
            )
        ]

    async def send(
        self, config: SMSGateConfig, message: SendRequest, http: HttpClient
    ) -> SendResult:
        """POST the message with the hub's id as the app's message id (idempotency key)."""
        payload: dict[str, Any] = {
            "id": message.message_id,
            "textMessage": {"text": message.text},
            "phoneNumbers": [message.to],
            "withDeliveryReport": True,
        }
        # The phone's own server is one device: a device id means nothing to it.
        if message.device_id and config.mode != "local":
            payload["deviceId"] = message.device_id
        if message.sim_slot is not None:
            if not 0 <= message.sim_slot < MAX_SIM_NUMBER:
                raise SendError(
                    f"{self.title} supports SIM slots 0 to {MAX_SIM_NUMBER - 1}, "
                    f"not {message.sim_slot}",
                    retryable=False,
                )
            payload["simNumber"] = message.sim_slot + 1
        path = LOCAL_SEND_PATH if config.mode == "local" else SERVER_SEND_PATH
        resp = await call(
            http,
            self.title,
            f"{config.base_url}{path}",
            json=payload,
            basic_auth=(config.username, config.password),
            timeout=config.timeout_s,
        )
        if resp.status == 409:
            # A message with this id exists already: an earlier attempt got through.
            return SendResult(provider_message_id=message.message_id, status="queued")
        raise_for_status(resp, self.title)
        # Sending again with the same id is harmless, so an unreadable answer is retried.
        answer = answer_object(resp, self.title, retryable=True)
        state = answer.get("state")
        if state == "Failed":
            raise SendError(
                f"{self.title} failed the SMS: {_recipient_errors(answer)}", retryable=False
            )
        return SendResult(
            provider_message_id=answer_id(answer.get("id")) or message.message_id,
            status="sent" if state in ("Sent", "Delivered") else "queued",
            raw=answer,
        )

    async def register_webhooks(
        self, config: SMSGateConfig, http: HttpClient, *, url: str, id_prefix: str
    ) -> WebhookSetup:
        """Check the gateway answers (``GET /webhooks``), register ``url`` for each of
        :data:`WEBHOOK_EVENTS` under the id ``<id_prefix>-<event>`` (the app replaces a
        registration with the same id), delete older registrations of ``url`` under other
        ids (they would deliver everything twice), then list what is registered."""
        api = _WebhooksApi(config, http)
        before = await api.list()
        ours = {f"{id_prefix}-{event.replace(':', '-')}": event for event in WEBHOOK_EVENTS}
        for hook_id, event in ours.items():
            await api.register(WebhookRegistration(id=hook_id, event=event, url=url))
        stale = tuple(r.id for r in before if r.url == url and r.id not in ours)
        for hook_id in stale:
            await api.delete(hook_id)
        registered = tuple(r for r in await api.list() if r.id in ours)
        missing = set(ours) - {r.id for r in registered if r.url == url}
        if missing:
            raise GatewaySetupError(
                f"{self.title} took the registrations but does not list "
                f"{', '.join(sorted(missing))} with {url}; try again",
                reason="refused",
            )
        return WebhookSetup(registered=registered, removed=stale, api_url=api.url)


class _WebhooksApi:
    """The app's ``/webhooks`` API, its failures turned into what the user has to fix."""

    def __init__(self, config: SMSGateConfig, http: HttpClient) -> None:
        self._config = config
        self._http = http
        path = LOCAL_WEBHOOKS_PATH if config.mode == "local" else SERVER_WEBHOOKS_PATH
        self.url = f"{config.base_url}{path}"

    async def list(self) -> list[WebhookRegistration]:
        """Every registration (the app answers a JSON list of {id, url, event, deviceId?})."""
        resp = await self._call("GET", self.url)
        try:
            items = resp.json()
        except (ValueError, RecursionError):
            items = None
        if not isinstance(items, list):
            raise GatewaySetupError(
                f"{SMSGateConnector.title} at {self.url} answered with something that is not "
                "a list of webhooks: is base_url the app's API address?",
                reason="refused",
                status_code=resp.status,
            )
        return [_registration(item) for item in items if isinstance(item, dict)]

    async def register(self, hook: WebhookRegistration) -> None:
        """Create or replace (same id) one registration."""
        await self._call("POST", self.url, {"id": hook.id, "url": hook.url, "event": hook.event})

    async def delete(self, hook_id: str) -> None:
        """Delete one registration."""
        await self._call("DELETE", f"{self.url}/{hook_id}")

    async def _call(self, method: str, url: str, body: Any = None) -> HttpResponse:
        config = self._config
        where = config.base_url
        try:
            resp = await self._http.request(
                method,
                url,
                json=body,
                basic_auth=(config.username, config.password),
                timeout=config.timeout_s,
            )
        except TimeoutError as exc:
            raise GatewaySetupError(
                f"the hub cannot reach {where} (no answer within {config.timeout_s:g} s): "
                f"{_UNREACHABLE_HINTS[config.mode]}",
                reason="unreachable",
            ) from exc
        except OSError as exc:
            raise GatewaySetupError(
                f"the hub cannot reach {where} ({exc}): {_UNREACHABLE_HINTS[config.mode]}",
                reason="unreachable",
            ) from exc
        _check_answer(config, method, url, resp)
        return resp


def _check_answer(config: SMSGateConfig, method: str, url: str, resp: HttpResponse) -> None:
    if 200 <= resp.status < 300:
        return
    if resp.status in (401, 403):
        settings = "Local server" if config.mode == "local" else "Cloud server"
        raise GatewaySetupError(
            f"{SMSGateConnector.title} at {config.base_url} refused the username/password "
            f"(HTTP {resp.status}): use the username/password of the app's {settings} "
            "settings in this channel's config",
            reason="unauthorized",
            status_code=resp.status,
        )
    reason = error_text(resp)
    if 300 <= resp.status < 400:
        reason = f"redirect to {resp.headers.get('location', '?')} (is base_url right?)"
    raise GatewaySetupError(
        f"{SMSGateConnector.title} answered HTTP {resp.status} to {method} {url}: {reason}",
        reason="refused",
        status_code=resp.status,
    )


def _registration(item: dict[str, Any]) -> WebhookRegistration:
    return WebhookRegistration(
        id=str(item.get("id") or ""), event=str(item.get("event") or ""), url=str(item.get("url"))
    )


def _heartbeat(envelope: Fields) -> list[InboundEvent]:
    """``system:ping``: the device is alive (no device id, nothing to mark)."""
    device_id = envelope.opt_str("deviceId")
    if not device_id:
        return []
    return [
        InboundEvent(
            type="device.heartbeat",
            dedupe_key=envelope.req_str("id"),
            device_id=device_id,
            raw=dict(envelope.data),
        )
    ]


def _first(payload: Fields, *names: str, required: bool = True) -> str | None:
    for name in names:
        value = payload.opt_str(name)
        if value:
            return value
    if required:
        return payload.req_str(names[0])  # raises, naming the current field
    return None


def _recipient_errors(answer: dict[str, Any]) -> str:
    recipients = answer.get("recipients")
    if not isinstance(recipients, list):
        return "no reason given"
    errors = [
        f"{r.get('phoneNumber', '?')}: {r.get('error') or r.get('state', '?')}"
        for r in recipients
        if isinstance(r, dict)
    ]
    return "; ".join(errors) or "no reason given"
