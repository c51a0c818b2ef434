"""Malformed webhooks: ``parse`` raises only PayloadError (saying what is wrong), ``verify``
only SignatureError, whatever arrives; events that do come out are well-formed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import (
    InboundEvent,
    PayloadError,
    SignatureError,
    WebhookRequest,
    get_connector,
)
from connectors import simulator as sim

JSON_CT = "application/json"
FORM_CT = "application/x-www-form-urlencoded"
CONNECTORS = ["simulator", "mysmsgate", "smsgate", "twilio", "vonage"]
#: Signing configs: every check enabled.
CONFIGS: dict[str, dict[str, Any]] = {
    "simulator": {},
    "mysmsgate": {"api_key": "k"},
    "smsgate": {"username": "u", "password": "p"},
    "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "tok"},
    "vonage": {"api_key": "k", "api_secret": "s", "signature_method": "sha256"},
}
#: Field names each gateway's payloads use, so fuzzed bodies reach deep into the parsers.
FIELDS = {
    "simulator": [
        "event", "id", "from", "to", "text", "message_id", "device_id", "sim_slot", "error",
    ],
    "mysmsgate": [
        "from", "to", "message", "device_id", "sim_slot", "timestamp",
        "message_id", "status", "status_text", "refunded",
    ],
    "smsgate": [
        "deviceId", "event", "id", "payload", "webhookId", "messageId", "message", "sender",
        "recipient", "phoneNumber", "simNumber", "receivedAt", "sentAt", "deliveredAt",
        "failedAt", "reason", "partsCount",
    ],
    "twilio": ["MessageSid", "MessageStatus", "From", "To", "Body", "NumSegments", "ErrorCode"],
    "vonage": [
        "msisdn", "to", "messageId", "text", "type", "status", "err-code",
        "message-timestamp", "timestamp", "sig", "concat-part",
    ],
}  # fmt: skip
#: Values that steer the parsers into their branches.
WORDS = [
    "", "sms.received", "sms.sent", "sms.delivered", "sms.failed", "sms:received",
    "sms:sent", "sms:delivered", "sms:failed", "system:ping", "received", "sent",
    "delivered", "failed", "pending", "read", "accepted", "binary", "text", "1678886400",
    "1678886400000", "2025-11-26 12:00:05", "2025-11-26T12:00:00.000+02:00", "-1", "0",
    "+15550001234", "447700900001",
]  # fmt: skip


def connector(name: str) -> Any:
    return get_connector(name)


def make_request(body: bytes, path: str, content_type: str, method: str = "POST") -> WebhookRequest:
    headers = {"content-type": content_type} if content_type else {}
    return WebhookRequest(
        method=method,
        url="https://hub.example.com/webhooks/ch_f" + (f"/{path}" if path else ""),
        path=path,  # type: ignore[arg-type]
        headers=headers,
        body=body,
    )


def check_parse(name: str, req: WebhookRequest) -> None:
    """Parse must return well-formed events or raise PayloadError: nothing else."""
    c = connector(name)
    try:
        events = c.parse(c.parse_config(CONFIGS[name]), req)
    except PayloadError as exc:
        assert str(exc), "a PayloadError must say what is wrong"
        return
    for event in events:
        assert_well_formed(event)


#: A gateway's sign of life (SMS Gateway for Android's system:ping): it names its device.
HEARTBEAT = ("device.heartbeat",)


def assert_well_formed(event: InboundEvent) -> None:
    assert event.type in ("sms.received", "sms.sent", "sms.delivered", "sms.failed", *HEARTBEAT)
    assert isinstance(event.dedupe_key, str) and event.dedupe_key
    if event.type in HEARTBEAT:  # a sign of life marks a device, or there is none
        assert isinstance(event.device_id, str) and event.device_id
    for name in ("provider_message_id", "from_number", "to_number", "body", "device_id", "error"):
        assert getattr(event, name) is None or isinstance(getattr(event, name), str), name
    assert event.sim_slot is None or (isinstance(event.sim_slot, int) and event.sim_slot >= 0)
    assert event.segments is None or (isinstance(event.segments, int) and event.segments >= 1)
    assert event.occurred_at is None or event.occurred_at.tzinfo is not None


# --- What the error says ------------------------------------------------------------------

MALFORMED = [
    # Not JSON at all.
    pytest.param("simulator", "", b"", JSON_CT, "empty body", id="sim-empty"),
    pytest.param("simulator", "", b'{"event":', JSON_CT, "not valid JSON", id="sim-truncated"),
    pytest.param("smsgate", "", b"\xff\xfe{}", JSON_CT, "not UTF-8", id="smsgate-not-utf8"),
    # JSON, but not an object.
    pytest.param("mysmsgate", "incoming", b"[1, 2]", JSON_CT, "got array", id="msg-array"),
    pytest.param("vonage", "", b'"text"', JSON_CT, "JSON object", id="vonage-string"),
    # Missing fields, named with their path.
    pytest.param(
        "simulator",
        "",
        {"event": "sms.received", "id": "e", "from": "+1", "to": "+2"},
        JSON_CT,
        "missing field text",
        id="sim-no-text",
    ),
    pytest.param(
        "simulator",
        "",
        {"event": "sms.delivered", "id": "e", "from": "+1", "to": "+2"},
        JSON_CT,
        "missing field message_id",
        id="sim-report-no-message-id",
    ),
    pytest.param(
        "simulator",
        "",
        {"event": "sms.bounced", "id": "e"},
        JSON_CT,
        "field event must be one of",
        id="sim-unknown-event",
    ),
    pytest.param(
        "mysmsgate",
        "incoming",
        {"message": "hi"},
        JSON_CT,
        "missing field from",
        id="msg-no-from",
    ),
    pytest.param(
        "mysmsgate",
        "status",
        {"message_id": "m"},
        JSON_CT,
        "missing field status",
        id="msg-no-status",
    ),
    pytest.param(
        "smsgate",
        "",
        {"event": "sms:received", "id": "e"},
        JSON_CT,
        "missing field payload",
        id="smsgate-no-payload",
    ),
    pytest.param(
        "smsgate",
        "",
        {"event": "sms:received", "id": "e", "payload": {"sender": "+1"}},
        JSON_CT,
        "missing field payload.message",
        id="smsgate-no-message",
    ),
    pytest.param(
        "smsgate",
        "",
        {"event": "sms:received", "payload": {"message": "x", "sender": "+1"}},
        JSON_CT,
        "missing field id",
        id="smsgate-no-event-id",
    ),
    pytest.param(
        "twilio",
        "incoming",
        urlencode({"From": "+1", "To": "+2", "Body": "x"}).encode(),
        FORM_CT,
        "missing field MessageSid",
        id="twilio-no-sid",
    ),
    pytest.param(
        "vonage",
        "",
        {"msisdn": "1", "to": "2", "text": "x"},
        JSON_CT,
        "missing field messageId",
        id="vonage-no-message-id",
    ),
    pytest.param(
        "vonage",
        "",
        {"messageId": "m", "status": "delivered", "to": "Acme"},
        JSON_CT,
        "missing field msisdn",
        id="vonage-dlr-no-msisdn",
    ),
    # Present but empty where a value is needed.
    pytest.param(
        "twilio",
        "status",
        b"MessageSid=&MessageStatus=sent",
        FORM_CT,
        "field MessageSid must not be empty",
        id="twilio-empty-sid",
    ),
    # Wrong types.
    pytest.param(
        "simulator",
        "",
        {"event": "sms.received", "id": "e", "from": "+1", "to": ["+2"], "text": "x"},
        JSON_CT,
        "field to must be a string, got array",
        id="sim-to-array",
    ),
    pytest.param(
        "smsgate",
        "",
        {"event": "sms:sent", "id": "e", "payload": []},
        JSON_CT,
        "field payload must be an object, got array",
        id="smsgate-payload-array",
    ),
    pytest.param(
        "smsgate",
        "",
        {"event": "sms:sent", "id": "e", "payload": {"messageId": "m", "simNumber": "two"}},
        JSON_CT,
        "field payload.simNumber must be an integer, got string",
        id="smsgate-sim-text",
    ),
    pytest.param(
        "mysmsgate",
        "incoming",
        {"from": "+1", "message": {"text": "x"}},
        JSON_CT,
        "field message must be a string, got object",
        id="msg-message-object",
    ),
    pytest.param(
        "mysmsgate",
        "status",
        {"message_id": "m", "status": "sent", "refunded": False, "sim_slot": True},
        JSON_CT,
        "field sim_slot must be an integer, got boolean",
        id="msg-slot-bool",
    ),
    pytest.param(
        "twilio",
        "incoming",
        urlencode(
            {"MessageSid": "SM1", "From": "+1", "To": "+2", "Body": "x", "NumSegments": "many"}
        ).encode(),
        FORM_CT,
        "field NumSegments must be an integer",
        id="twilio-segments-text",
    ),
    # Out of range.
    pytest.param(
        "smsgate",
        "",
        {"event": "sms:sent", "id": "e", "payload": {"messageId": "m", "simNumber": 0}},
        JSON_CT,
        "payload.simNumber must be at least 1",
        id="smsgate-sim-zero",
    ),
    pytest.param(
        "simulator",
        "",
        {"event": "sms.received", "id": "e", "from": "+1", "to": "+2", "text": "x", "sim_slot": -1},
        JSON_CT,
        "sim_slot must be at least 0",
        id="sim-negative-slot",
    ),
    # Unreadable times.
    pytest.param(
        "mysmsgate",
        "status",
        {"message_id": "m", "status": "sent", "timestamp": "yesterday"},
        JSON_CT,
        "field timestamp: 'yesterday' is not an ISO 8601 date-time",
        id="msg-bad-time",
    ),
    pytest.param(
        "mysmsgate",
        "status",
        {"message_id": "m", "status": "sent", "timestamp": 1e300},
        JSON_CT,
        "field timestamp",
        id="msg-huge-time",
    ),
    pytest.param(
        "smsgate",
        "",
        {"event": "sms:delivered", "id": "e", "payload": {"messageId": "m", "deliveredAt": "soon"}},
        JSON_CT,
        "payload.deliveredAt",
        id="smsgate-bad-time",
    ),
    # The wrong kind of body for Twilio.
    pytest.param(
        "twilio",
        "incoming",
        b'{"MessageSid":"SM1"}',
        JSON_CT,
        "expected application/x-www-form-urlencoded",
        id="twilio-json",
    ),
]


@pytest.mark.parametrize(("name", "path", "body", "content_type", "message"), MALFORMED)
def test_malformed_body_says_what_is_wrong(
    name: str, path: str, body: bytes | dict[str, Any], content_type: str, message: str
) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    c = connector(name)
    with pytest.raises(PayloadError) as excinfo:
        c.parse(c.parse_config(CONFIGS[name]), make_request(raw, path, content_type))
    assert message in str(excinfo.value)


def test_huge_json_integers_are_a_payload_error() -> None:
    # Python refuses to read integers past 4300 digits with a ValueError; it must not escape.
    raw = b'{"event": "sms.received", "id": ' + b"9" * 5000 + b"}"
    with pytest.raises(PayloadError, match="not usable JSON"):
        connector("simulator").parse(
            connector("simulator").parse_config({}), make_request(raw, "", JSON_CT)
        )


def test_deep_nesting_is_a_payload_error() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PayloadError):
        connector("smsgate").parse(
            connector("smsgate").parse_config(CONFIGS["smsgate"]), make_request(raw, "", JSON_CT)
        )


# --- Fuzzing: nothing but PayloadError / SignatureError escapes ----------------------------

PATHS = st.sampled_from(["", "incoming", "status"])
CONTENT_TYPES = st.sampled_from([JSON_CT, FORM_CT, "text/plain", ""])
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(WORDS)
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shaped_objects(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects using the gateway's field names, nested one level (SMSGate's payload)."""
    keys = st.sampled_from(FIELDS[name])
    values = LEAVES | st.lists(LEAVES, max_size=2)
    inner = st.dictionaries(keys, values, max_size=8)
    return st.dictionaries(keys, values | inner, max_size=10)


@pytest.mark.parametrize("name", CONNECTORS)
@FUZZ
@given(body=st.binary(max_size=300), path=PATHS, content_type=CONTENT_TYPES)
def test_parse_random_bytes(name: str, body: bytes, path: str, content_type: str) -> None:
    check_parse(name, make_request(body, path, content_type))


@pytest.mark.parametrize("name", CONNECTORS)
@FUZZ
@given(value=JSON_VALUES, path=PATHS)
def test_parse_random_json(name: str, value: Any, path: str) -> None:
    check_parse(name, make_request(json.dumps(value).encode(), path, JSON_CT))


@pytest.mark.parametrize("name", CONNECTORS)
@FUZZ
@given(data=st.data(), path=PATHS)
def test_parse_gateway_shaped_json(name: str, data: st.DataObject, path: str) -> None:
    value = data.draw(shaped_objects(name))
    check_parse(name, make_request(json.dumps(value).encode(), path, JSON_CT))


def mutations(value: Any) -> st.SearchStrategy[Any]:
    """``value`` with any key dropped and any value kept, replaced, or (if nested) mutated."""
    if isinstance(value, dict):
        return st.fixed_dictionaries({}, optional={k: mutations(v) for k, v in value.items()})
    return st.just(value) | LEAVES


def templates() -> list[Any]:
    """Real bodies to mutate: every recorded fixture, and a simulator event per type."""
    params = []
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    for path in sorted(fixtures.glob("*/*.json")):
        if path.parent.name not in CONNECTORS:
            continue
        raw = json.loads(path.read_text())["request"]
        url_path = raw["url"].rsplit("/ch_test", 1)[1].strip("/")
        body = raw["body"]
        is_form = "form" in raw["headers"]["Content-Type"]
        template = dict(parse_qsl(body, keep_blank_values=True)) if is_form else json.loads(body)
        params.append(
            pytest.param(
                path.parent.name, url_path, template, is_form, id=f"{path.parent.name}/{path.stem}"
            )
        )
    for event in sim.EVENT_TYPES:
        body = sim.event_body(
            event,
            event_id="e",
            from_number="+1",
            to_number="+2",
            text="t",
            message_id="m",
            sim_slot=0,
        )
        params.append(
            pytest.param("simulator", "", json.loads(body), False, id=f"simulator/{event}")
        )
    return params


@pytest.mark.parametrize(("name", "path", "template", "is_form"), templates())
@FUZZ
@given(data=st.data())
def test_parse_mutated_fixtures(
    name: str, path: str, template: dict[str, Any], is_form: bool, data: st.DataObject
) -> None:
    value = data.draw(mutations(template))
    if is_form:
        body = urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in value.items()})
        check_parse(name, make_request(body.encode(), path, FORM_CT))
    else:
        check_parse(name, make_request(json.dumps(value).encode(), path, JSON_CT))


@pytest.mark.parametrize("name", ["twilio", "vonage"])
@FUZZ
@given(data=st.data(), path=PATHS)
def test_parse_gateway_shaped_forms(name: str, data: st.DataObject, path: str) -> None:
    form = data.draw(
        st.dictionaries(
            st.sampled_from(FIELDS[name]), st.sampled_from(WORDS) | st.text(max_size=20)
        )
    )
    check_parse(name, make_request(urlencode(form).encode(), path, FORM_CT))


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(FIELDS["vonage"]), st.sampled_from(WORDS) | st.text(max_size=20)
    )
)
def test_parse_vonage_get_query(query: dict[str, str]) -> None:
    req = WebhookRequest("GET", "https://hub.example.com/webhooks/ch_f", "", {}, b"", query)
    check_parse("vonage", req)


SIGNATURE_HEADERS = [
    "x-signature", "x-timestamp", "x-twilio-signature", "x-simulator-signature",
    "x-simulator-timestamp",
]  # fmt: skip
HEADER_VALUES = st.text(max_size=70) | st.sampled_from(["1764158400", "", " ", "0" * 64, "ab" * 32])


@pytest.mark.parametrize("name", CONNECTORS)
@FUZZ
@given(
    data=st.data(),
    headers=st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), HEADER_VALUES),
    now=st.datetimes(timezones=st.just(UTC)),
    secret=st.text(max_size=20),
)
def test_verify_random_requests(
    name: str, data: st.DataObject, headers: dict[str, str], now: datetime, secret: str
) -> None:
    body = data.draw(
        st.binary(max_size=200)
        | JSON_VALUES.map(lambda v: json.dumps(v).encode())
        | shaped_objects(name).map(lambda v: json.dumps(v).encode())
    )
    c = connector(name)
    config = c.parse_config(CONFIGS[name])
    req = make_request(body, "", JSON_CT)
    req = WebhookRequest(req.method, req.url, req.path, {**req.headers, **headers}, req.body)
    try:
        c.verify(config, c.signing_secret(config, secret or None), req, now)
    except SignatureError as exc:
        assert str(exc)
