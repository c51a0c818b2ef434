"""The flow editor's test run for the new triggers: a schedule's tick (a group schedule's
member is the test contact) and a failed run of another flow (a sample, fields the tester
gives); the editor's palette offers both types with their forms' schemas."""

from __future__ import annotations

from typing import Any

from hub.context import Hub
from hub.services.flows import import_flow
from tests.e2e.helpers import Web

OWNER = "+15550009999"


def flow_with(trigger: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "name": "Try me",
        "nodes": [
            trigger,
            {"id": "tell", "type": "sms.send", "config": {"to": OWNER, "text": text}},
        ],
        "edges": [{"from": trigger["id"], "to": "tell"}],
    }


async def start_test(hub: Hub, web: Web, document: dict[str, Any], **fields: Any) -> Any:
    view, _ = await import_flow(hub, document, publish_it=False)
    resp = await web.post_json(f"/flows/{view.flow.id}/test-run", {"document": document, **fields})
    return resp


async def test_a_schedule_test_run_fires_the_next_tick(hub: Hub, web: Web) -> None:
    document = flow_with(
        {"id": "schedule", "type": "trigger.schedule", "config": {"cron": "0 9 * * *"}},
        "tick {{ trigger.data.scheduled_at }}",
    )
    result = (await start_test(hub, web, document, mode="schedule")).json()
    (run,) = result["runs"]
    assert run["status"] == "completed"
    assert run["steps"][0]["output"]["scheduled_at"].endswith("T09:00:00Z")
    assert result["sms"][0]["text"] == f"tick {run['steps'][0]['output']['scheduled_at']}"


async def test_a_group_schedule_test_run_runs_for_the_test_contact(hub: Hub, web: Web) -> None:
    document = flow_with(
        {
            "id": "schedule",
            "type": "trigger.schedule",
            "config": {"every": {"hours": 1}, "group_id": "grp_x"},
        },
        "hello {{ contact.phone }}",
    )
    result = (
        await start_test(hub, web, document, mode="schedule", **{"from": "+15550004444"})
    ).json()
    (run,) = result["runs"]
    assert result["sms"][0]["text"] == "hello +15550004444"
    assert run["steps"][0]["output"]["group_id"] == "grp_x"


async def test_a_run_failed_test_run_starts_from_a_sample_failure(hub: Hub, web: Web) -> None:
    document = flow_with(
        {"id": "on_failure", "type": "trigger.run_failed", "config": {"flows": ["flw_shop"]}},
        "{{ trigger.data.flow_id }}: {{ trigger.data.error }} ({{ contact.phone }})",
    )
    result = (
        await start_test(
            hub, web, document, mode="run_failed", body={"error": "HTTP 500"}, **{"from": OWNER}
        )
    ).json()
    (run,) = result["runs"]
    assert run["status"] == "completed"
    assert result["sms"][0]["text"] == f"flw_shop: HTTP 500 ({OWNER})"


async def test_a_schedule_test_run_of_a_flow_without_a_schedule_is_a_422(
    hub: Hub, web: Web
) -> None:
    document = flow_with(
        {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["HI"]}}, "hi"
    )
    resp = await start_test(hub, web, document, mode="schedule")
    assert resp.status_code == 422, resp.text
    assert "trigger.schedule" in resp.json()["error"]["message"]


async def test_the_palette_offers_the_new_triggers(web: Web) -> None:
    resp = await web.client.get("/api/v1/node-types")
    assert resp.status_code == 200, resp.text
    catalog = {entry["type"]: entry for entry in resp.json()}
    schedule = catalog["trigger.schedule"]
    assert schedule["category"] == "trigger" and schedule["error_port"] is None
    assert set(schedule["config_schema"]["properties"]) == {"cron", "every", "timezone", "group_id"}
    assert "scheduled_at" in schedule["outputs"]
    failed = catalog["trigger.run_failed"]
    assert set(failed["config_schema"]["properties"]) == {"flows"}
    assert {"run_id", "flow_id", "error", "contact"} <= set(failed["outputs"])
    received = catalog["trigger.sms_received"]["config_schema"]["properties"]
    assert {"groups", "exclude_groups"} <= set(received)


async def test_a_group_limited_join_is_test_run_by_a_member(hub: Hub, web: Web) -> None:
    document = {
        "name": "Members JOIN",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.sms_received",
                "config": {"keywords": ["JOIN"], "groups": ["grp_vip"]},
            },
            {"id": "hi", "type": "sms.reply", "config": {"text": "Welcome, member"}},
        ],
        "edges": [{"from": "start", "to": "hi"}],
    }
    result = (await start_test(hub, web, document, mode="sms", text="join")).json()
    assert result["matched"] and result["sms"][0]["text"] == "Welcome, member"


async def test_a_device_test_run_starts_from_a_sample_device_event(hub: Hub, web: Web) -> None:
    document = flow_with(
        {"id": "on_device", "type": "trigger.device_status", "config": {"states": ["online"]}},
        "{{ trigger.data.channel.name }} is {{ trigger.data.status }}",
    )
    result = (await start_test(hub, web, document, mode="device", body={"status": "online"})).json()
    (run,) = result["runs"]
    assert run["status"] == "completed"
    assert result["sms"][0]["text"] == "Test channel is online"
    # An offline sample starts nothing here (the trigger wants online only).
    quiet = (await start_test(hub, web, document, mode="device", body={})).json()
    assert quiet["runs"] == []
    bad = await start_test(hub, web, document, mode="device", body={"status": "asleep"})
    assert bad.status_code == 422
