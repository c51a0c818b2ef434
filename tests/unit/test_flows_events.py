"""What the engine reads from an event: the typed accessor, the contact, the reply route."""

from __future__ import annotations

from typing import Any

import pytest

from flows import SmsEventData, TriggerEvent, contact_phone_of, sms_data
from flows.events import inbound_of, reply_fields, reply_to
from flows.ports import ReplyTo

PHONE = "+15550001234"
OURS = "+15559876543"


def sms(kind: str, data: dict[str, Any]) -> TriggerEvent:
    """An ``sms.*`` event with the given data."""
    return {"id": "evt_1", "type": kind, "timestamp": "2026-01-01T00:00:00+00:00", "data": data}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        # The data object itself, extra keys and all (producers send a superset).
        ({"data": {"from": PHONE, "segments": 2}}, {"from": PHONE, "segments": 2}),
        # No data, or data that is not an object: nothing to read.
        ({"type": "sms.received"}, {}),
        ({"data": ["not", "an", "object"]}, {}),
    ],
)
def test_sms_data_is_the_data_object_or_empty(event: dict[str, Any], expected: Any) -> None:
    assert sms_data(event) == expected


def test_sms_event_data_declares_the_fields_the_engine_reads() -> None:
    assert SmsEventData.__optional_keys__ == {
        "message_id",
        "from",
        "to",
        "body",
        "channel_id",
        "device_id",
        "sim_slot",
        "received_at",
        "contact_id",
        "status",
        "error",
        "device",
        "channel",
    }
    assert not SmsEventData.__required_keys__
    assert TriggerEvent.__required_keys__ == {"id", "type", "timestamp", "data"}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        # An inbound SMS is about its sender.
        (sms("sms.received", {"from": PHONE, "to": OURS}), PHONE),
        # A delivery report is about the recipient of the message.
        (sms("sms.delivered", {"from": OURS, "to": PHONE}), PHONE),
        # A report without a recipient is about nobody.
        (sms("sms.failed", {"from": OURS}), None),
        # An HTTP body is no SMS event.
        ({"from": PHONE, "to": OURS}, None),
    ],
)
def test_contact_phone_of(event: dict[str, Any], expected: str | None) -> None:
    assert contact_phone_of(event) == expected


def test_the_reply_route_goes_back_the_way_the_sms_came() -> None:
    event = sms(
        "sms.received",
        {
            "from": PHONE,
            "body": "hi",
            "message_id": "msg_1",
            "channel_id": "ch_1",
            "device_id": "dev_1",
            "sim_slot": 1,
        },
    )
    route = inbound_of(event)
    assert route == {
        "phone": PHONE,
        "message_id": "msg_1",
        "channel_id": "ch_1",
        "device_id": "dev_1",
        "sim_slot": 1,
    }
    assert reply_to(route) == ReplyTo(
        phone=PHONE, message_id="msg_1", channel_id="ch_1", device_id="dev_1", sim_slot=1
    )
    assert inbound_of({"body": "an HTTP call"}) is None


def test_reply_fields_list_missing_fields_as_none() -> None:
    fields = reply_fields(sms_data(sms("sms.received", {"from": PHONE, "body": "yes"})))
    assert fields == {
        "body": "yes",
        "from": PHONE,
        "to": None,
        "message_id": None,
        "channel_id": None,
        "device_id": None,
        "sim_slot": None,
        "received_at": None,
    }
