"""logic.split_random: percentages, stable per contact, ports from the branches."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from flows import get_spec, validate_flow
from flows.memory import FakeClock, FakeEffects
from flows.nodes import logic_split_random
from flows.testing import FlowConversation
from tests.unit.test_flows_nodes import run_node

AB = {"branches": [{"name": "a", "percent": 30}, {"name": "b", "percent": 70}]}


def test_ports_come_from_the_branches() -> None:
    spec = get_spec("logic.split_random")
    assert spec is not None
    assert spec.ports_for(AB) == ("a", "b")  # pure: no error port
    entry = spec.catalog_entry()
    assert entry["port_list"] == {"field": "branches", "key": "name"}
    assert entry["error_port"] is None


@pytest.mark.parametrize(
    ("branches", "message"),
    [
        # The shares must cover every contact exactly once.
        ([{"name": "a", "percent": 50}, {"name": "b", "percent": 40}], "add up to 90"),
        # A port name is used once.
        ([{"name": "a", "percent": 50}, {"name": "a", "percent": 50}], "named twice"),
        # `error` is every failing node's port; a split cannot take it.
        ([{"name": "error", "percent": 50}, {"name": "b", "percent": 50}], "reserved"),
        # Port names are identifiers.
        ([{"name": "a b", "percent": 50}, {"name": "c", "percent": 50}], "pattern"),
        # One branch is no split.
        ([{"name": "a", "percent": 100}], "at least 2"),
    ],
)
def test_config_errors(branches: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        logic_split_random.Config.model_validate({"branches": branches})


def test_distribution_over_a_thousand_numbers_follows_the_percents() -> None:
    config = logic_split_random.Config.model_validate(
        {
            "branches": [
                {"name": "a", "percent": 20},
                {"name": "b", "percent": 30},
                {"name": "c", "percent": 50},
            ]
        }
    )
    picked = Counter(
        logic_split_random.choose(
            config, logic_split_random.bucket("flow_1", "split", f"+1555{n:07d}")
        )
        for n in range(1000)
    )
    assert abs(picked["a"] - 200) <= 40, picked
    assert abs(picked["b"] - 300) <= 40, picked
    assert abs(picked["c"] - 500) <= 40, picked


def test_zero_percent_branch_is_never_taken() -> None:
    config = logic_split_random.Config.model_validate(
        {"branches": [{"name": "off", "percent": 0}, {"name": "on", "percent": 100}]}
    )
    assert {logic_split_random.choose(config, n) for n in range(100)} == {"on"}


async def test_same_contact_same_branch_other_node_independent() -> None:
    effects = FakeEffects(FakeClock())
    first = await run_node("logic.split_random", AB, effects, run_id="run_1")
    again = await run_node("logic.split_random", AB, effects, run_id="run_2")
    assert first.port == again.port and first.output == again.output
    assert first.output["by"] == "contact"
    # Another node of the same flow hashes differently (its own bucket).
    buckets = {
        (await run_node("logic.split_random", AB, effects, node_id=f"n{i}")).output["bucket"]
        for i in range(20)
    }
    assert len(buckets) > 1


async def test_no_contact_splits_by_run() -> None:
    result = await run_node(
        "logic.split_random", AB, contact=None, reply_to=None, run_id="run_x", trigger={}
    )
    assert result.output["by"] == "run"
    assert result.output["bucket"] == logic_split_random.bucket("f", "n", "run_x")


def _ab_flow() -> dict[str, Any]:
    return {
        "name": "ab test",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["promo"]}},
            {"id": "split", "type": "logic.split_random", "config": AB},
            {"id": "say_a", "type": "sms.reply", "config": {"text": "Offer A"}},
            {"id": "say_b", "type": "sms.reply", "config": {"text": "Offer B"}},
        ],
        "edges": [
            {"from": "start", "to": "split"},
            {"from": "split", "port": "a", "to": "say_a"},
            {"from": "split", "port": "b", "to": "say_b"},
        ],
    }


def test_validation_knows_the_branch_ports() -> None:
    flow = _ab_flow()
    assert validate_flow(flow) == []
    flow["edges"].append({"from": "split", "port": "c", "to": "say_a"})
    problems = validate_flow(flow)
    assert problems and "no port 'c'" in problems[0].message


async def test_conversation_same_contact_always_same_offer() -> None:
    convo = FlowConversation(_ab_flow(), contact="+15550001234")
    expected = (
        "Offer "
        + logic_split_random.choose(
            logic_split_random.Config.model_validate(AB),
            logic_split_random.bucket(convo.flow_ids[0], "split", "+15550001234"),
        ).upper()
    )
    for _ in range(3):
        await convo.says("promo")
        convo.expect_reply(expected)
        convo.expect_run("completed")
