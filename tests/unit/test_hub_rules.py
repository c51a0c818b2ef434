"""Pure rules of the hub: opt-out keywords, phone numbers, status order, ids, secrets."""

from __future__ import annotations

import pytest

from hub.crypto import SecretBox, hash_token
from hub.ids import new_id
from hub.phone import InvalidNumber, normalize_address, to_e164
from hub.services.keywords import classify
from hub.services.messages import moves_forward
from hub.settings import Settings, parse_schedule


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", "stop"),  # the classic
        ("stop", "stop"),  # any case
        ("  Stop.  ", "stop"),  # phones add spaces and a full stop
        ("opt out", "stop"),  # two words, listed by the carriers
        ("OPTOUT", "stop"),
        ("Unsubscribe!", "stop"),
        ("cancel", "stop"),
        ("quit", "stop"),
        ("STOPALL", "stop"),
        ("REVOKE", "stop"),
        ("END", "stop"),
        ("stop sending me offers", None),  # not a single keyword: an ordinary message
        ("please stop", None),
        ("START", "start"),
        ("unstop", "start"),
        ("yes", "start"),  # opt-in only when opted out; ingest checks that
        ("HELP", "help"),
        ("info", "help"),
        ("", None),
        (None, None),
        ("JOIN news", None),
    ],
)
def test_keyword_classification(body: str | None, expected: str | None) -> None:
    assert classify(body) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (555) 000-1234", "US", "+15550001234"),  # punctuation dropped
        ("555-000-1234", "US", "+15550001234"),  # national format, default region
        ("07700 900123", "GB", "+447700900123"),  # another region
        ("447700900001", "US", "+447700900001"),  # Vonage-style digits without "+"
    ],
)
def test_numbers_normalize_to_e164(raw: str, region: str, expected: str) -> None:
    assert to_e164(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "hello", "+1555", "12"])
def test_bad_numbers_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidNumber) as excinfo:
        to_e164(raw)
    assert str(excinfo.value)


def test_sender_ids_and_short_codes_are_kept_as_addresses() -> None:
    assert normalize_address("AMAZON") == "AMAZON"
    assert normalize_address("72345") == "72345"
    assert normalize_address("<script>") is None


@pytest.mark.parametrize(
    ("current", "new", "forward"),
    [
        ("queued", "sending", True),
        ("sending", "accepted", True),
        ("accepted", "sent", True),
        ("sent", "delivered", True),
        ("sent", "failed", True),
        ("delivered", "sent", False),  # a late "sent" after "delivered" changes nothing
        ("delivered", "failed", False),  # final is final
        ("failed", "delivered", False),
        ("sent", "sent", False),  # a repeat is not a move
        ("queued", "delivered", True),  # a fast gateway may skip steps
    ],
)
def test_status_only_moves_forward(current: str, new: str, forward: bool) -> None:
    assert moves_forward(current, new) is forward


def test_ids_sort_by_creation_time_and_are_unique() -> None:
    ids = [new_id("msg") for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("msg_") and len(i) == 30 for i in ids)
    import time

    later = (time.sleep(0.002), new_id("msg"))[1]
    assert later > max(ids)


def test_secret_box_round_trip_and_tamper_detection() -> None:
    box = SecretBox("key-one")
    token = box.encrypt("twilio-token")
    assert "twilio-token" not in token
    assert box.decrypt(token) == "twilio-token"
    with pytest.raises(ValueError, match="SECRET_KEY"):
        SecretBox("key-two").decrypt(token)
    assert box.decrypt_json(box.encrypt_json({"a": 1})) == {"a": 1}
    assert hash_token("x") != hash_token("y") and len(hash_token("x")) == 64


def test_retry_schedule_setting() -> None:
    assert parse_schedule("0, 5,300") == [0.0, 5.0, 300.0]
    with pytest.raises(ValueError):
        parse_schedule("soon")
    with pytest.raises(ValueError):
        Settings(delivery_retry_schedule="-1")
    assert Settings(delivery_retry_schedule="1,2").retry_schedule == [1.0, 2.0]
