"""The contract every gateway connector passes, driven by one table of webhook requests.

Rows are the recorded fixtures under ``tests/fixtures/<connector>/`` (signatures made by
independent code) plus generated rows: Vonage requests signed with each of its methods
(the fixtures are unsigned) and simulator events. For every row: ``verify`` accepts it at
the signature's time and rejects another secret, a changed body, each missing signature
part and a timestamp 301 s off; ``parse`` gives the expected event.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import (
    CanReceive,
    CanSign,
    InboundEvent,
    SignatureError,
    WebhookRequest,
    all_connectors,
    get_connector,
)
from connectors import simulator as sim
from tests.fakes.webhooks import vonage_sig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: Fixtures for what the hub sends, not for a connector (the MySMSGate-format receivers'
#: package.json is JSON too).
OUTBOUND_ONLY = {"standard-webhooks", "mysmsgate_receivers"}
#: The clock for rows whose scheme has no timestamp (any time would do).
ANY_TIME = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)
ACCOUNT_SID = "AC" + "0" * 32
VONAGE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
VONAGE_SECRET = "vonage-signature-secret"
SIM_SECRET = "simulator-secret"


# --- Building rows -------------------------------------------------------------------------


def config_for(connector: str, secret: str | None, method: str = "none") -> dict[str, Any]:
    """A channel config for ``connector``; Twilio's signing key lives in its config."""
    return {
        "simulator": {},
        "mysmsgate": {"api_key": "msg-api-key"},
        "smsgate": {"username": "sms", "password": "gate"},
        "twilio": {
            "account_sid": ACCOUNT_SID,
            "auth_token": secret or "unused",
            "from_number": "+15559876543",
        },
        "vonage": {"api_key": "abcd1234", "api_secret": "s3cret", "signature_method": method},
    }[connector]


@dataclass(frozen=True)
class Row:
    """One webhook request and what its connector must make of it."""

    connector: str
    request: WebhookRequest
    secret: str | None
    expect: dict[str, Any]
    #: Unix seconds the signature is bound to; None when the scheme has no timestamp.
    signed_at: int | None = None
    #: Headers that carry the signature (each one missing must fail).
    signature_headers: tuple[str, ...] = ()
    #: Body parameters that carry the signature (Vonage).
    signature_params: tuple[str, ...] = ()
    vonage_method: str = "none"

    @property
    def signed(self) -> bool:
        return self.secret is not None

    @property
    def now(self) -> datetime:
        """The frozen clock: the signature's own time."""
        if self.signed_at is None:
            return ANY_TIME
        return datetime.fromtimestamp(self.signed_at, UTC)

    def config(self, secret: str | None = None) -> Any:
        """The validated config, signed with ``secret`` (default: the row's)."""
        connector = get_connector(self.connector)
        key = self.secret if secret is None else secret
        return connector.parse_config(config_for(self.connector, key, self.vonage_method))

    def verify(
        self,
        request: WebhookRequest | None = None,
        secret: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Run the connector's verify the way the hub does."""
        connector = get_connector(self.connector)
        key = self.secret if secret is None else secret
        config = self.config(key)
        assert isinstance(connector, CanReceive)
        connector.verify(
            config, connector.signing_secret(config, key), request or self.request, now or self.now
        )

    def parse(self, request: WebhookRequest | None = None) -> list[InboundEvent]:
        connector = get_connector(self.connector)
        assert isinstance(connector, CanReceive)
        return connector.parse(self.config(), request or self.request)


SIGNATURE_HEADERS = {
    "mysmsgate": ("X-Signature",),
    "smsgate": ("X-Signature", "X-Timestamp"),
    "twilio": ("X-Twilio-Signature",),
    "simulator": (sim.SIGNATURE_HEADER, sim.TIMESTAMP_HEADER),
}


def webhook_path(url: str) -> Any:
    """ "incoming" / "status" / "" from a /webhooks/{channel}[/{path}] URL."""
    parts = urlsplit(url).path.strip("/").split("/")
    return parts[2] if len(parts) > 2 else ""


def fixture_rows() -> list[Any]:
    rows = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        connector = path.parent.name
        if connector in OUTBOUND_ONLY:
            continue
        data = json.loads(path.read_text())
        raw = data["request"]
        headers = {name.lower(): value for name, value in raw["headers"].items()}
        body = raw["body"].encode()
        signed_at: int | None = None
        if "x-timestamp" in headers:
            signed_at = int(headers["x-timestamp"])  # SMSGate: the header it signs
        elif connector == "mysmsgate":
            signed_at = int(json.loads(body)["timestamp"])  # MySMSGate: the body's timestamp
        request = WebhookRequest(
            method=raw["method"],
            url=raw["url"],
            path=webhook_path(raw["url"]),
            headers=headers,
            body=body,
        )
        row = Row(
            connector=connector,
            request=request,
            secret=data["secret"],
            expect=data["expect"],
            signed_at=signed_at,
            signature_headers=SIGNATURE_HEADERS.get(connector, ()) if data["secret"] else (),
        )
        rows.append(pytest.param(row, id=f"{connector}/{path.stem}"))
    return rows


def vonage_signed_rows() -> list[Any]:
    """Each Vonage fixture signed with each method, as JSON and as a form."""
    rows = []
    for path in sorted((FIXTURES / "vonage").glob("*.json")):
        data = json.loads(path.read_text())
        params = json.loads(data["request"]["body"])
        signed_at = int(ANY_TIME.timestamp())
        for method in VONAGE_METHODS:
            signed = {**params, "timestamp": str(signed_at)}
            signed["sig"] = vonage_sig(signed, VONAGE_SECRET, method)
            for encoding, content_type, body in (
                ("json", "application/json", json.dumps(signed).encode()),
                ("form", "application/x-www-form-urlencoded", urlencode(signed).encode()),
            ):
                request = WebhookRequest(
                    method="POST",
                    url=data["request"]["url"],
                    path=webhook_path(data["request"]["url"]),
                    headers={"content-type": content_type},
                    body=body,
                )
                row = Row(
                    connector="vonage",
                    request=request,
                    secret=VONAGE_SECRET,
                    expect=data["expect"],
                    signed_at=signed_at,
                    signature_params=("sig", "timestamp"),
                    vonage_method=method,
                )
                rows.append(pytest.param(row, id=f"vonage/{path.stem}+{method}-{encoding}"))
    return rows


def simulator_rows() -> list[Any]:
    """One signed simulator webhook per event type."""
    signed_at = int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    rows = []
    for event in sim.EVENT_TYPES:
        received = event == "sms.received"
        body = sim.event_body(
            event,
            event_id=f"evt-{event}",
            from_number="+15550001234" if received else "+15550100000",
            to_number="+15550100000" if received else "+15550001234",
            text="STOP" if received else None,
            message_id=None if received else "sim-msg-1",
            device_id="sim-device-1",
            sim_slot=1,
            error="SIMULATED_FAILURE" if event == "sms.failed" else None,
        )
        headers = sim.sign_request(SIM_SECRET, body, datetime.fromtimestamp(signed_at, UTC))
        request = WebhookRequest(
            method="POST",
            url="https://hub.example.com/webhooks/ch_sim",
            path="",
            headers={
                "content-type": "application/json",
                **{k.lower(): v for k, v in headers.items()},
            },
            body=body,
        )
        row = Row(
            connector="simulator",
            request=request,
            secret=SIM_SECRET,
            expect={"type": event, "dedupe_id": f"evt-{event}"},
            signed_at=signed_at,
            signature_headers=SIGNATURE_HEADERS["simulator"],
        )
        rows.append(pytest.param(row, id=f"simulator/{event}"))
    return rows


ROWS = fixture_rows() + vonage_signed_rows() + simulator_rows()
SIGNED = [p for p in ROWS if p.values[0].signed]
TIMED = [p for p in SIGNED if p.values[0].signed_at is not None]


def without_header(request: WebhookRequest, name: str) -> WebhookRequest:
    return replace(request, headers={k: v for k, v in request.headers.items() if k != name.lower()})


def without_param(row: Row, name: str) -> WebhookRequest:
    """The request with one signed parameter dropped, in the body's own encoding."""
    if row.request.content_type == "application/json":
        params = json.loads(row.request.body)
        params.pop(name)
        return replace(row.request, body=json.dumps(params).encode())
    pairs = [(k, v) for k, v in parse_qsl(row.request.body.decode()) if k != name]
    return replace(row.request, body=urlencode(pairs).encode())


def tampered(request: WebhookRequest) -> WebhookRequest:
    """The body with its first digit changed (a phone number, an id or a timestamp)."""
    body = re.sub(
        rb"[0-9]", lambda m: str((int(m.group()) + 1) % 10).encode(), request.body, count=1
    )
    assert body != request.body
    return replace(request, body=body)


# --- The contract ---------------------------------------------------------------------------


def test_table_covers_every_receiving_connector() -> None:
    # A new gateway without fixtures (or generated rows) would silently skip the contract.
    receiving = {c.name for c in all_connectors() if isinstance(c, CanReceive)}
    assert receiving <= {p.values[0].connector for p in ROWS}


def test_vonage_signer_matches_vonage_sdk_vectors() -> None:
    # Vectors from Vonage's own SDK tests (params a=1, b=2, timestamp; secret "secret"),
    # so the rows below are signed correctly, not merely consistently.
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert vonage_sig(params, "secret", "md5hash") == "6af838ef94998832dbfc29020b564830"
    assert vonage_sig(params, "secret", "md5") == "c15c21ced558c93a226c305f58f902f2"
    assert vonage_sig(params, "secret", "sha1") == "3e19a4e6880fdc2c1426bfd0587c98b9532f0210"
    assert (
        vonage_sig(params, "secret", "sha256")
        == "a321e824b9b816be7c3f28859a31749a098713d39f613c80d455bbaffae1cd24"
    )


@pytest.mark.parametrize("row", ROWS)
def test_verify_accepts_the_request_at_its_time(row: Row) -> None:
    row.verify()


@pytest.mark.parametrize("row", ROWS)
def test_url_token_needed_exactly_when_unsigned(row: Row) -> None:
    # Unsigned rows (Vonage with signing off) can only be authenticated by a URL token.
    connector = get_connector(row.connector)
    assert connector.requires_url_token(row.config()) is (not row.signed)


@pytest.mark.parametrize("row", SIGNED)
def test_verify_rejects_another_secret(row: Row) -> None:
    with pytest.raises(SignatureError):
        row.verify(secret=f"not-{row.secret}")


@pytest.mark.parametrize("row", SIGNED)
def test_verify_rejects_a_changed_body(row: Row) -> None:
    with pytest.raises(SignatureError):
        row.verify(tampered(row.request))


@pytest.mark.parametrize(
    ("row", "part"),
    [
        pytest.param(p.values[0], part, id=f"{p.id}-{part}")
        for p in SIGNED
        for part in p.values[0].signature_headers + p.values[0].signature_params
    ],
)
def test_verify_rejects_a_missing_signature_part(row: Row, part: str) -> None:
    request = (
        without_header(row.request, part)
        if part in row.signature_headers
        else without_param(row, part)
    )
    with pytest.raises(SignatureError, match=re.escape(part)):
        row.verify(request)


@pytest.mark.parametrize("row", TIMED)
@pytest.mark.parametrize("skew", [-301, 301], ids=["clock-301s-behind", "clock-301s-ahead"])
def test_verify_rejects_a_timestamp_301s_off(row: Row, skew: int) -> None:
    with pytest.raises(SignatureError, match="timestamp"):
        row.verify(now=row.now + timedelta(seconds=skew))


@pytest.mark.parametrize("row", TIMED)
@pytest.mark.parametrize("skew", [-300, 300], ids=["clock-300s-behind", "clock-300s-ahead"])
def test_verify_accepts_a_timestamp_300s_off(row: Row, skew: int) -> None:
    row.verify(now=row.now + timedelta(seconds=skew))


@pytest.mark.parametrize("row", ROWS)
def test_parse_gives_the_expected_event(row: Row) -> None:
    events = row.parse()
    assert len(events) == 1
    (event,) = events
    assert event.type == row.expect["type"]
    if "dedupe_id" in row.expect:
        assert event.dedupe_key == row.expect["dedupe_id"]
    assert event.dedupe_key
    # A gateway's retry of the same request must dedupe to the same key.
    assert [e.dedupe_key for e in row.parse()] == [event.dedupe_key]


#: Field-by-field expectations for the recorded fixtures, beyond type and dedupe key.
DETAILS: dict[str, dict[str, Any]] = {
    # Incoming MySMSGate SMS has no id: the key is a hash of its fields.
    "mysmsgate/incoming": {
        "from_number": "+1234567890",
        "to_number": "+1987654321",
        "body": "Hello, how are you?",
        "device_id": "your_device_uuid",
        "sim_slot": 0,
        "occurred_at": datetime(2023, 3, 15, 13, 20, tzinfo=UTC),
    },
    # Delivery reports dedupe on message id + status.
    "mysmsgate/delivery_delivered": {
        "dedupe_key": "unique_message_identifier:delivered",
        "provider_message_id": "unique_message_identifier",
        "to_number": "+1234567890",
        "error": None,
    },
    # A failure carries MySMSGate's reason.
    "mysmsgate/delivery_failed": {
        "dedupe_key": "unique_message_identifier:failed",
        "error": "RECIPIENT_UNREACHABLE",
    },
    # simNumber 1 is SIM slot 0; the envelope's deviceId is the device.
    "smsgate/sms_received": {
        "from_number": "+15550001234",
        "to_number": "+15559876543",
        "body": "JOIN news",
        "sim_slot": 0,
        "device_id": "ffffffffceb0b1db0000018e937c815b",
        "provider_message_id": "abc123",
        "occurred_at": datetime(2025, 11, 26, 10, 0, tzinfo=UTC),
    },
    # Outbound events carry our message id; partsCount is the segment count.
    "smsgate/sms_sent": {
        "provider_message_id": "out-42",
        "segments": 1,
        "to_number": "+15550001234",
    },
    "smsgate/sms_delivered": {"provider_message_id": "out-42", "sim_slot": 0},
    # simNumber 2 is slot 1; the reason is the error.
    "smsgate/sms_failed": {
        "provider_message_id": "out-43",
        "sim_slot": 1,
        "error": "RESULT_ERROR_GENERIC_FAILURE",
    },
    # Twilio inbound: MessageSid is the key, NumSegments the segments.
    "twilio/inbound_stop": {
        "dedupe_key": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "from_number": "+15550001234",
        "to_number": "+15559876543",
        "body": "stop",
        "segments": 1,
    },
    # Status callbacks dedupe on MessageSid:MessageStatus and carry ErrorCode.
    "twilio/status_undelivered": {
        "dedupe_key": "SM9a7b3c:undelivered",
        "provider_message_id": "SM9a7b3c",
        "to_number": "+15550001234",
        "error": "30003",
        "provider_status": "undelivered",
    },
    # Vonage numbers come without '+'; the connector adds it.
    "vonage/inbound": {
        "dedupe_key": "0A0000000123ABCD1",
        "from_number": "+447700900001",
        "to_number": "+447700900000",
        "body": "Hello world",
        "occurred_at": datetime(2025, 11, 26, 12, 0, tzinfo=UTC),
    },
    # In a receipt msisdn is the handset we sent to; "to" is our (alphanumeric) sender.
    "vonage/dlr_delivered": {
        "dedupe_key": "0A0000000123ABCD1:delivered",
        "to_number": "+447700900001",
        "from_number": "AcmeInc",
        "error": None,
    },
    # Simulator events carry slot and device through.
    "simulator/sms.received": {"body": "STOP", "sim_slot": 1, "device_id": "sim-device-1"},
    "simulator/sms.failed": {"provider_message_id": "sim-msg-1", "error": "SIMULATED_FAILURE"},
}


@pytest.mark.parametrize(
    ("row", "details"),
    [pytest.param(p.values[0], DETAILS[p.id], id=p.id) for p in ROWS if p.id in DETAILS],
)
def test_parse_details(row: Row, details: dict[str, Any]) -> None:
    (event,) = row.parse()
    assert {name: getattr(event, name) for name in details} == details


def test_vonage_signed_variants_parse_like_the_unsigned_fixture() -> None:
    # Signing adds sig and timestamp; the events must not change because of them.
    unsigned = {p.id: p.values[0] for p in ROWS if p.id.startswith("vonage/") and "+" not in p.id}
    for p in ROWS:
        if p.id.startswith("vonage/") and "+" in p.id:
            base = unsigned[p.id.split("+")[0]]
            (signed_event,) = p.values[0].parse()
            (plain_event,) = base.parse()
            assert replace(signed_event, raw={}) == replace(plain_event, raw={})


# --- Signing: reproduce the recorded signatures, then round-trip generated requests --------


@pytest.mark.parametrize(
    "row", [p for p in ROWS if p.values[0].signed and p.values[0].signature_headers]
)
def test_sign_reproduces_the_gateways_signature(row: Row) -> None:
    connector = get_connector(row.connector)
    assert isinstance(connector, CanSign)
    unsigned = row.request
    for name in row.signature_headers:
        unsigned = without_header(unsigned, name)
    config = row.config()
    signed = connector.sign(config, connector.signing_secret(config, row.secret), unsigned, row.now)
    for name in row.signature_headers:
        assert signed.header(name) == row.request.header(name), name


ROUND_TRIP_NOW = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
PHONE = st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True)
TEXT = st.text(max_size=400)


def generated_request(connector: str, sender: str, recipient: str, text: str) -> WebhookRequest:
    """An incoming-SMS webhook as ``connector``'s gateway would post it, unsigned."""
    url = "https://hub.example.com/webhooks/ch_gen"
    ts = int(ROUND_TRIP_NOW.timestamp())
    json_headers = {"content-type": "application/json"}
    form_headers = {"content-type": "application/x-www-form-urlencoded"}
    if connector == "simulator":
        body = sim.event_body(
            "sms.received", event_id="e1", from_number=sender, to_number=recipient, text=text
        )
        return WebhookRequest("POST", url, "", json_headers, body)
    if connector == "mysmsgate":
        body = json.dumps(
            {"from": sender, "to": recipient, "message": text, "timestamp": ts}
        ).encode()
        return WebhookRequest("POST", url + "/incoming", "incoming", json_headers, body)
    if connector == "smsgate":
        envelope = {
            "deviceId": "dev",
            "event": "sms:received",
            "id": "e1",
            "payload": {
                "messageId": "m",
                "message": text,
                "sender": sender,
                "recipient": recipient,
                "simNumber": 2,
            },
            "webhookId": "w",
        }
        return WebhookRequest("POST", url, "", json_headers, json.dumps(envelope).encode())
    if connector == "twilio":
        form = {
            "MessageSid": "SM1",
            "From": sender,
            "To": recipient,
            "Body": text,
            "NumMedia": "0",
            "ToCity": "",
        }
        return WebhookRequest(
            "POST", url + "/incoming", "incoming", form_headers, urlencode(form).encode()
        )
    if connector == "vonage":
        params = {
            "msisdn": sender[1:],
            "to": recipient[1:],
            "messageId": "m1",
            "text": text,
            "type": "text",
        }
        return WebhookRequest("POST", url, "", json_headers, json.dumps(params).encode())
    raise AssertionError(f"no generator for {connector}")


SIGNERS = [
    pytest.param("simulator", "none", id="simulator"),
    pytest.param("mysmsgate", "none", id="mysmsgate"),
    pytest.param("smsgate", "none", id="smsgate"),
    pytest.param("twilio", "none", id="twilio"),
    *[pytest.param("vonage", m, id=f"vonage-{m}") for m in VONAGE_METHODS],
]


def test_every_signing_connector_is_round_tripped() -> None:
    can_sign = {c.name for c in all_connectors() if isinstance(c, CanSign)}
    assert can_sign == {p.values[0] for p in SIGNERS}


@pytest.mark.parametrize(("connector_name", "method"), SIGNERS)
@settings(max_examples=25, deadline=None)
@given(sender=PHONE, recipient=PHONE, text=TEXT)
def test_sign_then_verify_and_parse(
    connector_name: str, method: str, sender: str, recipient: str, text: str
) -> None:
    connector = get_connector(connector_name)
    assert isinstance(connector, CanSign) and isinstance(connector, CanReceive)
    secret = "round-trip-secret"
    config = connector.parse_config(config_for(connector_name, secret, method))
    key = connector.signing_secret(config, secret)
    signed = connector.sign(
        config, key, generated_request(connector_name, sender, recipient, text), ROUND_TRIP_NOW
    )
    connector.verify(config, key, signed, ROUND_TRIP_NOW)
    (event,) = connector.parse(config, signed)
    assert (event.type, event.from_number, event.to_number, event.body) == (
        "sms.received",
        sender,
        recipient,
        text,
    )
    # And the signature is bound to the secret.
    with pytest.raises(SignatureError):
        connector.verify(config, f"{key}x", signed, ROUND_TRIP_NOW)
