"""contact.group_add / contact.group_remove and flow.start against the in-memory engine:
memberships, the error port for an unknown group, child runs and their trigger, repeats
of a key, the depth guard."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flows import NodeError, get_spec
from flows.memory import FakeClock, FakeEffects
from flows.nodes.flow_start import MAX_DEPTH
from flows.ports import FLOW_STARTED, ContactUpdate, StartFlowCommand
from flows.testing import FlowConversation
from tests.unit.test_flows_nodes import run_node

ANN = "+15550001234"


def _chain(
    name: str, keyword: str, *nodes: dict[str, Any], ports: dict[str, str] | None = None
) -> dict[str, Any]:
    """A flow: a keyword trigger, then ``nodes`` in a line (``ports`` names the port each
    node leaves by, default ``next``)."""
    ports = ports or {}
    everything = [
        {"id": "start", "type": "trigger.sms_received", "config": {"keywords": [keyword]}},
        *nodes,
    ]
    edges = [
        {"from": a["id"], "port": ports.get(a["id"], "next"), "to": b["id"]}
        for a, b in itertools.pairwise(everything)
    ]
    return {"name": name, "nodes": everything, "edges": edges}


# -- groups -------------------------------------------------------------------------------


async def test_group_add_twice_is_one_membership_and_remove_leaves() -> None:
    effects = FakeEffects(FakeClock())
    effects.add_group("grp_vip", "VIP")
    first = await run_node("contact.group_add", {"group_id": "grp_vip"}, effects)
    again = await run_node("contact.group_add", {"group_id": " grp_vip "}, effects)
    assert first.output["groups"] == again.output["groups"] == ["grp_vip"]
    assert first.output["member"] is True and first.contact.groups == ("grp_vip",)
    assert effects.members("grp_vip") == [ANN]
    left = await run_node("contact.group_remove", {"group_id": "grp_vip"}, effects)
    assert left.output["member"] is False and left.contact.groups == ()
    # Leaving a group one is not in changes nothing and is no error.
    await run_node("contact.group_remove", {"group_id": "grp_vip"}, effects)
    assert effects.members("grp_vip") == []


async def test_group_of_another_phone_keeps_the_run_contact() -> None:
    effects = FakeEffects(FakeClock())
    effects.add_group("grp_a")
    result = await run_node(
        "contact.group_add", {"group_id": "grp_a", "phone": "+15550009999"}, effects
    )
    assert result.contact is None and effects.members("grp_a") == ["+15550009999"]


def test_group_config_needs_a_group() -> None:
    spec = get_spec("contact.group_add")
    assert spec is not None
    with pytest.raises(ValueError):
        spec.config_model.model_validate({})
    assert spec.catalog_entry()["templates"] == {"group_id": "text", "phone": "text"}


async def test_conversation_join_leave_and_unknown_group_takes_the_error_port() -> None:
    flow = {
        "name": "vip",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["vip"]}},
            {
                "id": "join_group",
                "type": "contact.group_add",
                "config": {"group_id": "{{ trigger.data.body.split()[1] }}"},
            },
            {
                "id": "ok",
                "type": "sms.reply",
                "config": {"text": "You are in: {{ contact.groups | join(',') }}"},
            },
            {
                "id": "oops",
                "type": "sms.reply",
                "config": {"text": "No such group ({{ steps.join_group.output.error }})"},
            },
        ],
        "edges": [
            {"from": "start", "to": "join_group"},
            {"from": "join_group", "to": "ok"},
            {"from": "join_group", "port": "error", "to": "oops"},
        ],
    }
    convo = FlowConversation(flow, contact=ANN)
    convo.harness.effects.add_group("grp_news")
    await convo.says("vip grp_news")
    convo.expect_reply("^You are in: grp_news$")
    await convo.says("vip grp_nope")
    convo.expect_reply("No such group")
    convo.expect_run("completed")
    assert convo.harness.effects.members("grp_news") == [ANN]
    leave = _chain(
        "leave",
        "bye",
        {"id": "leave", "type": "contact.group_remove", "config": {"group_id": "grp_news"}},
    )
    convo2 = FlowConversation(leave, contact=ANN)
    convo2.harness.effects.add_group("grp_news")
    convo2.harness.effects.contacts = convo.harness.effects.contacts
    await convo2.says("bye")
    convo2.expect_run("completed")
    assert convo2.harness.effects.members("grp_news") == []


# -- flow.start ---------------------------------------------------------------------------


def _child() -> dict[str, Any]:
    return _chain(
        "child",
        "never",
        {
            "id": "hello",
            "type": "sms.send",
            "config": {
                "to": "{{ contact.phone }}",
                "text": "Hi from {{ trigger.data.parent_flow_id }}, "
                "coupon {{ trigger.data.params.coupon }}, depth {{ trigger.data.depth }}",
            },
        },
    )


def _parent(**config: Any) -> dict[str, Any]:
    return _chain(
        "parent",
        "go",
        {"id": "start_flow", "type": "flow.start", "config": {"flow_id": "child", **config}},
        {
            "id": "done",
            "type": "sms.reply",
            "config": {"text": "Started {{ steps.start_flow.output.run_id }}"},
        },
    )


async def test_flow_start_for_the_contact_with_params() -> None:
    convo = FlowConversation(_parent(params={"coupon": "{{ 'SAVE' ~ 10 }}"}), _child())
    await convo.says("go")
    convo.expect_reply("^Hi from parent, coupon SAVE10, depth 1$")
    started = convo.expect_reply("^Started run_")
    child = convo.harness.store.runs[started.command.text.removeprefix("Started ")]
    assert child.flow_id == "child" and child.status == "completed"
    assert child.trigger["type"] == FLOW_STARTED
    data = child.trigger["data"]
    parent = next(r for r in convo.harness.runs() if r.flow_id == "parent")
    assert data["parent_run_id"] == parent.id and data["parent_node_id"] == "start_flow"
    assert data["phone"] == ANN and child.contact is not None and child.contact["phone"] == ANN


async def test_flow_start_repeat_of_a_key_starts_nothing_new() -> None:
    effects = FakeEffects(FakeClock())
    calls: list[str] = []

    async def starter(command: StartFlowCommand, phone: str | None, run_id: str, bc: Any) -> str:
        calls.append(run_id)
        return "completed"

    effects.flow_starter = starter
    first = await run_node("flow.start", {"flow_id": "child"}, effects)
    again = await run_node("flow.start", {"flow_id": "child"}, effects)
    assert first.output == again.output and len(calls) == 1
    other = await run_node("flow.start", {"flow_id": "child"}, effects, idempotency_key="k2")
    assert other.output["run_id"] != first.output["run_id"] and len(calls) == 2


async def test_flow_start_for_a_group_starts_one_run_per_member() -> None:
    convo = FlowConversation(_parent(group_id="grp_team"), _child())
    effects = convo.harness.effects
    effects.add_group("grp_team")
    for phone in ("+15550000001", "+15550000002"):
        await effects.update_contact(ContactUpdate(phone=phone, add_groups=("grp_team",)))
    await convo.says("go")
    convo.expect_sms(to="+15550000001", pattern="Hi from parent")
    convo.expect_sms(to="+15550000002", pattern="Hi from parent")
    parent = next(r for r in convo.harness.runs() if r.flow_id == "parent")
    step = parent.outputs["start_flow"]
    assert step["broadcast_id"].startswith("bc_") and step["run_id"] is None
    children = [r for r in convo.harness.runs() if r.flow_id == "child"]
    assert len(children) == 2
    assert {c.trigger["data"]["broadcast_id"] for c in children} == {step["broadcast_id"]}


async def test_flow_start_unknown_flow_takes_the_error_port() -> None:
    flow = _parent()
    flow["nodes"].append(
        {
            "id": "bad",
            "type": "sms.reply",
            "config": {"text": "Could not: {{ steps.start_flow.output.error }}"},
        }
    )
    flow["edges"].append({"from": "start_flow", "port": "error", "to": "bad"})
    convo = FlowConversation(flow)  # no child flow published
    await convo.says("go")
    convo.expect_reply("not published")


async def test_flows_starting_each_other_stop_at_the_depth_limit() -> None:
    ping = _chain(
        "ping",
        "ping",
        {"id": "start_flow", "type": "flow.start", "config": {"flow_id": "pong"}},
    )
    pong = _chain(
        "pong",
        "never",
        {"id": "start_flow", "type": "flow.start", "config": {"flow_id": "ping"}},
    )
    convo = FlowConversation(ping, pong)
    await convo.says("ping")
    runs = convo.harness.runs()
    assert len(runs) == MAX_DEPTH + 1  # the first run, then MAX_DEPTH started ones
    deepest = runs[-1]
    assert deepest.status == "failed" and "flow starts deep" in (deepest.error or "")
    assert all(r.status == "completed" for r in runs[:-1])


async def test_depth_guard_in_the_handler() -> None:
    trigger = {"type": FLOW_STARTED, "data": {"depth": MAX_DEPTH}}
    with pytest.raises(NodeError, match="limit 10"):
        await run_node("flow.start", {"flow_id": "x"}, trigger=trigger)


def test_flow_start_phone_or_group_not_both() -> None:
    spec = get_spec("flow.start")
    assert spec is not None
    with pytest.raises(ValueError, match="not both"):
        spec.config_model.model_validate({"flow_id": "x", "phone": "+1", "group_id": "g"})
