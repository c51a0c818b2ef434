"""Vonage's parts of a long inbound SMS: the concat-* fields become ``InboundEvent.part``
(the hub joins them); whole SMS and the other gateways report no part."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from connectors import InboundEvent, MessagePart, PayloadError, WebhookRequest, get_connector
from tests.fakes.webhooks import vonage_sig
from tests.helpers import load_gateway_fixtures

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
URL = "https://hub.example.com/webhooks/ch_x"
SECRET = "vonage-signature-secret"
#: A part as Vonage posts it (its docs' inbound fields plus the concat ones, all strings).
PART = {
    "msisdn": "447700900001",
    "to": "447700900000",
    "messageId": "0A0000001234567B",
    "text": "the second part of a long message, ",
    "type": "text",
    "keyword": "THE",
    "api-key": "abcd1234",
    "message-timestamp": "2026-03-01 08:59:58",
    "concat": "true",
    "concat-ref": "108",
    "concat-total": "3",
    "concat-part": "2",
}


def signed(params: dict[str, Any], *, form: bool = True) -> WebhookRequest:
    """The request Vonage sends for ``params``, signed with SHA-256 as its docs say."""
    values = {**{k: str(v) for k, v in params.items()}, "timestamp": str(int(NOW.timestamp()))}
    values["sig"] = vonage_sig(values, SECRET, "sha256")
    if form:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        return WebhookRequest("POST", URL, "", headers, urlencode(values).encode())
    return WebhookRequest(
        "POST", URL, "", {"content-type": "application/json"}, json.dumps(values).encode()
    )


def parse(request: WebhookRequest) -> list[InboundEvent]:
    vonage: Any = get_connector("vonage")
    config = vonage.parse_config({"api_key": "k", "api_secret": "s", "signature_method": "sha256"})
    vonage.verify(config, SECRET, request, NOW)
    events: list[InboundEvent] = vonage.parse(config, request)
    return events


@pytest.mark.parametrize("form", [True, False], ids=["form", "json"])
def test_a_signed_part_says_which_part_of_which_message_it_is(form: bool) -> None:
    (event,) = parse(signed(PART, form=form))
    assert event.part == MessagePart(ref="108", total=3, number=2)
    # Each part is deduped on its own id; the text is the part's alone.
    assert event.dedupe_key == event.provider_message_id == "0A0000001234567B"
    assert event.body == "the second part of a long message, "
    assert (event.from_number, event.to_number) == ("+447700900001", "+447700900000")


def test_json_numbers_and_booleans_are_read_too() -> None:
    body = {**PART, "concat": True, "concat-total": 3, "concat-part": 3}
    request = WebhookRequest(
        "POST", URL, "", {"content-type": "application/json"}, json.dumps(body).encode()
    )
    vonage: Any = get_connector("vonage")
    config = vonage.parse_config({"api_key": "k", "api_secret": "s", "signature_method": "none"})
    (event,) = vonage.parse(config, request)
    assert event.part == MessagePart(ref="108", total=3, number=3)


@pytest.mark.parametrize(
    "change",
    [
        # No concat fields at all: an SMS that came whole.
        {"concat": None, "concat-ref": None, "concat-total": None, "concat-part": None},
        # concat=false (some accounts send the fields on every SMS).
        {"concat": "false"},
        # A "long" message of one part is a whole SMS.
        {"concat-total": "1", "concat-part": "1"},
    ],
    ids=["absent", "false", "one-part"],
)
def test_a_whole_sms_has_no_part(change: dict[str, str | None]) -> None:
    params = {k: v for k, v in {**PART, **change}.items() if v is not None}
    (event,) = parse(signed(params))
    assert event.part is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # The reference is what joins the parts: without it nothing can be joined.
        ({"concat-ref": None}, "missing field concat-ref"),
        ({"concat-total": None}, "missing field concat-total"),
        ({"concat-part": None}, "missing field concat-part"),
        ({"concat-part": "4"}, "concat-part (4) is past concat-total (3)"),
        ({"concat-part": "0"}, "concat-part must be at least 1"),
        ({"concat-total": "two"}, "concat-total must be an integer"),
        # The concatenation header counts parts in one byte.
        ({"concat-total": "300", "concat-part": "1"}, "concat-total must be at most 255"),
    ],
    ids=["no-ref", "no-total", "no-part", "part-past-total", "part-zero", "not-a-number", "huge"],
)
def test_unusable_concat_fields_are_a_clear_payload_error(
    change: dict[str, str | None], message: str
) -> None:
    params = {k: v for k, v in {**PART, **change}.items() if v is not None}
    with pytest.raises(PayloadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(signed(params))


def test_the_part_survives_the_events_json_round_trip() -> None:
    (event,) = parse(signed(PART))
    again = InboundEvent.from_json(json.loads(json.dumps(event.to_json())))
    assert again.part == event.part
    assert again == InboundEvent.from_json(event.to_json())


def test_no_recorded_gateway_fixture_is_a_part() -> None:
    """Twilio hands over long SMS whole (NumSegments); SMS Gateway for Android and
    MySMSGate report no parts; Vonage's recorded SMS is a short one."""
    for fixture in load_gateway_fixtures():
        connector: Any = get_connector(fixture.connector)
        config = connector.parse_config(fixture.channel_config())
        path = fixture.path.rsplit("/", 1)[-1]
        request = WebhookRequest(
            "POST",
            f"https://hub.example.com{fixture.path}",
            path if path in ("incoming", "status") else "",  # type: ignore[arg-type]
            {k.lower(): v for k, v in fixture.headers.items()},
            fixture.body,
        )
        for event in connector.parse(config, request):
            assert event.part is None, fixture.id
