"""Presets: which URLs look like Zapier / Make / n8n, and the flat body they get."""

from __future__ import annotations

from typing import Any

import pytest

from hub.delivery.presets import check_url, infer_preset, shape_body


@pytest.mark.parametrize(
    ("preset", "url"),
    [
        ("zapier", "https://hooks.zapier.com/hooks/catch/1/abc/"),  # Catch Hook
        ("zapier", "https://hooks.zapier.com/hooks/catch/123456/b3x9q2z"),  # no trailing slash
        ("zapier", "https://hooks.zapier.com/hooks/standard/98765/f00ba4/"),  # REST Hook target
        ("make", "https://hook.eu1.make.com/abcdefghij0123456789klmnopqrstuv"),  # EU zone
        ("make", "https://hook.us2.make.com/x1y2z3"),  # US zone
        ("make", "https://hook.integromat.com/abc123"),  # the old host still forwards
        ("n8n", "https://n8n.example.com/webhook/sms-in"),  # production URL
        ("n8n", "https://n8n.example.com/webhook-test/sms-in"),  # editor listening
        ("n8n", "https://acme.app.n8n.cloud/webhook/0f6c-4b1e/sms"),  # n8n cloud, nested path
        ("n8n", "http://192.168.1.20:5678/webhook/sms"),  # self-hosted (the guard decides http)
        ("generic", "https://anything.example/at/all"),  # generic takes any URL
    ],
)
def test_urls_that_look_right(preset: str, url: str) -> None:
    assert check_url(preset, url) == []


@pytest.mark.parametrize(
    ("preset", "url", "hint"),
    [
        ("zapier", "https://hook.eu1.make.com/abc", "Zapier Catch Hook"),  # a Make URL
        ("zapier", "https://hooks.zapier.com/hooks/catch/abc/", "Zapier Catch Hook"),  # no ids
        ("zapier", "http://hooks.zapier.com/hooks/catch/1/abc/", "https://"),  # not https
        ("zapier", "https://zapier.com/hooks/catch/1/abc/", "Zapier Catch Hook"),  # wrong host
        ("make", "https://hooks.zapier.com/hooks/catch/1/abc/", "Make custom webhook"),
        ("make", "https://hook.eu1.make.com/", "Make custom webhook"),  # no token
        ("make", "https://make.com/abc", "Make custom webhook"),  # not the hook host
        ("make", "https://hook.eu1.make.com.evil.example/abc", "Make custom webhook"),  # suffix
        ("n8n", "https://n8n.example.com/sms-in", "/webhook/"),  # missing /webhook/
        ("n8n", "https://n8n.example.com/webhook/", "/webhook/"),  # no path after it
        ("nope", "https://example.com/", "unknown preset"),  # not a preset
    ],
)
def test_urls_that_do_not_look_right_say_why(preset: str, url: str, hint: str) -> None:
    problems = check_url(preset, url)
    assert problems and hint in " ".join(problems)


@pytest.mark.parametrize(
    ("url", "preset"),
    [
        ("https://hooks.zapier.com/hooks/standard/1/abc/", "zapier"),
        ("https://hook.eu2.make.com/abc", "make"),
        ("https://n8n.example.com/webhook/x", "n8n"),
        ("https://example.com/hook", "generic"),
    ],
)
def test_infer_preset(url: str, preset: str) -> None:
    assert infer_preset(url) == preset


EVENT: dict[str, Any] = {
    "id": "evt_1",
    "type": "sms.received",
    "timestamp": "2026-11-26T12:00:00.000Z",
    "data": {
        "message_id": "msg_1",
        "from": "+15550001234",
        "body": "JOIN news",
        "sim_slot": 0,
        "meta": {"carrier": {"name": "Acme"}, "tags": ["a", "b"]},
        "timestamp": "clash",
    },
}


@pytest.mark.parametrize("preset", ["zapier", "make", "n8n"])
def test_events_are_flattened_for_automation_services(preset: str) -> None:
    assert shape_body(preset, EVENT) == {
        "event_id": "evt_1",
        "event_type": "sms.received",
        "timestamp": "2026-11-26T12:00:00.000Z",
        "message_id": "msg_1",
        "from": "+15550001234",
        "body": "JOIN news",
        "sim_slot": 0,
        "meta__carrier__name": "Acme",  # nested objects joined with __
        "meta__tags": ["a", "b"],  # lists kept as they are
        "data__timestamp": "clash",  # a data field that clashes keeps a prefix
    }


def test_generic_and_non_objects_are_sent_as_they_are() -> None:
    assert shape_body("generic", EVENT) is EVENT
    assert shape_body("zapier", "plain text") == "plain text"
    assert shape_body("zapier", [1, {"a": {"b": 1}}]) == [1, {"a": {"b": 1}}]
    assert shape_body("zapier", {"a": {"b": 1}, "c": {}}) == {"a__b": 1, "c": {}}


def test_an_already_flat_body_is_unchanged() -> None:
    flat = {"event_id": "evt_1", "event_type": "sms.received", "body": "hi"}
    assert shape_body("zapier", flat) == flat
