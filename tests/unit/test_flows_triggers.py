"""Trigger index: which published flows an event starts."""

from __future__ import annotations

from typing import Any

import pytest

from flows import PublishedFlow, TriggerIndex, TriggerMatch


def _trigger(node_type: str, **config: Any) -> dict[str, Any]:
    return {
        "name": "t",
        "nodes": [{"id": "start", "type": node_type, "config": config}],
        "edges": [],
    }


FLOWS = {
    "join": _trigger("trigger.sms_received", match="first_word", keywords=["JOIN", "start"]),
    "help": _trigger("trigger.sms_received", match="exact", keywords=["help me"]),
    "pizza": _trigger("trigger.sms_received", match="contains", keywords=["pizza"]),
    "order": _trigger("trigger.sms_received", match="regex", pattern=r"^order\s+(\d+)$"),
    "any_ch2": _trigger("trigger.sms_received", match="any", channels=["ch_2"]),
    "vip": _trigger(
        "trigger.sms_received", match="first_word", keywords=["VIP"], senders=["+1 555 000-9999"]
    ),
    "failed": _trigger("trigger.delivery_status", statuses=["failed"]),
    "delivered_ch2": _trigger("trigger.delivery_status", statuses=["delivered"], channels=["ch_2"]),
    "hook": _trigger("trigger.http"),
}
INDEX = TriggerIndex.build(PublishedFlow(fid, 3, doc) for fid, doc in FLOWS.items())


def sms(body: str, sender: str = "+15550001234", channel: str = "ch_1") -> dict[str, Any]:
    return {
        "id": "e",
        "type": "sms.received",
        "data": {"from": sender, "to": "+15559876543", "body": body, "channel_id": channel},
    }


def status(kind: str, channel: str = "ch_1", **data: Any) -> dict[str, Any]:
    return {
        "id": "e",
        "type": kind,
        "data": {"to": "+15550001234", "channel_id": channel, "sim_slot": 0, **data},
    }


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    # first_word: case-insensitive, the rest of the message is free.
    ("first word", sms("join news"), {"join"}),
    ("first word any case", sms("JoIn"), {"join"}),
    ("second keyword of a trigger", sms("Start now"), {"join"}),
    ("punctuation after the keyword", sms("JOIN!"), {"join"}),
    ("leading spaces", sms("   join   us"), {"join"}),
    ("keyword not first", sms("please join"), set()),
    ("keyword as a prefix only", sms("joining"), set()),
    # exact: the whole message (spaces collapsed, trailing punctuation ignored).
    ("exact", sms("Help me"), {"help"}),
    ("exact with extra spaces", sms("  help   ME. "), {"help"}),
    ("exact with more words", sms("help me please"), set()),
    # contains: anywhere, any case.
    ("contains", sms("I want PIZZA tonight"), {"pizza"}),
    ("contains inside a word", sms("pizzas!"), {"pizza"}),
    # regex: searched case-insensitively.
    ("regex", sms("ORDER 42"), {"order"}),
    ("regex mismatch", sms("order forty"), set()),
    # channel filter.
    ("any, on its channel", sms("whatever", channel="ch_2"), {"any_ch2"}),
    ("any and a keyword", sms("join", channel="ch_2"), {"any_ch2", "join"}),
    # sender filter, numbers compared without spaces and dashes.
    ("sender allowed", sms("vip", sender="+15550009999"), {"vip"}),
    ("sender not allowed", sms("vip", sender="+15550001111"), set()),
    # delivery statuses from the event type (or data.status) and channel filter.
    ("failed", status("sms.failed"), {"failed"}),
    ("failed with status field", status("sms.failed", status="failed"), {"failed"}),
    ("delivered on ch_2", status("sms.delivered", channel="ch_2"), {"delivered_ch2"}),
    ("delivered elsewhere", status("sms.delivered"), set()),
    ("sent starts nothing here", status("sms.sent"), set()),
    # Other events start nothing; an inbound SMS never starts a delivery trigger.
    ("unknown event", {"type": "contact.updated", "data": {}}, set()),
    ("empty body", sms(""), set()),
]


@pytest.mark.parametrize(
    ("event", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_matching_table(event: dict[str, Any], expected: set[str]) -> None:
    matches = INDEX.match(event)
    assert {m.flow_id for m in matches} == expected
    assert all(m.version == 3 and m.node_id == "start" for m in matches)


def test_http_trigger_is_found_by_flow_id() -> None:
    assert INDEX.match_http("hook") == TriggerMatch("hook", 3, "start")
    assert INDEX.match_http("join") is None


def test_one_run_per_flow_even_with_two_matching_triggers() -> None:
    doc = {
        "name": "two",
        "edges": [],
        "nodes": [
            {"id": "a", "type": "trigger.sms_received", "config": {"match": "any"}},
            {
                "id": "b",
                "type": "trigger.sms_received",
                "config": {"match": "contains", "keywords": ["x"]},
            },
        ],
    }
    index = TriggerIndex.build([PublishedFlow("two", 1, doc)])
    assert index.match(sms("x")) == [TriggerMatch("two", 1, "a")]


def test_invalid_trigger_configs_are_skipped_not_fatal() -> None:
    bad = _trigger("trigger.sms_received", match="regex")  # no pattern
    index = TriggerIndex.build(
        [PublishedFlow("bad", 1, bad), PublishedFlow("ok", 1, FLOWS["join"])]
    )
    assert [m.flow_id for m in index.match(sms("join"))] == ["ok"]


def test_keyword_lookup_does_not_scan_every_keyword_flow() -> None:
    many = [
        PublishedFlow(
            f"f{i}", 1, _trigger("trigger.sms_received", match="first_word", keywords=[f"kw{i}"])
        )
        for i in range(2000)
    ]
    index = TriggerIndex.build(many)
    assert [m.flow_id for m in index.match(sms("KW1234 hello"))] == ["f1234"]
