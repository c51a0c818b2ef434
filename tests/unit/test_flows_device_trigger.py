"""trigger.device_status: which device events start a flow (states, channels, devices —
the hub's id or the gateway's), the index only wanting device events when such a flow is
published, and a conversation test that alerts the owner."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from flows.nodes.trigger_device_status import Config, match_device
from flows.testing import FlowConversation
from flows.testing_events import sample_device_event
from flows.triggers import PublishedFlow, TriggerIndex

OWNER = "+15550009999"


def event(status: str = "offline", **fields: Any) -> dict[str, Any]:
    return sample_device_event(1, "2026-12-01T10:00:00Z", {"status": status, **fields})


def alert(**config: Any) -> dict[str, Any]:
    return {
        "name": "alert",
        "nodes": [
            {"id": "on_device", "type": "trigger.device_status", "config": config},
            {
                "id": "tell",
                "type": "sms.send",
                "config": {
                    "to": OWNER,
                    "text": "{{ trigger.data.device.name }} is {{ trigger.data.status }}",
                },
            },
        ],
        "edges": [{"from": "on_device", "to": "tell"}],
    }


@pytest.mark.parametrize(
    ("config", "sample", "starts"),
    [
        ({}, event(), True),  # offline by default
        ({}, event("online"), False),
        ({"states": ["online"]}, event("online"), True),
        ({"states": ["offline", "online"]}, event("online"), True),
        ({"channels": ["ch_test"]}, event(), True),
        ({"channels": ["ch_other"]}, event(), False),
        ({"devices": ["dev_sample"]}, event(), True),  # the hub's id
        ({"devices": ["sample-phone"]}, event(), True),  # the gateway's own id
        ({"devices": ["someone-else"]}, event(), False),
    ],
)
def test_which_device_events_start_the_flow(
    config: dict[str, Any], sample: dict[str, Any], starts: bool
) -> None:
    assert match_device(Config.model_validate(config), sample) is starts


def test_a_state_list_must_name_offline_or_online() -> None:
    with pytest.raises(ValidationError):
        Config.model_validate({"states": []})
    with pytest.raises(ValidationError):
        Config.model_validate({"states": ["asleep"]})


def test_the_index_wants_device_events_only_when_a_device_flow_is_published() -> None:
    empty = TriggerIndex.build([])
    assert not empty.wants("device.offline") and empty.match(event()) == []
    index = TriggerIndex.build([PublishedFlow("flw_alert", 1, alert())])
    assert index.wants("device.offline") and index.wants("device.online")
    assert not index.wants("broadcast.started")
    assert [m.flow_id for m in index.match(event())] == ["flw_alert"]


async def test_a_phone_going_offline_alerts_the_owner_in_a_conversation() -> None:
    convo = FlowConversation(alert(states=["offline", "online"]))
    await convo.device_status()
    convo.expect_sms(to=OWNER, pattern="Sample phone is offline")
    await convo.device_status(status="online")
    convo.expect_sms(to=OWNER, pattern="Sample phone is online")
