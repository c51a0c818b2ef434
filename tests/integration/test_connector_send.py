"""Each connector's ``send`` over real HTTP (hub.http_client.AiohttpClient) against a local
fake of its provider: the exact request the provider receives, the id read from its
answer, and which failures the hub may retry."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from connectors import HttpResponse, SendError, SendRequest, SendResult, get_connector
from connectors.simulator import SIMULATED_ERROR, delivery_fails
from hub.http_client import AiohttpClient
from tests.fakes.providers import FakeProvider, vonage_answer

SID = "AC" + "a1" * 16
MSG = SendRequest(message_id="msg_01HZX", to="+15550001234", text="Hello from smshub")

#: Credentials each fake expects, and the channel config that carries them.
CREDENTIALS: dict[str, dict[str, str]] = {
    "mysmsgate": {"api_key": "msg-api-key"},
    "smsgate": {"username": "gate-user", "password": "gate-pass"},
    "twilio": {"account_sid": SID, "auth_token": "twilio-token"},
    "vonage": {"api_key": "vk", "api_secret": "vs"},
}
EXTRA_CONFIG: dict[str, dict[str, Any]] = {
    "mysmsgate": {},
    "smsgate": {},
    "twilio": {"from_number": "+15559876543"},
    "vonage": {"from_number": "+15559876543"},
}

StartFake = Callable[[str], Awaitable[FakeProvider]]


@pytest.fixture
async def http() -> AsyncIterator[AiohttpClient]:
    client = AiohttpClient()
    yield client
    await client.close()


@pytest.fixture
async def start_fake() -> AsyncIterator[StartFake]:
    """Start fakes on demand; all are closed after the test."""
    started: list[FakeProvider] = []

    async def start(provider: str) -> FakeProvider:
        fake = await FakeProvider(provider, **CREDENTIALS[provider]).start()  # type: ignore[arg-type]
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.close()


async def send(
    provider: str,
    fake: FakeProvider | str,
    http: AiohttpClient,
    message: SendRequest = MSG,
    **config: Any,
) -> SendResult:
    base_url = fake if isinstance(fake, str) else fake.base_url
    connector: Any = get_connector(provider)
    raw = {**CREDENTIALS[provider], **EXTRA_CONFIG[provider], "base_url": base_url, **config}
    return await connector.send(connector.parse_config(raw), message, http)  # type: ignore[no-any-return]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- The exact requests -------------------------------------------------------------------


async def test_mysmsgate_send(start_fake: StartFake, http: AiohttpClient) -> None:
    fake = await start_fake("mysmsgate")
    result = await send("mysmsgate", fake, http)
    (req,) = fake.requests
    assert (req.method, req.path) == ("POST", "/api/v1/send")
    assert req.headers["authorization"] == "Bearer msg-api-key"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {"to": "+15550001234", "message": "Hello from smshub"}
    assert (result.provider_message_id, result.status) == ("sms_1", "queued")


async def test_mysmsgate_send_with_device_and_slot(
    start_fake: StartFake, http: AiohttpClient
) -> None:
    fake = await start_fake("mysmsgate")
    # Some MySMSGate answers name the id sms_id.
    fake.mysmsgate_id_field = "sms_id"
    message = SendRequest(
        message_id="m2", to="+15550001234", text="hi", device_id="dev-7", sim_slot=1
    )
    result = await send("mysmsgate", fake, http, message)
    assert fake.requests[0].json() == {
        "to": "+15550001234",
        "message": "hi",
        "device_id": "dev-7",
        "slot": 1,
    }
    assert result.provider_message_id == "sms_1"


@pytest.mark.parametrize(
    ("mode", "path"),
    [
        # The cloud and a private server share the 3rd-party API ...
        ("cloud", "/3rdparty/v1/messages"),
        ("private", "/3rdparty/v1/messages"),
        # ... the phone's own server has its short path.
        ("local", "/message"),
    ],
)
async def test_smsgate_send(
    start_fake: StartFake, http: AiohttpClient, mode: str, path: str
) -> None:
    fake = await start_fake("smsgate")
    message = SendRequest(
        message_id="msg_01HZX", to="+15550001234", text="Hi", device_id="dev-1", sim_slot=1
    )
    result = await send("smsgate", fake, http, message, mode=mode)
    (req,) = fake.requests
    assert (req.method, req.path) == ("POST", path)
    assert req.headers["authorization"] == basic("gate-user", "gate-pass")
    expected: dict[str, Any] = {
        "id": "msg_01HZX",
        "textMessage": {"text": "Hi"},
        "phoneNumbers": ["+15550001234"],
        "withDeliveryReport": True,
        # SIM slot 1 is the app's SIM number 2.
        "simNumber": 2,
    }
    if mode != "local":
        expected["deviceId"] = "dev-1"  # the phone's own server has one device: no deviceId
    assert req.json() == expected
    # Our message id is the app's message id: that is what makes resending harmless.
    assert (result.provider_message_id, result.status) == ("msg_01HZX", "queued")


async def test_smsgate_resend_is_recognised_as_already_sent(
    start_fake: StartFake, http: AiohttpClient
) -> None:
    fake = await start_fake("smsgate")
    first = await send("smsgate", fake, http)
    # The second attempt (say, after a timeout that hid the first answer) gets 409.
    second = await send("smsgate", fake, http)
    assert len(fake.requests) == 2
    assert first.provider_message_id == second.provider_message_id == MSG.message_id


async def test_smsgate_rejects_a_fourth_sim(start_fake: StartFake, http: AiohttpClient) -> None:
    fake = await start_fake("smsgate")
    with pytest.raises(SendError, match="SIM slots 0 to 2") as excinfo:
        await send(
            "smsgate", fake, http, SendRequest(message_id="m", to="+1555", text="x", sim_slot=3)
        )
    assert not excinfo.value.retryable
    assert fake.requests == []


async def test_twilio_send(start_fake: StartFake, http: AiohttpClient) -> None:
    fake = await start_fake("twilio")
    message = SendRequest(
        message_id="m1",
        to="+15550001234",
        text="Hello & welcome",
        status_callback_url="https://hub.example.com/webhooks/ch_t/status",
    )
    result = await send("twilio", fake, http, message)
    (req,) = fake.requests
    assert (req.method, req.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert req.headers["authorization"] == basic(SID, "twilio-token")
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.form() == {
        "To": "+15550001234",
        "From": "+15559876543",
        "Body": "Hello & welcome",
        "StatusCallback": "https://hub.example.com/webhooks/ch_t/status",
    }
    assert (result.provider_message_id, result.status) == (f"SM{1:032x}", "queued")


@pytest.mark.parametrize(
    ("message_from", "config", "expected"),
    [
        # A messaging service picks the sender from its pool ...
        (
            None,
            {"messaging_service_sid": "MG" + "0" * 32},
            {"MessagingServiceSid": "MG" + "0" * 32},
        ),
        # ... unless routing chose a number.
        ("+15551112222", {"messaging_service_sid": "MG" + "0" * 32}, {"From": "+15551112222"}),
        # Without a service, the configured number.
        (None, {}, {"From": "+15559876543"}),
    ],
)
async def test_twilio_sender_choice(
    start_fake: StartFake,
    http: AiohttpClient,
    message_from: str | None,
    config: dict[str, Any],
    expected: dict[str, str],
) -> None:
    fake = await start_fake("twilio")
    message = SendRequest(message_id="m", to="+15550001234", text="x", from_number=message_from)
    await send("twilio", fake, http, message, **config)
    form = fake.requests[0].form()
    assert {k: form[k] for k in ("From", "MessagingServiceSid") if k in form} == expected


async def test_twilio_without_any_sender_sends_nothing(
    start_fake: StartFake, http: AiohttpClient
) -> None:
    fake = await start_fake("twilio")
    with pytest.raises(SendError, match="needs a sender") as excinfo:
        await send("twilio", fake, http, from_number=None)
    assert not excinfo.value.retryable
    assert fake.requests == []


async def test_vonage_send(start_fake: StartFake, http: AiohttpClient) -> None:
    fake = await start_fake("vonage")
    result = await send("vonage", fake, http)
    (req,) = fake.requests
    assert (req.method, req.path) == ("POST", "/sms/json")
    assert "authorization" not in req.headers  # credentials travel in the form
    assert req.form() == {
        "api_key": "vk",
        "api_secret": "vs",
        # Vonage wants numbers without '+'.
        "from": "15559876543",
        "to": "15550001234",
        "text": "Hello from smshub",
        "client-ref": "msg_01HZX",
    }
    assert (result.provider_message_id, result.status) == ("0A00000000000001", "queued")


async def test_vonage_unicode_text_and_callback(start_fake: StartFake, http: AiohttpClient) -> None:
    fake = await start_fake("vonage")
    message = SendRequest(
        message_id="m",
        to="+447700900001",
        text="Привет 👋",
        from_number="AcmeInc",
        status_callback_url="https://hub/cb",
    )
    await send("vonage", fake, http, message)
    form = fake.requests[0].form()
    # Text outside GSM-7 must be flagged or Vonage mangles it; an alphanumeric sender stays.
    assert (form["type"], form["text"], form["from"], form["callback"]) == (
        "unicode",
        "Привет 👋",
        "AcmeInc",
        "https://hub/cb",
    )


@pytest.mark.parametrize(
    ("parts", "retryable"),
    [
        # Throttled: try again later.
        ([{"status": "1", "error-text": "Throttled"}], True),
        # Invalid parameters, bad credentials, partner quota: trying again won't help.
        ([{"status": "3", "error-text": "Invalid to param"}], False),
        ([{"status": "4", "error-text": "Bad Credentials"}], False),
        ([{"status": "9", "error-text": "Partner quota exceeded"}], False),
        # One part went out: retrying would send it twice.
        ([{"status": "0", "message-id": "p1"}, {"status": "1", "error-text": "Throttled"}], False),
    ],
)
async def test_vonage_refusals(
    start_fake: StartFake, http: AiohttpClient, parts: list[dict[str, str]], retryable: bool
) -> None:
    fake = await start_fake("vonage")
    fake.fail_with(200, vonage_answer(*parts))
    with pytest.raises(SendError, match="Vonage refused the SMS: status") as excinfo:
        await send("vonage", fake, http)
    assert excinfo.value.retryable is retryable


async def test_vonage_long_text_keeps_the_first_parts_id(
    start_fake: StartFake, http: AiohttpClient
) -> None:
    fake = await start_fake("vonage")
    fake.fail_with(
        200, vonage_answer({"status": "0", "message-id": "p1"}, {"status": "0", "message-id": "p2"})
    )
    result = await send("vonage", fake, http)
    assert result.provider_message_id == "p1"
    assert [p["message-id"] for p in result.raw["messages"]] == ["p1", "p2"]


# --- Failures: which the hub may retry ----------------------------------------------------

PROVIDERS = ["mysmsgate", "smsgate", "twilio", "vonage"]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        # The provider is down or overloaded: later may work.
        (500, True),
        (503, True),
        # Rate limited: later will work.
        (429, True),
        # Our request is wrong, or our credentials: sending it again won't help.
        (400, False),
        (401, False),
        (404, False),
    ],
)
async def test_http_errors(
    start_fake: StartFake, http: AiohttpClient, provider: str, status: int, retryable: bool
) -> None:
    fake = await start_fake(provider)
    fake.fail_with(status, {"message": "nope", "code": 12345})
    with pytest.raises(SendError) as excinfo:
        await send(provider, fake, http)
    assert (excinfo.value.retryable, excinfo.value.status_code) == (retryable, status)
    # The provider's own words make it into the error.
    assert f"HTTP {status}: nope (code 12345)" in str(excinfo.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_timeout_is_retryable(
    start_fake: StartFake, http: AiohttpClient, provider: str
) -> None:
    fake = await start_fake(provider)
    fake.hang()
    with pytest.raises(SendError, match=r"no answer within 0\.2s") as excinfo:
        await send(provider, fake, http, timeout_s=0.2)
    assert excinfo.value.retryable
    assert len(fake.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_connection_refused_is_retryable(http: AiohttpClient, provider: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SendError, match="network error") as excinfo:
        await send(provider, f"http://127.0.0.1:{port}", http)
    assert excinfo.value.retryable


@pytest.mark.parametrize("provider", ["mysmsgate", "smsgate", "twilio"])
async def test_wrong_credentials_are_not_retried(
    start_fake: StartFake, http: AiohttpClient, provider: str
) -> None:
    fake = await start_fake(provider)
    secret_field = {"mysmsgate": "api_key", "smsgate": "password", "twilio": "auth_token"}[provider]
    with pytest.raises(SendError) as excinfo:
        await send(provider, fake, http, MSG, **{secret_field: "wrong"})
    assert (excinfo.value.retryable, excinfo.value.status_code) == (False, 401)


@pytest.mark.parametrize(
    ("provider", "retryable"),
    [
        # The SMS may have gone out; without an idempotency key a retry could send it twice.
        ("mysmsgate", False),
        ("twilio", False),
        ("vonage", False),
        # SMSGate deduplicates on our id, so trying again is safe.
        ("smsgate", True),
    ],
)
async def test_unreadable_success(
    start_fake: StartFake, http: AiohttpClient, provider: str, retryable: bool
) -> None:
    fake = await start_fake(provider)
    fake.fail_with(202, b"<html>Accepted</html>")
    with pytest.raises(SendError, match="not JSON") as excinfo:
        await send(provider, fake, http)
    assert excinfo.value.retryable is retryable


# --- The simulator: no I/O, follow-ups instead ---------------------------------------------


class NoNetwork:
    """An HttpClient that fails the test if used."""

    async def request(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        raise AssertionError(f"the simulator made a request: {method} {url}")


async def sim_send(message: SendRequest = MSG, **config: Any) -> SendResult:
    connector: Any = get_connector("simulator")
    return await connector.send(connector.parse_config(config), message, NoNetwork())  # type: ignore[no-any-return]


def fields(event: Any, names: Mapping[str, Any]) -> dict[str, Any]:
    return {name: getattr(event, name) for name in names}


async def test_simulator_delivers_and_loops_back() -> None:
    result = await sim_send(delivery_delay_s=2.5, phone_number="+15550100000")
    assert (result.provider_message_id, result.status) == ("sim-msg_01HZX", "sent")
    report, arrival = result.followups
    # The delivery report, on the sending channel, after the configured delay.
    assert (report.delay_s, report.to_channel_number) == (2.5, None)
    expected_report = {
        "type": "sms.delivered",
        "dedupe_key": "sim-msg_01HZX:delivered",
        "provider_message_id": "sim-msg_01HZX",
        "from_number": "+15550100000",
        "to_number": "+15550001234",
        "device_id": "sim-device-1",
        "sim_slot": 0,
        "error": None,
    }
    assert fields(report.event, expected_report) == expected_report
    # The SMS arriving at the recipient, for whichever simulator channel owns that number.
    assert (arrival.delay_s, arrival.to_channel_number) == (2.5, "+15550001234")
    expected_arrival = {
        "type": "sms.received",
        "from_number": "+15550100000",
        "to_number": "+15550001234",
        "body": "Hello from smshub",
        "segments": 1,
    }
    assert fields(arrival.event, expected_arrival) == expected_arrival


async def test_simulator_failure_sends_no_loop_back() -> None:
    result = await sim_send(failure_rate=1.0)
    (report,) = result.followups
    assert (report.event.type, report.event.error, report.event.dedupe_key) == (
        "sms.failed",
        SIMULATED_ERROR,
        "sim-msg_01HZX:failed",
    )


async def test_simulator_is_idempotent() -> None:
    # The same hub message gives the same id and the same outcome, whatever the rate.
    first, again = await sim_send(failure_rate=0.5), await sim_send(failure_rate=0.5)
    assert first == again


def test_simulator_failure_rate_is_honoured() -> None:
    ids = [f"msg_{n}" for n in range(2000)]
    assert not any(delivery_fails(i, 0.0) for i in ids)
    assert all(delivery_fails(i, 1.0) for i in ids)
    share = sum(delivery_fails(i, 0.3) for i in ids) / len(ids)
    assert 0.25 < share < 0.35


async def test_simulator_uses_the_chosen_sender_and_slot() -> None:
    message = SendRequest(
        message_id="m", to="+15550002222", text="x", from_number="+15550109999", sim_slot=1
    )
    result = await sim_send(message)
    report = result.followups[0].event
    assert (report.from_number, report.sim_slot) == ("+15550109999", 1)


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        # Two SIM slots by default: 0 and 1.
        (SendRequest(message_id="m", to="+1555", text="x", sim_slot=2), "no slot 2"),
    ],
)
async def test_simulator_refuses_impossible_routes(message: SendRequest, complaint: str) -> None:
    with pytest.raises(SendError, match=complaint) as excinfo:
        await sim_send(message)
    assert not excinfo.value.retryable


async def test_simulator_stands_for_any_device_routing_picks() -> None:
    # One simulator channel simulates a fleet, so routing across devices can be tried out.
    result = await sim_send(SendRequest(message_id="m", to="+1555", text="x", device_id="phone-7"))
    assert result.followups[0].event.device_id == "phone-7"
