"""Node types: catalog, and each handler's behaviour with fake effects."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flows import (
    ContactView,
    EffectError,
    NodeContext,
    NodeError,
    ReplyTo,
    get_spec,
    node_types,
    node_types_catalog,
)
from flows.memory import FakeClock, FakeEffects
from flows.model import NODE_ID_PATTERN
from flows.nodes import logic_condition, logic_switch
from flows.testing import FlowConversation

DESIGN_TYPES = {
    "trigger.sms_received",
    "trigger.delivery_status",
    "trigger.http",
    "trigger.schedule",
    "trigger.run_failed",
    "trigger.device_status",
    "logic.condition",
    "logic.switch",
    "logic.split_random",
    "data.set",
    "sms.reply",
    "sms.send",
    "sms.wait_for_reply",
    "http.request",
    "contact.update",
    "contact.group_add",
    "contact.group_remove",
    "flow.delay",
    "flow.start",
    "flow.stop",
}


def test_every_design_type_is_registered() -> None:
    assert {spec.type for spec in node_types()} == DESIGN_TYPES


def test_catalog_entries() -> None:
    catalog = {entry["type"]: entry for entry in node_types_catalog()}
    for entry in catalog.values():
        assert entry["title"] and entry["description"]
        assert entry["category"] in {"trigger", "logic", "data", "sms", "http", "contact", "flow"}
        schema = entry["config_schema"]
        assert schema["type"] == "object" and schema.get("additionalProperties") is False
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{entry['type']}.{name} has no description"
    assert catalog["logic.condition"]["ports"] == ["true", "false"]
    assert catalog["sms.wait_for_reply"]["ports"] == ["reply", "timeout"]
    assert catalog["http.request"]["ports"] == ["success", "error"]
    assert catalog["logic.switch"]["ports_from_config"]
    assert catalog["flow.stop"]["ports"] == [] and catalog["flow.stop"]["error_port"] is None
    assert catalog["sms.reply"]["error_port"] == "error"
    assert catalog["trigger.sms_received"]["error_port"] is None
    assert catalog["sms.send"]["templates"]["to"] == "text"
    assert catalog["data.set"]["templates"] == {"vars": "value"}
    props = catalog["trigger.sms_received"]["config_schema"]["properties"]
    assert set(props) >= {"match", "keywords", "pattern", "channels", "senders"}
    props = catalog["http.request"]["config_schema"]["properties"]
    assert set(props) >= {"url", "method", "headers", "body", "preset", "timeout_s"}


def test_catalog_is_json() -> None:
    import json

    assert json.loads(json.dumps(node_types_catalog())) == node_types_catalog()


def test_catalog_carries_what_the_editor_needs() -> None:
    """New-node ids, the id pattern and the output keys come from the registry, not the JS."""
    catalog = node_types_catalog()
    prefixes = [entry["id_prefix"] for entry in catalog]
    assert len(set(prefixes)) == len(prefixes), "two types would share new-node ids"
    for entry in catalog:
        assert entry["id_pattern"] == NODE_ID_PATTERN
        # The editor numbers repeats: start, start_2, …; each must stay a valid id.
        assert re.match(NODE_ID_PATTERN, entry["id_prefix"] + "_99"), entry["type"]
        assert all(isinstance(key, str) and key for key in entry["outputs"]), entry["type"]
    by_type = {entry["type"]: entry for entry in catalog}
    assert by_type["sms.reply"]["id_prefix"] == "reply"
    assert by_type["sms.wait_for_reply"]["outputs"] == ["body", "from", "message_id"]
    assert by_type["trigger.http"]["outputs"] == []  # the caller's JSON: no fixed keys


def _every_type_flow() -> dict[str, Any]:
    """One SMS-started flow through every non-trigger type, each node named by its prefix."""
    chain = [
        ("trigger.sms_received", {"keywords": ["go"]}, "next"),
        ("data.set", {"vars": {"x": "1"}}, "next"),
        ("logic.condition", {"value": "{{ vars.x }}", "operand": "1"}, "true"),
        ("logic.switch", {"value": "a", "cases": [{"port": "a", "equals": "a"}]}, "a"),
        (
            "logic.split_random",
            {"branches": [{"name": "x", "percent": 100}, {"name": "y", "percent": 0}]},
            "x",
        ),
        ("sms.reply", {"text": "hi"}, "next"),
        ("sms.send", {"to": "+15550001111", "text": "yo"}, "next"),
        ("sms.wait_for_reply", {"text": "name?", "timeout_s": 60}, "reply"),
        ("http.request", {"url": "https://example.com/hook"}, "success"),
        ("contact.update", {"add_tags": ["t"]}, "next"),
        ("contact.group_add", {"group_id": "grp_t"}, "next"),
        ("contact.group_remove", {"group_id": "grp_t"}, "next"),
        ("flow.start", {"flow_id": "on_failure", "phone": "+15550002222"}, "next"),
        ("flow.delay", {"seconds": 5}, "next"),
        ("flow.stop", {}, None),
    ]
    ids = [_spec(node_type).catalog_entry()["id_prefix"] for node_type, _, _ in chain]
    nodes = [
        {"id": nid, "type": node_type, "config": config}
        for nid, (node_type, config, _) in zip(ids, chain, strict=True)
    ]
    edges = [
        {"from": ids[i], "port": port, "to": ids[i + 1]}
        for i, (_, _, port) in enumerate(chain)
        if port is not None
    ]
    return {"name": "every type", "nodes": nodes, "edges": edges}


def _spec(node_type: str) -> Any:
    spec = get_spec(node_type)
    assert spec is not None
    return spec


async def test_output_hints_name_keys_the_steps_really_output() -> None:
    """Every key the variables menu offers is in the step's output of a real run."""
    status_flow = {
        "name": "on failure",
        "nodes": [
            {"id": "on_status", "type": "trigger.delivery_status", "config": {}},
            {"id": "stop", "type": "flow.stop", "config": {}},
        ],
        "edges": [{"from": "on_status", "to": "stop"}],
    }

    def flow(name: str, trigger: str, config: dict[str, Any], **stop: Any) -> dict[str, Any]:
        return {
            "name": name,
            "nodes": [
                {"id": "first", "type": trigger, "config": config},
                {"id": "stop", "type": "flow.stop", "config": stop},
            ],
            "edges": [{"from": "first", "to": "stop"}],
        }

    convo = FlowConversation(
        _every_type_flow(),
        status_flow,
        flow("hourly", "trigger.schedule", {"every": {"hours": 1}}),
        flow("on error", "trigger.run_failed", {}),
        flow("quiet phone", "trigger.device_status", {}),
        flow("boom", "trigger.sms_received", {"keywords": ["boom"]}, outcome="failed"),
    )
    convo.harness.effects.add_group("grp_t")
    await convo.says("go")
    await convo.says("Ann")
    await convo.wait(seconds=10)
    await convo.delivery_status("failed", error="no signal")
    await convo.tick()
    await convo.device_status()
    await convo.says("boom")
    outputs: dict[str, dict[str, Any]] = {}
    for run in convo.harness.runs():
        if run.flow_id == "boom":
            continue  # it fails on purpose: the error flow runs
        assert run.status == "completed", convo.transcript
        for step in await convo.harness.steps(run.id):
            outputs[step.node_type] = step.output or {}
    assert set(outputs) == DESIGN_TYPES - {"trigger.http"}
    for node_type, output in outputs.items():
        missing = set(_spec(node_type).outputs) - set(output)
        assert not missing, f"{node_type} offers {missing} but outputs {sorted(output)}"


def test_switch_ports_come_from_its_cases() -> None:
    spec = get_spec("logic.switch")
    assert spec is not None
    config = {
        "value": "x",
        "cases": [{"port": "yes", "equals": "y"}, {"port": "no", "matches": "^n"}],
    }
    assert spec.ports_for(config) == ("yes", "no", "default", "error")


def context(effects: FakeEffects, **overrides: Any) -> NodeContext:
    values: dict[str, Any] = {
        "run_id": "run_1",
        "flow_id": "f",
        "flow_version": 1,
        "node_id": "n",
        "attempt": 1,
        "idempotency_key": "run_1:n",
        "trigger": {
            "id": "evt_1",
            "type": "sms.received",
            "timestamp": "t",
            "data": {
                "from": "+15550001234",
                "body": "hi",
                "channel_id": "ch_1",
                "nested": {"x": 1},
            },
        },
        "vars": {},
        "contact": {"phone": "+15550001234"},
        "reply_to": ReplyTo(
            phone="+15550001234", message_id="m1", channel_id="ch_1", device_id="d1", sim_slot=1
        ),
        "now": effects.clock.now(),
        "effects": effects,
    }
    values.update(overrides)
    return NodeContext(**values)


async def run_node(
    node_type: str, config: dict[str, Any], effects: FakeEffects | None = None, **ctx: Any
) -> Any:
    spec = get_spec(node_type)
    assert spec is not None
    effects = effects or FakeEffects(FakeClock())
    return await spec.handler(spec.config_model.model_validate(config), context(effects, **ctx))


CONDITIONS: list[tuple[str, Any, str, bool]] = [
    # equals / not_equals ignore case and surrounding spaces by default.
    ("equals", "yes", " YES ", True),
    ("not_equals", "yes", "no", True),
    # contains looks for the operand inside the value.
    ("contains", "pizza", "I want pizza", True),
    # matches is a regular expression search.
    ("matches", r"^\d{4}$", "1234", True),
    ("matches", r"^\d{4}$", "12345", False),
    # in: a list, or comma-separated text.
    ("in", ["y", "yes"], "Yes", True),
    ("in", "a, b ,c", "B", True),
    ("in", "a,b", "d", False),
    # gt / lt compare numbers; not a number is simply false.
    ("gt", "5", "10", True),
    ("lt", "5", "10", False),
    ("gt", "5", "ten", False),
    # is_empty: blank after trimming.
    ("is_empty", "", "   ", True),
    ("is_empty", "", "x", False),
]


@pytest.mark.parametrize(("operator", "operand", "value", "expected"), CONDITIONS)
def test_condition_operators(operator: str, operand: Any, value: str, expected: bool) -> None:
    config = logic_condition.Config(value=value, operator=operator, operand=operand)
    assert logic_condition.evaluate(config) is expected


def test_condition_case_sensitive() -> None:
    config = logic_condition.Config(value="Yes", operand="yes", case_sensitive=True)
    assert logic_condition.evaluate(config) is False


async def test_condition_takes_true_or_false() -> None:
    result = await run_node("logic.condition", {"value": "a", "operand": "a"})
    assert result.port == "true" and result.output["result"] is True


def test_switch_first_match_wins_else_default() -> None:
    config = logic_switch.Config(
        value=" Yes ",
        cases=[
            logic_switch.Case(port="yes", equals=["y", "yes"]),
            logic_switch.Case(port="any_y", matches="^y"),
        ],
    )
    assert logic_switch.choose(config) == "yes"
    config.value = "yep"
    assert logic_switch.choose(config) == "any_y"
    config.value = "nope"
    assert logic_switch.choose(config) == "default"


@pytest.mark.parametrize(
    "cases",
    [
        [{"port": "default", "equals": "x"}],  # reserved port name
        [{"port": "a", "equals": "x"}, {"port": "a", "equals": "y"}],  # duplicate port
        [{"port": "a", "equals": "x", "matches": "y"}],  # two tests in one case
        [{"port": "a", "matches": "("}],  # bad regex
        [],  # no cases
    ],
)
def test_switch_config_errors(cases: list[dict[str, Any]]) -> None:
    spec = get_spec("logic.switch")
    assert spec is not None
    with pytest.raises(ValueError):
        spec.config_model.model_validate({"value": "x", "cases": cases})


async def test_sms_send_coerces_sim_slot_and_blank_options() -> None:
    effects = FakeEffects(FakeClock())
    result = await run_node(
        "sms.send",
        {"to": " +15550002222 ", "text": "hi", "sim_slot": "1", "channel_id": "  "},
        effects,
    )
    command = effects.sms[0].command
    assert (command.to, command.sim_slot, command.channel_id) == ("+15550002222", 1, None)
    assert command.idempotency_key == "run_1:n" and command.reply_to is None
    assert result.output["status"] == "queued"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"to": "+1555", "text": "hi", "sim_slot": "one"}, "sim_slot"),
        ({"to": "+1555", "text": "   "}, "rendered empty"),
        ({"to": "  ", "text": "hi"}, "`to`"),
        ({"to": "+1555", "text": "x" * 2000}, "limit"),
    ],
)
async def test_sms_send_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(NodeError, match=message):
        await run_node("sms.send", config)


async def test_sms_reply_uses_the_inbound_route() -> None:
    effects = FakeEffects(FakeClock())
    await run_node("sms.reply", {"text": "hello"}, effects)
    command = effects.sms[0].command
    assert (command.to, command.channel_id, command.device_id, command.sim_slot) == (
        "+15550001234",
        "ch_1",
        "d1",
        1,
    )


async def test_wait_for_reply_asks_and_waits() -> None:
    effects = FakeEffects(FakeClock())
    result = await run_node("sms.wait_for_reply", {"text": "Y/N?", "timeout_s": 60}, effects)
    assert result.wait.kind == "reply" and result.wait.contact_phone == "+15550001234"
    assert result.wait.channel_id == "ch_1"
    assert (result.wait.until - effects.clock.now()).total_seconds() == 60
    assert result.output["sent"]["text"] == "Y/N?"


async def test_wait_for_reply_without_text_sends_nothing() -> None:
    effects = FakeEffects(FakeClock())
    result = await run_node("sms.wait_for_reply", {}, effects)
    assert effects.sms == [] and result.wait is not None and "sent" not in result.output


async def test_wait_for_reply_to_someone_else_does_not_reuse_the_inbound_route() -> None:
    effects = FakeEffects(FakeClock())
    result = await run_node("sms.wait_for_reply", {"to": "+15550007777", "text": "?"}, effects)
    command = effects.sms[0].command
    assert command.to == "+15550007777" and command.reply_to is None
    assert result.wait.contact_phone == "+15550007777"
    assert result.wait.channel_id == effects.default_channel  # the route the pipeline chose


async def test_http_request_generic_sends_the_trigger_event() -> None:
    effects = FakeEffects(FakeClock())
    result = await run_node("http.request", {"url": "https://x.test/h"}, effects)
    command = effects.http[0].command
    assert command.method == "POST" and command.json["data"]["body"] == "hi"
    assert command.headers["Content-Type"] == "application/json"
    assert command.idempotency_key == "run_1:n"
    assert result.port == "success" and result.output["json"] == {"status": "success"}


@pytest.mark.parametrize("preset", ["zapier", "make", "n8n"])
async def test_http_request_presets_send_a_flat_object(preset: str) -> None:
    effects = FakeEffects(FakeClock())
    await run_node("http.request", {"url": "https://x.test/h", "preset": preset}, effects)
    body = effects.http[0].command.json
    assert body["body"] == "hi" and body["from"] == "+15550001234"
    assert body["event_type"] == "sms.received" and body["run_id"] == "run_1"
    assert "nested" not in body  # flat: objects left out
    assert effects.http[0].command.preset == preset


async def test_http_request_string_body_and_headers() -> None:
    effects = FakeEffects(FakeClock())
    await run_node(
        "http.request",
        {"url": "https://x.test/h", "method": "PUT", "body": "plain", "headers": {"X-A": "1"}},
        effects,
    )
    command = effects.http[0].command
    assert command.content == "plain" and command.json is None
    assert command.headers == {"X-A": "1", "Content-Type": "text/plain; charset=utf-8"}


async def test_http_request_get_has_no_default_body() -> None:
    effects = FakeEffects(FakeClock())
    await run_node("http.request", {"url": "https://x.test/h", "method": "GET"}, effects)
    assert effects.http[0].command.json is None and effects.http[0].command.content is None


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [(500, None, True), (429, None, True), (404, None, False), (None, "timeout", True)],
)
async def test_http_request_failures(
    status: int | None, error: str | None, retryable: bool
) -> None:
    effects = FakeEffects(FakeClock())
    effects.respond(status=status or 200, error=error, body="nope")
    with pytest.raises(NodeError) as info:
        await run_node("http.request", {"url": "https://x.test/h"}, effects)
    assert info.value.retryable is retryable
    assert info.value.output is not None and info.value.output["ok"] is False


async def test_contact_update() -> None:
    effects = FakeEffects(FakeClock())
    result = await run_node(
        "contact.update", {"add_tags": ["a", " "], "fields": {"x": "1"}, "opt_out": True}, effects
    )
    assert result.contact == ContactView(
        phone="+15550001234", opted_out=True, tags=("a",), fields={"x": "1"}
    )
    other = await run_node("contact.update", {"phone": "+15550009999", "add_tags": ["b"]}, effects)
    assert other.contact is None  # another contact: the run's `contact` stays as it was
    with pytest.raises(ValueError):
        get_spec("contact.update").config_model.model_validate({})  # type: ignore[union-attr]


async def test_delay_and_stop() -> None:
    delay = await run_node("flow.delay", {"seconds": 90})
    assert delay.wait.kind == "delay" and delay.wait.timeout_port == "next"
    stop = await run_node("flow.stop", {"outcome": "failed", "reason": " why "})
    assert stop.stop == "failed" and stop.stop_reason == "why"


async def test_triggers_output_what_matched() -> None:
    received = await run_node(
        "trigger.sms_received",
        {"match": "regex", "pattern": r"^(\w+) (?P<n>\d+)"},
        trigger={"type": "sms.received", "data": {"body": "order 42 please", "from": "+1"}},
    )
    assert received.output["keyword"] == "order 42" and received.output["named"] == {"n": "42"}
    status = await run_node(
        "trigger.delivery_status",
        {},
        trigger={"type": "sms.failed", "data": {"error": "no signal"}},
    )
    assert status.output["status"] == "failed" and status.output["error"] == "no signal"
    http = await run_node("trigger.http", {}, trigger={"a": 1})
    assert http.output == {"a": 1}


async def test_effect_errors_pass_through_handlers() -> None:
    effects = FakeEffects(FakeClock())
    effects.fail_sms("down", retryable=False)
    with pytest.raises(EffectError):
        await run_node("sms.reply", {"text": "x"}, effects)
