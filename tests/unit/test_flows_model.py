"""Flow document model: parsing, canonical export, retry policy."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from flows import Flow, RetryPolicy, dump_flow, export_flow, parse_flow
from flows.examples import example_names, load_example

DESIGN_EXAMPLE = {
    "name": "JOIN keyword",
    "nodes": [
        {
            "id": "start",
            "type": "trigger.sms_received",
            "config": {"match": "first_word", "keywords": ["JOIN"]},
        },
        {
            "id": "welcome",
            "type": "sms.reply",
            "config": {"text": "Welcome! Reply STOP to opt out."},
        },
        {
            "id": "zap",
            "type": "http.request",
            "config": {"preset": "zapier", "url": "https://hooks.zapier.com/hooks/catch/1/abc/"},
        },
    ],
    "edges": [{"from": "start", "to": "welcome"}, {"from": "welcome", "to": "zap"}],
}


def test_parses_the_design_example_with_default_port() -> None:
    flow = parse_flow(DESIGN_EXAMPLE)
    assert [n.id for n in flow.nodes] == ["start", "welcome", "zap"]
    assert flow.edges[0].from_ == "start" and flow.edges[0].port == "next"
    assert flow.next_node("start", "next") == "welcome"
    assert flow.next_node("zap", "next") is None
    assert flow.node("zap") is not None and flow.node("nope") is None


def test_parses_json_text() -> None:
    assert parse_flow(json.dumps(DESIGN_EXAMPLE)).name == "JOIN keyword"


def test_export_is_canonical_regardless_of_input_order() -> None:
    shuffled = {
        "edges": list(reversed(DESIGN_EXAMPLE["edges"])),
        "nodes": list(reversed(DESIGN_EXAMPLE["nodes"])),
        "name": "JOIN keyword",
    }
    assert export_flow(parse_flow(shuffled)) == export_flow(parse_flow(DESIGN_EXAMPLE))


def test_export_layout() -> None:
    text = export_flow(parse_flow(DESIGN_EXAMPLE))
    assert text.endswith("}\n")
    assert '\n  "nodes": [\n' in text  # indent 2
    data = json.loads(text)
    assert [n["id"] for n in data["nodes"]] == ["start", "welcome", "zap"]
    assert list(data["nodes"][0]) == ["id", "type", "config"]  # no empty ui / retry
    assert data["edges"][0] == {"from": "start", "port": "next", "to": "welcome"}
    assert list(data["nodes"][2]["config"]) == ["preset", "url"]  # keys sorted


def test_export_keeps_list_order_inside_config() -> None:
    flow = parse_flow(
        {
            "name": "x",
            "nodes": [
                {
                    "id": "s",
                    "type": "logic.switch",
                    "config": {
                        "value": "v",
                        "cases": [{"port": "b", "equals": "2"}, {"port": "a", "equals": "1"}],
                    },
                }
            ],
        }
    )
    cases = dump_flow(flow)["nodes"][0]["config"]["cases"]
    assert [c["port"] for c in cases] == ["b", "a"]


@pytest.mark.parametrize("name", example_names())
def test_examples_round_trip_through_export(name: str) -> None:
    flow = parse_flow(load_example(name))
    again = parse_flow(export_flow(flow))
    assert export_flow(again) == export_flow(flow)
    assert dump_flow(again) == dump_flow(flow)


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_flow({**DESIGN_EXAMPLE, "nodez": []})
    with pytest.raises(ValidationError):
        Flow.model_validate({"name": "x", "nodes": [{"id": "a", "type": "t", "cfg": {}}]})


@pytest.mark.parametrize(
    "node_id",
    [
        "",  # empty
        "a:b",  # colons would make idempotency keys ambiguous
        "1abc",  # must start with a letter or underscore
        "a" * 65,  # too long
        "has space",
    ],
)
def test_bad_node_ids(node_id: str) -> None:
    with pytest.raises(ValidationError):
        parse_flow({"name": "x", "nodes": [{"id": node_id, "type": "flow.stop"}]})


def test_retry_policy_backoff() -> None:
    policy = RetryPolicy(attempts=4, backoff_s=10, factor=3)
    assert [policy.delay_before(n) for n in (1, 2, 3)] == [10, 30, 90]
    assert RetryPolicy().attempts == 1
    with pytest.raises(ValidationError):
        RetryPolicy(attempts=0)
