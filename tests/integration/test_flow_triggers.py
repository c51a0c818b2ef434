"""trigger.run_failed and group-limited trigger.sms_received on the real hub: inbound
webhooks in, SMS out (simulator gateway), runs and events in the database."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import Event
from hub.services.flow_dispatch import flow_dispatch
from tests.conftest import drain
from tests.helpers import SimPhone, count
from tests.integration.test_flows_hub import ANN, phone, publish, runs, texts_to

__all__ = ["phone"]  # the fixture, imported for these tests

OWNER = "+15550009999"
BEN = "+15550002222"


def fragile() -> dict[str, Any]:
    """BOOM starts a run that fails in its `explode` step."""
    return {
        "name": "Fragile",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["BOOM"]}},
            {
                "id": "explode",
                "type": "flow.stop",
                "config": {"outcome": "failed", "reason": "it broke"},
            },
        ],
        "edges": [{"from": "start", "to": "explode"}],
    }


def alarm(flows: list[str] | None = None) -> dict[str, Any]:
    """Texts the owner about every failed run (of ``flows``, or of any flow)."""
    return {
        "name": "Alarm",
        "nodes": [
            {"id": "on_failure", "type": "trigger.run_failed", "config": {"flows": flows or []}},
            {
                "id": "tell",
                "type": "sms.send",
                "config": {
                    "to": OWNER,
                    "text": "{{ trigger.data.flow_name }} failed at "
                    "{{ steps.on_failure.output.node_id }} for {{ contact.phone }}: "
                    "{{ trigger.data.error }}",
                },
            },
        ],
        "edges": [{"from": "on_failure", "to": "tell"}],
    }


def failing_alarm() -> dict[str, Any]:
    """An error flow that fails itself (the loop guard keeps it from feeding itself)."""
    return {
        "name": "Broken alarm",
        "nodes": [
            {"id": "on_failure", "type": "trigger.run_failed", "config": {}},
            {"id": "oops", "type": "flow.stop", "config": {"outcome": "failed"}},
        ],
        "edges": [{"from": "on_failure", "to": "oops"}],
    }


async def run_failed_event_ids(hub: Hub) -> list[str]:
    async with hub.db.read() as session:
        found = await session.execute(
            sa.select(Event.id).where(col(Event.type) == "flow.run.failed").order_by(Event.id)
        )
        return list(found.scalars())


async def test_a_failing_flow_starts_the_run_failed_flow_once_per_failed_run(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    fragile_flow = await publish(client, api_headers, fragile())
    alarm_flow = await publish(client, api_headers, alarm())
    broken = await publish(client, api_headers, failing_alarm())
    await phone.says(ANN, "BOOM")
    await phone.says(ANN, "boom again")
    await drain(hub)

    failed = await runs(client, api_headers, flow_id=fragile_flow["id"])
    assert [r["status"] for r in failed] == ["failed", "failed"]
    told = await runs(client, api_headers, flow_id=alarm_flow["id"])
    # Two failures, two alarm runs; the broken alarm's own two failures start none (loop guard).
    assert len(told) == 2 and {r["status"] for r in told} == {"completed"}
    assert all(r["contact_phone"] == ANN for r in told)  # the failed run's contact
    assert len(await runs(client, api_headers, flow_id=broken["id"])) == 2
    assert await texts_to(hub, OWNER) == [f"Fragile failed at explode for {ANN}: it broke"] * 2
    detail = (await client.get(f"/api/v1/runs/{told[0]['id']}", headers=api_headers)).json()
    trigger = detail["steps"][0]["output"]
    assert trigger["run_id"] in {r["id"] for r in failed}
    assert trigger["flow_id"] == fragile_flow["id"] and trigger["flow_name"] == "Fragile"
    assert trigger["node_type"] == "flow.stop" and trigger["flow_version"] == 1
    assert trigger["contact"]["phone"] == ANN

    # The events delivered again (a dispatch job re-run after a crash): nothing new.
    events = await run_failed_event_ids(hub)
    assert len(events) == 4  # two fragile runs, two broken-alarm runs
    for event_id in events:
        await flow_dispatch(hub, event_id)
    await drain(hub)
    assert len(await runs(client, api_headers, flow_id=alarm_flow["id"])) == 2
    assert len(await texts_to(hub, OWNER)) == 2


async def test_run_failed_limited_to_named_flows(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    other = await publish(client, api_headers, {**fragile(), "name": "Other"})
    await publish(client, api_headers, alarm(flows=["flw_not_this_one"]))
    await phone.says(ANN, "BOOM")
    await drain(hub)
    assert [r["status"] for r in await runs(client, api_headers, flow_id=other["id"])] == ["failed"]
    assert await texts_to(hub, OWNER) == []


async def make_group(client: httpx.AsyncClient, headers: dict[str, str], *phones: str) -> str:
    group = (await client.post("/api/v1/groups", json={"name": "VIP"}, headers=headers)).json()
    if phones:
        resp = await client.post(
            f"/api/v1/groups/{group['id']}/members", json={"phones": list(phones)}, headers=headers
        )
        assert resp.status_code == 200, resp.text
    return str(group["id"])


def join(**config: Any) -> dict[str, Any]:
    return {
        "name": "Join",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.sms_received",
                "config": {"keywords": ["JOIN"], **config},
            },
            {"id": "welcome", "type": "sms.reply", "config": {"text": "Welcome, member!"}},
        ],
        "edges": [{"from": "start", "to": "welcome"}],
    }


async def test_join_limited_to_a_group_answers_a_member_and_ignores_a_non_member(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    vip = await make_group(client, api_headers, ANN)
    await publish(client, api_headers, join(groups=[vip]))
    await phone.says(ANN, "JOIN")
    await phone.says(BEN, "JOIN")  # a contact of no group
    await drain(hub)
    assert await texts_to(hub, ANN) == ["Welcome, member!"]
    assert await texts_to(hub, BEN) == []
    assert len(await runs(client, api_headers)) == 1
    # Ben joins the group: now he is answered too.
    await client.post(f"/api/v1/groups/{vip}/members", json={"phones": [BEN]}, headers=api_headers)
    await phone.says(BEN, "join")
    await drain(hub)
    assert await texts_to(hub, BEN) == ["Welcome, member!"]


async def test_join_excluding_a_group_ignores_its_members(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    banned = await make_group(client, api_headers, BEN)
    await publish(client, api_headers, join(exclude_groups=[banned]))
    await phone.says(ANN, "JOIN")
    await phone.says(BEN, "JOIN")
    await drain(hub)
    assert await texts_to(hub, ANN) == ["Welcome, member!"]
    assert await texts_to(hub, BEN) == []
    # The sink over-approximates (no contact loaded there): Ben's SMS cost a dispatch job,
    # which matched nothing.
    assert await count(hub, Event, col(Event.type) == "flow.run.completed") == 1
