"""trigger.schedule (ticks, the missed-tick rule, validation), trigger.run_failed (matching,
loop guard) and group filters of trigger.sms_received, in the engine and in flows.testing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flows import PublishedFlow, TriggerIndex, validate_flow
from flows.nodes.trigger_schedule import Config, due_tick, is_tick, latest_tick, next_tick
from flows.testing import FlowConversation

NOON = datetime(2031, 3, 3, 12, 0, 30, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("config", "after", "expected"),
    [
        # every minute: the next whole minute
        ({"every": {"minutes": 1}}, NOON, utc(2031, 3, 3, 12, 1)),
        # every 15 minutes counts from midnight: :00 :15 :30 :45
        ({"every": {"minutes": 15}}, NOON, utc(2031, 3, 3, 12, 15)),
        # every day: local midnight (Paris is UTC+1 in March before the switch)
        ({"every": {"days": 1}, "timezone": "Europe/Paris"}, NOON, utc(2031, 3, 3, 23)),
        # cron in a time zone: Mondays 9:00 New York = 14:00 UTC (EST); 3 March 2031 is one
        ({"cron": "0 9 * * 1", "timezone": "America/New_York"}, NOON, utc(2031, 3, 3, 14)),
        # a tick is never "next" of itself
        ({"cron": "*/5 * * * *"}, utc(2031, 3, 3, 12, 5), utc(2031, 3, 3, 12, 10)),
        # hourly across the spring-forward gap in Paris (02:00 local does not exist)
        (
            {"every": {"hours": 1}, "timezone": "Europe/Paris"},
            utc(2031, 3, 30, 0, 30),
            utc(2031, 3, 30, 1),
        ),
    ],
)
def test_next_tick(config: dict[str, Any], after: datetime, expected: datetime) -> None:
    assert next_tick(Config.model_validate(config), after) == expected


def test_hourly_through_the_autumn_fold_ticks_every_real_hour() -> None:
    config = Config.model_validate({"every": {"hours": 1}, "timezone": "Europe/Paris"})
    at = utc(2031, 10, 26, 0, 30)
    ticks = []
    for _ in range(4):
        at = next_tick(config, at)
        ticks.append(at)
    assert ticks == [utc(2031, 10, 26, h) for h in (1, 2, 3, 4)]


def test_latest_tick_and_the_missed_tick_rule() -> None:
    config = Config.model_validate({"cron": "0 9 * * *"})
    assert latest_tick(config, utc(2031, 3, 3, 9, 0, 0)) == utc(2031, 3, 3, 9)
    assert latest_tick(config, utc(2031, 3, 3, 8, 59)) == utc(2031, 3, 2, 9)
    assert is_tick(config, utc(2031, 3, 3, 9)) and not is_tick(config, utc(2031, 3, 3, 9, 1))
    # Up to five minutes late it still fires; later it is skipped (no backlog ever).
    assert due_tick(config, utc(2031, 3, 3, 9, 4, 59)) == utc(2031, 3, 3, 9)
    assert due_tick(config, utc(2031, 3, 3, 9, 5, 1)) is None
    minutely = Config.model_validate({"every": {"minutes": 1}})
    # Hours late, an every-minute schedule fires the latest minute only.
    assert due_tick(minutely, utc(2031, 3, 3, 15, 0, 20)) == utc(2031, 3, 3, 15)


def schedule_flow(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "s",
        "nodes": [
            {"id": "schedule", "type": "trigger.schedule", "config": config},
            {"id": "done", "type": "flow.stop", "config": {}},
        ],
        "edges": [{"from": "schedule", "to": "done"}],
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cron": "61 * * * *"}, "not a 5-field cron"),
        ({"cron": "* * * * * *"}, "not a 5-field cron"),  # croniter's seconds field: no
        ({}, "exactly one of cron or every"),
        ({"cron": "* * * * *", "every": {"minutes": 5}}, "exactly one of cron or every"),
        ({"every": {"minutes": 0}}, "greater than or equal to 1"),
        ({"every": {"minutes": 5, "hours": 1}}, "exactly one of minutes, hours or days"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_schedules_are_problems_at_publish(config: dict[str, Any], message: str) -> None:
    problems = validate_flow(schedule_flow(config))
    assert [(p.node_id, p.code) for p in problems] == [("schedule", "invalid_config")]
    assert message in problems[0].message


def test_the_index_lists_schedules_and_matches_failures_with_the_loop_guard() -> None:
    error_flow = {
        "name": "e",
        "nodes": [
            {"id": "on_failure", "type": "trigger.run_failed", "config": {"flows": ["shop"]}},
            {"id": "done", "type": "flow.stop", "config": {}},
        ],
        "edges": [{"from": "on_failure", "to": "done"}],
    }
    index = TriggerIndex.build(
        [
            PublishedFlow("tick", 2, schedule_flow({"every": {"hours": 1}})),
            PublishedFlow("errors", 1, error_flow),
        ]
    )
    [entry] = index.schedules()
    assert (entry.match.flow_id, entry.match.version, entry.match.node_id) == (
        "tick",
        2,
        "schedule",
    )
    assert index.wants_run_failures

    def failed(flow_id: str, trigger_node_type: str) -> dict[str, Any]:
        data = {"flow_id": flow_id, "trigger_node_type": trigger_node_type}
        return {"id": "evt_1", "type": "flow.run.failed", "data": data}

    assert [m.flow_id for m in index.match(failed("shop", "trigger.sms_received"))] == ["errors"]
    assert index.match(failed("other", "trigger.sms_received")) == []
    assert index.match(failed("shop", "trigger.run_failed")) == []  # loop guard


def test_group_filters_apply_when_the_groups_are_known() -> None:
    join = {
        "name": "j",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.sms_received",
                "config": {"keywords": ["JOIN"], "groups": ["vip"], "exclude_groups": ["banned"]},
            },
            {"id": "done", "type": "flow.stop", "config": {}},
        ],
        "edges": [{"from": "start", "to": "done"}],
    }
    index = TriggerIndex.build([PublishedFlow("join", 1, join)])
    event = {"id": "e", "type": "sms.received", "data": {"from": "+1555", "body": "join"}}
    assert index.match(event)  # groups unknown (the hub's sink): may match
    assert index.match(event, ["vip"])
    assert not index.match(event, [])
    assert not index.match(event, ["vip", "banned"])
    assert not index.match({**event, "data": {"from": "+1555", "body": "hello"}}, ["vip"])


def greeting(trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "greet",
        "nodes": [
            trigger,
            {
                "id": "hello",
                "type": "sms.send",
                "config": {"to": "+15550009999", "text": "{{ trigger.data.scheduled_at }}"},
            },
        ],
        "edges": [{"from": trigger["id"], "to": "hello"}],
    }


async def test_a_conversation_ticks_a_schedule() -> None:
    schedule = {"id": "schedule", "type": "trigger.schedule", "config": {"cron": "0 * * * *"}}
    convo = FlowConversation(greeting(schedule))
    start = convo.harness.clock.now()
    [run] = await convo.tick()
    assert run.status == "completed" and run.contact is None
    assert convo.harness.clock.now() == next_tick(Config(cron="0 * * * *"), start)
    convo.expect_sms(to="+15550009999", pattern=run.trigger["data"]["scheduled_at"])
    assert len(await convo.tick()) == 1
    assert convo.harness.clock.now() - start > timedelta(hours=1)


async def test_a_group_schedule_runs_for_each_member_in_a_conversation() -> None:
    schedule = {
        "id": "schedule",
        "type": "trigger.schedule",
        "config": {"every": {"days": 1}, "group_id": "vip"},
    }
    convo = FlowConversation(greeting(schedule))
    assert await convo.tick() == []  # nobody in the group yet
    await convo.join_group("vip")
    [run] = await convo.tick()
    assert (run.contact or {})["phone"] == convo.contact
    assert run.trigger["type"] == "schedule.tick" and run.trigger["data"]["group_id"] == "vip"


async def test_a_failed_run_starts_the_error_flow_in_a_conversation() -> None:
    boom = {
        "name": "boom",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["boom"]}},
            {"id": "explode", "type": "flow.stop", "config": {"outcome": "failed"}},
        ],
        "edges": [{"from": "start", "to": "explode"}],
    }
    alarm = {
        "name": "alarm",
        "nodes": [
            {"id": "on_failure", "type": "trigger.run_failed", "config": {}},
            {
                "id": "tell",
                "type": "sms.send",
                "config": {
                    "to": "+15550009999",
                    "text": "{{ steps.on_failure.output.flow_id }} failed at "
                    "{{ steps.on_failure.output.node_id }} for {{ contact.phone }}",
                },
            },
        ],
        "edges": [{"from": "on_failure", "to": "tell"}],
    }
    convo = FlowConversation(boom, alarm)
    await convo.says("boom")
    convo.expect_sms(to="+15550009999", pattern=f"boom failed at explode for \\{convo.contact}")
    await convo.another_run_fails(flow_id="shop", error="HTTP 500")
    convo.expect_sms(to="+15550009999", pattern="shop failed at sample")
    assert [r.flow_id for r in convo.harness.runs()] == ["boom", "alarm", "alarm"]


async def test_a_group_limited_join_in_a_conversation() -> None:
    join = {
        "name": "join",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.sms_received",
                "config": {"keywords": ["JOIN"], "groups": ["vip"]},
            },
            {"id": "hi", "type": "sms.reply", "config": {"text": "Welcome"}},
        ],
        "edges": [{"from": "start", "to": "hi"}],
    }
    convo = FlowConversation(join)
    await convo.says("JOIN")
    convo.expect_no_reply()
    await convo.join_group("vip")
    await convo.says("JOIN")
    convo.expect_reply("Welcome")
