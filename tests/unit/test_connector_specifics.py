"""Each connector's spec, config rules, and the behaviour its own gateway needs beyond the
shared contract (status tables, ignored events, URL variants, legacy payload fields)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import ValidationError

from connectors import (
    CanReceive,
    CanSend,
    CanSign,
    Connector,
    InboundEvent,
    PayloadError,
    SignatureError,
    WebhookRequest,
    WebhookResponse,
    all_connectors,
    get_connector,
)
from connectors import twilio as twilio_mod
from connectors import vonage as vonage_mod
from tests.fakes.webhooks import vonage_sig

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
URL = "https://hub.example.com/webhooks/ch_x"
JSON_CT = {"content-type": "application/json"}
FORM_CT = {"content-type": "application/x-www-form-urlencoded"}
SID = "AC" + "1" * 32

CONFIGS: dict[str, dict[str, Any]] = {
    "simulator": {},
    "mysmsgate": {"api_key": "k"},
    "smsgate": {"username": "u", "password": "p"},
    "twilio": {"account_sid": SID, "auth_token": "tok", "from_number": "+15550000001"},
    "vonage": {"api_key": "k", "api_secret": "s", "signature_method": "none"},
}


def connector(name: str) -> Any:
    """The registered connector (typed loosely: tests call gateway-specific methods)."""
    return get_connector(name)


def config(name: str, **overrides: Any) -> Any:
    return connector(name).parse_config({**CONFIGS[name], **overrides})


def request(
    body: bytes | str | dict[str, Any],
    *,
    path: str = "",
    headers: dict[str, str] | None = None,
    url: str = URL,
    method: str = "POST",
    query: dict[str, str] | None = None,
) -> WebhookRequest:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return WebhookRequest(
        method=method,
        url=url,
        path=path,  # type: ignore[arg-type]
        headers=headers if headers is not None else dict(JSON_CT),
        body=body,
        query=query or {},
    )


def parse(name: str, req: WebhookRequest, **overrides: Any) -> list[InboundEvent]:
    return connector(name).parse(config(name, **overrides), req)  # type: ignore[no-any-return]


# --- Specs --------------------------------------------------------------------------------

#: Fields the hub must store encrypted, per connector.
SECRETS = {
    "simulator": set(),
    "mysmsgate": {"api_key"},
    "smsgate": {"password"},
    "twilio": {"auth_token"},
    "vonage": {"api_secret", "signature_secret"},
}
#: Provider public APIs the configs default to.
BASE_URLS = {
    "mysmsgate": "https://mysmsgate.net",
    "smsgate": "https://api.sms-gate.app",
    "twilio": "https://api.twilio.com",
    "vonage": "https://rest.nexmo.com",
}


def test_builtins_are_exactly_the_five_gateways() -> None:
    assert [c.name for c in all_connectors()] == sorted(SECRETS)


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_spec_is_complete(name: str) -> None:
    c: Connector = get_connector(name)
    assert c.name == name
    assert c.title and c.description and c.kind == "gateway"
    assert isinstance(c, CanReceive) and isinstance(c, CanSend) and isinstance(c, CanSign)
    # The UI builds its form from this schema; secret fields are marked in it.
    schema = c.config_model.model_json_schema()
    marked = {f for f, prop in schema["properties"].items() if prop.get("secret")}
    assert marked == c.config_model.secret_fields() == SECRETS[name]
    assert all(prop.get("description") for prop in schema["properties"].values())


@pytest.mark.parametrize(("name", "url"), sorted(BASE_URLS.items()))
def test_base_url_defaults_to_the_public_api(name: str, url: str) -> None:
    assert config(name).base_url == url
    # ... and can point at a local fake, trailing slash dropped.
    assert config(name, base_url="http://127.0.0.1:8123/").base_url == "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("name", "content_types", "idempotent", "devices"),
    [
        # JSON gateways with phones behind them.
        ("simulator", {"application/json"}, True, True),
        ("mysmsgate", {"application/json"}, False, True),
        # SMSGate takes our message id as its own: resending is harmless.
        ("smsgate", {"application/json"}, True, True),
        # Twilio posts forms only.
        ("twilio", {"application/x-www-form-urlencoded"}, False, False),
        # Vonage posts JSON or forms, depending on the account's setting.
        ("vonage", {"application/json", "application/x-www-form-urlencoded"}, False, False),
    ],
)
def test_capabilities(name: str, content_types: set[str], idempotent: bool, devices: bool) -> None:
    c = get_connector(name)
    assert set(c.content_types) == content_types
    assert (c.capabilities.idempotent_send, c.capabilities.devices) == (idempotent, devices)


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        # Twilio signs with the auth token, whatever the channel secret is.
        ("twilio", {}, "tok"),
        # Vonage: the account's signature secret when set...
        ("vonage", {"signature_secret": "acct"}, "acct"),
        # ... else the channel's secret.
        ("vonage", {}, "chan"),
        ("smsgate", {}, "chan"),
        ("mysmsgate", {}, "chan"),
        ("simulator", {}, "chan"),
    ],
)
def test_signing_secret(name: str, overrides: dict[str, Any], expected: str) -> None:
    assert connector(name).signing_secret(config(name, **overrides), "chan") == expected


def test_twilio_answers_empty_twiml_others_json() -> None:
    req = request(b"")
    assert get_connector("twilio").webhook_response(req, []) == WebhookResponse(
        200, "text/xml", b"<Response/>"
    )
    assert get_connector("smsgate").webhook_response(req, []) == WebhookResponse()


# --- Config rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "complaint"),
    [
        # The simulator's number must be E.164.
        ("simulator", {"phone_number": "5550100"}, "phone_number"),
        ("simulator", {"failure_rate": 1.5}, "failure_rate"),
        ("simulator", {"sim_slots": 0}, "sim_slots"),
        # Local and private SMSGate need the address of the phone / server.
        ("smsgate", {**CONFIGS["smsgate"], "mode": "local"}, "local mode needs base_url"),
        ("smsgate", {**CONFIGS["smsgate"], "mode": "private"}, "private mode needs base_url"),
        ("smsgate", {"username": "u"}, "password"),
        # Twilio SIDs have a fixed shape; a typo is caught at save time.
        ("twilio", {**CONFIGS["twilio"], "account_sid": "AB" + "1" * 32}, "account_sid"),
        ("twilio", {**CONFIGS["twilio"], "messaging_service_sid": "XX1"}, "messaging_service_sid"),
        # base_url must be an http(s) URL without query.
        ("twilio", {**CONFIGS["twilio"], "base_url": "ftp://api.twilio.com"}, "base_url"),
        ("vonage", {**CONFIGS["vonage"], "base_url": "https://x.test/?a=1"}, "base_url"),
        ("vonage", {**CONFIGS["vonage"], "signature_method": "sha384"}, "signature_method"),
        # Unknown keys are typos, not silently ignored.
        ("mysmsgate", {"api_key": "k", "apikey": "k"}, "apikey"),
        ("mysmsgate", {"api_key": "k", "timeout_s": 0}, "timeout_s"),
    ],
)
def test_config_rejects(name: str, raw: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        get_connector(name).parse_config(raw)


def test_smsgate_local_mode_with_the_phones_address() -> None:
    cfg = config("smsgate", mode="local", base_url="http://192.168.1.20:8080/")
    assert (cfg.mode, cfg.base_url) == ("local", "http://192.168.1.20:8080")


# --- Verify: options and edge cases --------------------------------------------------------


def mysmsgate_signed(
    body: dict[str, Any], secret: str = "sec", header: str = "x-signature"
) -> WebhookRequest:
    raw = json.dumps(body).encode()
    sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return request(raw, path="incoming", headers={**JSON_CT, header: sig})


INCOMING = {"from": "+15550001111", "to": "+15550002222", "message": "hi", "timestamp": TS}


def test_mysmsgate_custom_signature_header() -> None:
    c, cfg = connector("mysmsgate"), config("mysmsgate", signature_header="X-MSG-Sig")
    c.verify(cfg, "sec", mysmsgate_signed(INCOMING, header="x-msg-sig"), NOW)
    with pytest.raises(SignatureError, match="missing X-MSG-Sig"):
        c.verify(cfg, "sec", mysmsgate_signed(INCOMING), NOW)


def test_mysmsgate_without_signing_relies_on_the_url_token() -> None:
    c, cfg = connector("mysmsgate"), config("mysmsgate", signature_header="")
    assert c.requires_url_token(cfg)
    c.verify(cfg, None, request(INCOMING, path="incoming"), NOW)


def test_mysmsgate_replay_window() -> None:
    c = connector("mysmsgate")
    stale = mysmsgate_signed({**INCOMING, "timestamp": TS - 61})
    # A 60 s window refuses a 61 s old body; 0 turns the check off.
    with pytest.raises(SignatureError, match="61s old"):
        c.verify(config("mysmsgate", replay_window_s=60), "sec", stale, NOW)
    c.verify(config("mysmsgate", replay_window_s=0), "sec", stale, NOW)
    # Millisecond timestamps are understood too.
    c.verify(
        config("mysmsgate"), "sec", mysmsgate_signed({**INCOMING, "timestamp": TS * 1000}), NOW
    )


def test_mysmsgate_signed_body_without_timestamp_is_refused() -> None:
    body = {k: v for k, v in INCOMING.items() if k != "timestamp"}
    with pytest.raises(SignatureError, match="no timestamp"):
        connector("mysmsgate").verify(config("mysmsgate"), "sec", mysmsgate_signed(body), NOW)


def test_mysmsgate_signed_garbage_passes_verify_and_fails_parse() -> None:
    # Authentic but unreadable: a 400 from parse, not a 401.
    raw = b"not json"
    sig = hmac.new(b"sec", raw, hashlib.sha256).hexdigest()
    req = request(raw, path="incoming", headers={**JSON_CT, "x-signature": sig})
    connector("mysmsgate").verify(config("mysmsgate"), "sec", req, NOW)
    with pytest.raises(PayloadError, match="not valid JSON"):
        parse("mysmsgate", req)


@pytest.mark.parametrize("name", ["simulator", "mysmsgate", "smsgate", "twilio"])
def test_no_secret_configured_fails_closed(name: str) -> None:
    with pytest.raises(SignatureError, match="no signing secret"):
        connector(name).verify(config(name), None, request(INCOMING), NOW)


def test_vonage_signed_without_secret_fails_closed() -> None:
    cfg = config("vonage", signature_method="sha256")
    with pytest.raises(SignatureError, match="no signing secret"):
        connector("vonage").verify(cfg, None, request({"sig": "x", "timestamp": str(TS)}), NOW)


def test_smsgate_timestamp_must_be_unix_seconds() -> None:
    req = request(b"{}", headers={**JSON_CT, "x-signature": "ab", "x-timestamp": "2026-03-01"})
    with pytest.raises(SignatureError, match="not unix seconds"):
        connector("smsgate").verify(config("smsgate"), "k", req, NOW)


TWILIO_PARAMS = {"MessageSid": "SM1", "From": "+15550001111", "To": "+15550002222", "Body": "hi"}


@pytest.mark.parametrize(
    ("signed_url", "called_url", "ok"),
    [
        # Twilio signed the URL with :443, the hub's public URL has none.
        (
            "https://hub.example.com:443/webhooks/ch_x",
            "https://hub.example.com/webhooks/ch_x",
            True,
        ),
        # ... and the other way round.
        (
            "https://hub.example.com/webhooks/ch_x",
            "https://hub.example.com:443/webhooks/ch_x",
            True,
        ),
        # Plain http with :80.
        ("http://hub.example.com:80/webhooks/ch_x", "http://hub.example.com/webhooks/ch_x", True),
        # A non-default port is part of the URL: no variants.
        (
            "https://hub.example.com:8443/webhooks/ch_x",
            "https://hub.example.com/webhooks/ch_x",
            False,
        ),
        # The query string is signed.
        (
            "https://hub.example.com/webhooks/ch_x?t=1",
            "https://hub.example.com/webhooks/ch_x?t=2",
            False,
        ),
        # Another path is another URL.
        ("https://hub.example.com/webhooks/ch_y", "https://hub.example.com/webhooks/ch_x", False),
    ],
)
def test_twilio_url_variants(signed_url: str, called_url: str, ok: bool) -> None:
    body = urlencode(TWILIO_PARAMS).encode()
    sig = twilio_mod.signature("tok", signed_url, sorted(TWILIO_PARAMS.items()))
    req = request(body, headers={**FORM_CT, "x-twilio-signature": sig}, url=called_url)
    c, cfg = connector("twilio"), config("twilio")
    if ok:
        c.verify(cfg, "tok", req, NOW)
    else:
        with pytest.raises(SignatureError):
            c.verify(cfg, "tok", req, NOW)


#: Vonage's own SDK test vectors: params a=1, b=2, timestamp=1461605396, secret "secret".
VONAGE_VECTORS = {
    "md5hash": "6af838ef94998832dbfc29020b564830",
    "md5": "c15c21ced558c93a226c305f58f902f2",
    "sha1": "3e19a4e6880fdc2c1426bfd0587c98b9532f0210",
    "sha256": "a321e824b9b816be7c3f28859a31749a098713d39f613c80d455bbaffae1cd24",
}


@pytest.mark.parametrize(("method", "sig"), sorted(VONAGE_VECTORS.items()))
def test_vonage_signature_matches_sdk_vectors(method: Any, sig: str) -> None:
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert vonage_mod.signature(params, "secret", method) == sig


def vonage_request(
    params: dict[str, str], method: str, *, json_body: bool = True, upper: bool = False
) -> WebhookRequest:
    signed = {**params, "timestamp": str(TS)}
    sig = vonage_sig(signed, "vs", method)
    signed["sig"] = sig.upper() if upper else sig
    if json_body:
        return request(signed)
    return request(urlencode(signed), headers=dict(FORM_CT))


INBOUND = {"msisdn": "447700900001", "to": "447700900000", "messageId": "m1", "text": "a=b&c=d"}


@pytest.mark.parametrize("json_body", [True, False], ids=["json", "form"])
def test_vonage_values_with_ampersand_and_equals(json_body: bool) -> None:
    # '&' and '=' inside values are signed as '_'; the text itself is kept intact.
    req = vonage_request(INBOUND, "sha512", json_body=json_body)
    cfg = config("vonage", signature_method="sha512")
    connector("vonage").verify(cfg, "vs", req, NOW)
    assert parse("vonage", req)[0].body == "a=b&c=d"


def test_vonage_accepts_upper_case_hex() -> None:
    cfg = config("vonage", signature_method="sha256")
    connector("vonage").verify(cfg, "vs", vonage_request(INBOUND, "sha256", upper=True), NOW)


def test_vonage_get_webhooks_read_the_query() -> None:
    params = {**INBOUND, "timestamp": str(TS)}
    params["sig"] = vonage_sig(params, "vs", "md5hash")
    req = request(b"", method="GET", headers={}, query=params)
    cfg = config("vonage", signature_method="md5hash")
    connector("vonage").verify(cfg, "vs", req, NOW)
    assert parse("vonage", req)[0].from_number == "+447700900001"


# --- Parse: status tables and ignored events -----------------------------------------------


def smsgate_envelope(event: str, payload: dict[str, Any] | None = None) -> WebhookRequest:
    return request(
        {"deviceId": "d1", "event": event, "id": "evt1", "payload": payload or {}, "webhookId": "w"}
    )


def test_smsgate_ping_is_a_heartbeat_of_its_device() -> None:
    """The phone is alive: the hub marks the device seen, nothing else is stored."""
    [event] = parse("smsgate", smsgate_envelope("system:ping", {"health": {"status": "pass"}}))
    assert (event.type, event.device_id, event.dedupe_key) == ("device.heartbeat", "d1", "evt1")
    assert (event.body, event.from_number, event.provider_message_id) == (None, None, None)
    no_device = request({"event": "system:ping", "id": "evt2", "payload": {}, "webhookId": "w"})
    assert parse("smsgate", no_device) == []  # nothing to mark


@pytest.mark.parametrize(
    "event",
    [
        # Data SMS and MMS are not text SMS for flows.
        "sms:data-received",
        "mms:received",
        # Events the app adds later are answered 200 and ignored, not refused (it retries).
        "sms:something-new",
    ],
)
def test_smsgate_ignored_events(event: str) -> None:
    assert parse("smsgate", smsgate_envelope(event, {"health": {"status": "pass"}})) == []


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        # Older app versions name the other party phoneNumber.
        (
            "sms:received",
            {"messageId": "m", "message": "hi", "phoneNumber": "+15550003333", "simNumber": None},
            {"from_number": "+15550003333", "sim_slot": None, "to_number": None},
        ),
        (
            "sms:sent",
            {"messageId": "m", "phoneNumber": "+15550003333", "simNumber": 3},
            {"to_number": "+15550003333", "sim_slot": 2, "from_number": None},
        ),
    ],
)
def test_smsgate_legacy_payloads(
    event: str, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    (ev,) = parse("smsgate", smsgate_envelope(event, payload))
    assert {k: getattr(ev, k) for k in expected} == expected


def twilio_status(status: str, **extra: str) -> WebhookRequest:
    params = {"MessageSid": "SM9", "MessageStatus": status, "From": "+1555", "To": "+1666", **extra}
    return request(urlencode(params), headers=dict(FORM_CT))


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        # Steps before the carrier: no event.
        ("queued", None),
        ("accepted", None),
        ("scheduled", None),
        ("sending", None),
        ("sent", "sms.sent"),
        ("delivered", "sms.delivered"),
        # WhatsApp/RCS read receipts imply delivery.
        ("read", "sms.delivered"),
        ("undelivered", "sms.failed"),
        ("failed", "sms.failed"),
        ("canceled", "sms.failed"),
    ],
)
def test_twilio_status_table(status: str, event_type: str | None) -> None:
    events = parse("twilio", twilio_status(status))
    assert [e.type for e in events] == ([event_type] if event_type else [])
    if events:
        assert events[0].dedupe_key == f"SM9:{status}"


def test_twilio_failure_without_error_code_uses_the_status() -> None:
    (ev,) = parse("twilio", twilio_status("failed", ErrorCode=""))
    assert ev.error == "failed"


def test_twilio_inbound_may_say_received() -> None:
    params = {**TWILIO_PARAMS, "MessageStatus": "received", "SmsStatus": "received"}
    (ev,) = parse("twilio", request(urlencode(params), headers=dict(FORM_CT)))
    assert (ev.type, ev.body) == ("sms.received", "hi")


@pytest.mark.parametrize(
    ("status", "event_type", "error"),
    [
        # Receipts from the carrier: accepted and buffered mean "on its way".
        ("accepted", "sms.sent", None),
        ("buffered", "sms.sent", None),
        ("delivered", "sms.delivered", None),
        ("expired", "sms.failed", "5"),
        ("failed", "sms.failed", "5"),
        ("rejected", "sms.failed", "5"),
        # "unknown" tells nothing: no event.
        ("unknown", None, None),
    ],
)
def test_vonage_receipt_table(status: str, event_type: str | None, error: str | None) -> None:
    dlr = {
        "msisdn": "447700900001",
        "to": "Acme",
        "messageId": "m9",
        "status": status,
        "err-code": "5",
    }
    events = parse("vonage", request(dlr))
    assert [(e.type, e.error) for e in events] == ([(event_type, error)] if event_type else [])


def test_vonage_binary_sms_is_ignored() -> None:
    body = {
        "msisdn": "1",
        "to": "2",
        "messageId": "b1",
        "type": "binary",
        "data": "00",
        "udh": "00",
    }
    assert parse("vonage", request(body)) == []


def test_vonage_concatenated_parts_are_separate_events_for_now() -> None:
    part = {
        "msisdn": "447700900001",
        "to": "447700900000",
        "type": "text",
        "concat": "true",
        "concat-ref": "7",
        "concat-total": "2",
    }
    first = parse(
        "vonage", request({**part, "messageId": "p1", "text": "Hello ", "concat-part": "1"})
    )
    second = parse(
        "vonage", request({**part, "messageId": "p2", "text": "world", "concat-part": "2"})
    )
    assert [e.dedupe_key for e in first + second] == ["p1", "p2"]


MYSMSGATE_REPORT = {"message_id": "m1", "to": "+1555", "status": "delivered", "timestamp": TS}


@pytest.mark.parametrize(
    ("body", "event_type"),
    [
        # On the bare URL an incoming SMS is recognised by from + message ...
        (INCOMING, "sms.received"),
        # ... and a delivery report by message_id + status.
        (MYSMSGATE_REPORT, "sms.delivered"),
    ],
)
def test_mysmsgate_bare_url_detects_shape(body: dict[str, Any], event_type: str) -> None:
    assert [e.type for e in parse("mysmsgate", request(body, path=""))] == [event_type]


def test_mysmsgate_bare_url_unknown_shape() -> None:
    with pytest.raises(PayloadError, match="cannot tell"):
        parse("mysmsgate", request({"hello": "world"}))


@pytest.mark.parametrize("status", ["pending", "sending", "queued-somewhere"])
def test_mysmsgate_progress_statuses_give_no_event(status: str) -> None:
    assert parse("mysmsgate", request({**MYSMSGATE_REPORT, "status": status}, path="status")) == []


def test_mysmsgate_incoming_dedupe_key_follows_content() -> None:
    def key(body: dict[str, Any]) -> str:
        return parse("mysmsgate", request(body, path="incoming"))[0].dedupe_key

    # A retry of the same SMS has the same key ...
    assert key(INCOMING) == key(dict(INCOMING))
    # ... another text, or the same text a second later, is another SMS.
    assert key(INCOMING) != key({**INCOMING, "message": "hi!"})
    assert key(INCOMING) != key({**INCOMING, "timestamp": TS + 1})


def test_times_are_timezone_aware() -> None:
    (ev,) = parse("mysmsgate", request(MYSMSGATE_REPORT, path="status"))
    assert ev.occurred_at == NOW
    later = NOW + timedelta(hours=1)
    (ev,) = parse(
        "mysmsgate", request({**MYSMSGATE_REPORT, "timestamp": later.isoformat()}, path="status")
    )
    assert ev.occurred_at == later
