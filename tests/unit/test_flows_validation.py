"""validate_flow: every problem, with node and field (one case per rule)."""

from __future__ import annotations

from typing import Any

import pytest

from flows import InvalidFlowError, Problem, load_flow, validate_flow
from flows.examples import example_names, load_example


def _flow(*nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": "t", "nodes": list(nodes), "edges": edges or []}


START = {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}}
REPLY = {"id": "reply", "type": "sms.reply", "config": {"text": "hi"}}
OK_EDGES = [{"from": "start", "to": "reply"}]


def _codes(problems: list[Problem]) -> set[tuple[str | None, str | None, str]]:
    return {(p.node_id, p.field, p.code) for p in problems}


@pytest.mark.parametrize("name", example_names())
def test_examples_are_valid(name: str) -> None:
    assert validate_flow(load_example(name)) == []


CASES: list[tuple[str, Any, tuple[str | None, str | None, str]]] = [
    # The document must be an object.
    ("not an object", ["nodes"], (None, None, "invalid_flow")),
    # A name is required.
    ("missing name", {"nodes": [START]}, (None, "name", "invalid_flow")),
    # Unknown top-level keys are typos.
    ("unknown key", {**_flow(START), "nodez": []}, (None, "nodez", "invalid_flow")),
    # nodes must be a list.
    ("nodes not a list", {"name": "t", "nodes": {}}, (None, "nodes", "invalid_flow")),
    # A flow with no nodes at all.
    ("no nodes", _flow(), (None, "nodes", "invalid_flow")),
    # A node id must be a usable identifier (no colon: it goes into idempotency keys).
    (
        "bad node id",
        _flow(START, {"id": "a:b", "type": "flow.stop"}),
        ("a:b", "id", "invalid_node"),
    ),
    # A node needs a type.
    ("missing type", _flow(START, {"id": "x"}), ("x", "type", "invalid_node")),
    # Retry policies are checked too.
    (
        "bad retry",
        _flow(START, {**REPLY, "retry": {"attempts": 0}}, edges=OK_EDGES),
        ("reply", "retry.attempts", "invalid_node"),
    ),
    # Two nodes with one id.
    (
        "duplicate id",
        _flow(START, REPLY, {**REPLY, "config": {"text": "x"}}, edges=OK_EDGES),
        ("reply", "id", "duplicate_node_id"),
    ),
    # Unknown node type.
    (
        "unknown type",
        _flow(START, {"id": "x", "type": "sms.fax"}, edges=[{"from": "start", "to": "x"}]),
        ("x", "type", "unknown_node_type"),
    ),
    # Config failing the type's schema names the field.
    (
        "missing config field",
        _flow(START, {"id": "reply", "type": "sms.reply"}, edges=OK_EDGES),
        ("reply", "config.text", "invalid_config"),
    ),
    # Unknown config keys are typos.
    (
        "unknown config key",
        _flow(START, {**REPLY, "config": {"text": "x", "txt": "y"}}, edges=OK_EDGES),
        ("reply", "config.txt", "invalid_config"),
    ),
    # Cross-field config rules (regex trigger without a pattern).
    (
        "regex without pattern",
        _flow({**START, "config": {"match": "regex"}}, REPLY, edges=OK_EDGES),
        ("start", "config.pattern", "invalid_config"),
    ),
    # Keyword triggers need keywords.
    (
        "keywords missing",
        _flow({**START, "config": {"match": "first_word"}}, REPLY, edges=OK_EDGES),
        ("start", "config.keywords", "invalid_config"),
    ),
    # Nested config errors have a full path.
    (
        "bad switch case",
        _flow(
            START,
            {
                "id": "sw",
                "type": "logic.switch",
                "config": {"value": "x", "cases": [{"port": "a"}]},
            },
            edges=[{"from": "start", "to": "sw"}],
        ),
        ("sw", "config.cases.0", "invalid_config"),
    ),
    # Template syntax errors name the field.
    (
        "template syntax",
        _flow(START, {**REPLY, "config": {"text": "Hi {{ name "}}, edges=OK_EDGES),
        ("reply", "config.text", "template_syntax"),
    ),
    # Unknown filters are compile errors too.
    (
        "unknown filter",
        _flow(START, {**REPLY, "config": {"text": "{{ x | shout }}"}}, edges=OK_EDGES),
        ("reply", "config.text", "template_syntax"),
    ),
    # Template errors inside objects have their path.
    (
        "template in body",
        _flow(
            START,
            {
                "id": "h",
                "type": "http.request",
                "config": {"url": "https://x.test", "body": {"a": ["{% if %}"]}},
            },
            edges=[{"from": "start", "to": "h"}],
        ),
        ("h", "config.body.a.0", "template_syntax"),
    ),
    # An edge needs from and to.
    (
        "edge without to",
        _flow(START, REPLY, edges=[*OK_EDGES, {"from": "start"}]),
        (None, "edges.1.to", "invalid_edge"),
    ),
    # Edge into an unknown node.
    (
        "edge to unknown",
        _flow(START, REPLY, edges=[*OK_EDGES, {"from": "reply", "to": "ghost"}]),
        ("reply", "edges.1.to", "unknown_node"),
    ),
    # Edge from an unknown node.
    (
        "edge from unknown",
        _flow(START, REPLY, edges=[*OK_EDGES, {"from": "ghost", "to": "reply"}]),
        (None, "edges.1.from", "unknown_node"),
    ),
    # The same edge twice.
    (
        "duplicate edge",
        _flow(START, REPLY, edges=[*OK_EDGES, *OK_EDGES]),
        ("start", "edges.1", "duplicate_edge"),
    ),
    # A port the node does not have.
    (
        "unknown port",
        _flow(START, REPLY, edges=[{"from": "start", "port": "yes", "to": "reply"}]),
        ("start", "edges.0.port", "unknown_port"),
    ),
    # Switch ports come from its cases.
    (
        "switch port not a case",
        _flow(
            START,
            REPLY,
            {
                "id": "sw",
                "type": "logic.switch",
                "config": {"value": "x", "cases": [{"port": "a", "equals": "1"}]},
            },
            edges=[{"from": "start", "to": "sw"}, {"from": "sw", "port": "b", "to": "reply"}],
        ),
        ("sw", "edges.1.port", "unknown_port"),
    ),
    # Triggers cannot fail, so they have no error port.
    (
        "error port on trigger",
        _flow(START, REPLY, edges=[{"from": "start", "port": "error", "to": "reply"}]),
        ("start", "edges.0.port", "unknown_port"),
    ),
    # flow.stop has no ports at all.
    (
        "edge out of stop",
        _flow(
            START,
            {"id": "stop", "type": "flow.stop"},
            REPLY,
            edges=[{"from": "start", "to": "stop"}, {"from": "stop", "to": "reply"}],
        ),
        ("stop", "edges.1.port", "unknown_port"),
    ),
    # No fan-out: one port leads to one node.
    (
        "fan-out",
        _flow(
            START,
            REPLY,
            {**REPLY, "id": "reply2"},
            edges=[*OK_EDGES, {"from": "start", "to": "reply2"}],
        ),
        ("start", "edges.1.port", "port_fan_out"),
    ),
    # Nothing may enter a trigger.
    (
        "edge into trigger",
        _flow(START, REPLY, edges=[*OK_EDGES, {"from": "reply", "to": "start"}]),
        ("start", "edges.1.to", "edge_into_trigger"),
    ),
    # A flow without any trigger never runs.
    ("no trigger", _flow(REPLY), (None, None, "no_trigger")),
    # One trigger.http per flow: its URL names the flow.
    (
        "two http triggers",
        _flow({"id": "h1", "type": "trigger.http"}, {"id": "h2", "type": "trigger.http"}),
        ("h2", "type", "multiple_http_triggers"),
    ),
    # A node no trigger leads to.
    (
        "unreachable",
        _flow(START, REPLY, {**REPLY, "id": "orphan"}, edges=OK_EDGES),
        ("orphan", None, "unreachable_node"),
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_validation_table(raw: Any, expected: tuple[str | None, str | None, str]) -> None:
    problems = validate_flow(raw)
    assert expected in _codes(problems), problems
    assert all(p.message for p in problems)


def test_valid_minimal_flow_has_no_problems() -> None:
    assert validate_flow(_flow(START, REPLY, edges=OK_EDGES)) == []


def test_cycles_multiple_triggers_and_open_ports_are_allowed() -> None:
    flow = _flow(
        START,
        {"id": "hook", "type": "trigger.http"},
        {"id": "ask", "type": "sms.wait_for_reply", "config": {"text": "?"}},
        edges=[
            {"from": "start", "to": "ask"},
            {"from": "hook", "to": "ask"},
            {"from": "ask", "port": "timeout", "to": "ask"},  # re-ask forever (step limit)
        ],  # `reply` is left open: the run completes there
    )
    assert validate_flow(flow) == []


def test_every_problem_is_reported_not_just_the_first() -> None:
    flow = _flow(
        {"id": "r", "type": "sms.reply", "config": {"text": "{{ oops"}},
        {"id": "x", "type": "nope"},
        edges=[{"from": "r", "to": "ghost"}],
    )
    codes = {p.code for p in validate_flow(flow)}
    assert {"template_syntax", "unknown_node_type", "unknown_node", "no_trigger"} <= codes


def test_load_flow_raises_with_every_problem() -> None:
    with pytest.raises(InvalidFlowError) as info:
        load_flow(_flow(REPLY, {"id": "x", "type": "nope"}))
    assert len(info.value.problems) >= 2
    assert "invalid flow" in str(info.value)
    with pytest.raises(InvalidFlowError):
        load_flow("{not json")
    assert load_flow(_flow(START, REPLY, edges=OK_EDGES)).name == "t"


def test_problem_to_dict() -> None:
    problem = Problem("a", "config.text", "template_syntax", "bad")
    assert problem.to_dict() == {
        "node_id": "a",
        "field": "config.text",
        "code": "template_syntax",
        "message": "bad",
    }
