"""The issue-12 flow nodes through the real hub: contact.group_add / group_remove write
``group_members`` (once, an unknown group takes the error port), flow.start starts the
published version of another flow for the contact (a repeated key starts nothing new) or
for a group (a flow broadcast whose runs see their parent), and refuses unpublished flows.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from flows.ports import FLOW_STARTED, StartFlowCommand
from hub.context import Hub
from hub.models import FlowRun, GroupMember, Message
from tests.conftest import ChannelFactory, drain
from tests.e2e.helpers import Web
from tests.helpers import SimPhone
from tests.integration.test_broadcasts import make_group, phones, settle, status_of

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"device_rate_limit_per_min": 600, "send_spacing_max_s": 0.0}


@pytest.fixture
async def sim(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


async def publish(client: httpx.AsyncClient, headers: dict[str, str], flow: dict[str, Any]) -> str:
    resp = await client.post("/api/v1/flows/import?publish=true", json=flow, headers=headers)
    assert resp.status_code == 201, resp.text
    flow_id: str = resp.json()["id"]
    return flow_id


def keyword_flow(name: str, keyword: str, *nodes: dict[str, Any], **ports: str) -> dict[str, Any]:
    """A keyword trigger, then ``nodes`` in a line (``ports``: node id -> port it leaves by)."""
    chain = [
        {"id": "start", "type": "trigger.sms_received", "config": {"keywords": [keyword]}},
        *nodes,
    ]
    edges = [
        {"from": a["id"], "port": ports.get(a["id"], "next"), "to": b["id"]}
        for a, b in itertools.pairwise(chain)
    ]
    return {"name": name, "nodes": chain, "edges": edges}


async def texts_to(hub: Hub) -> list[tuple[str, str]]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message.to_number, Message.body).where(col(Message.direction) == "outbound")
        )
        return sorted((str(t), str(b)) for t, b in rows.all())


async def members_of(hub: Hub, group_id: str) -> list[str]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(GroupMember.contact_id).where(col(GroupMember.group_id) == group_id)
        )
        return [str(r) for r in rows.scalars()]


async def test_group_add_and_remove_through_the_hub(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    resp = await client.post("/api/v1/groups", json={"name": "VIP"}, headers=api_headers)
    assert resp.status_code == 201, resp.text
    group_id = resp.json()["id"]
    join = keyword_flow(
        "join",
        "join",
        {"id": "join_group", "type": "contact.group_add", "config": {"group_id": group_id}},
        {
            "id": "ok",
            "type": "sms.reply",
            "config": {"text": "in {{ contact.groups | join(',') }}"},
        },
    )
    leave = keyword_flow(
        "leave",
        "leave",
        {"id": "leave_group", "type": "contact.group_remove", "config": {"group_id": group_id}},
        {
            "id": "ok",
            "type": "sms.reply",
            "config": {"text": "out [{{ contact.groups | join(',') }}]"},
        },
    )
    bad = keyword_flow(
        "bad",
        "bad",
        {"id": "join_group", "type": "contact.group_add", "config": {"group_id": "grp_nope"}},
        {
            "id": "oops",
            "type": "sms.reply",
            "config": {"text": "{{ steps.join_group.output.error }}"},
        },
        join_group="error",
    )
    for flow in (join, leave, bad):
        await publish(client, api_headers, flow)
    ann = phones(1)[0]
    await sim.says(ann, "join")
    await sim.says(ann, "join")  # a second time: still one membership
    await drain(hub)
    assert len(await members_of(hub, group_id)) == 1
    listed = await client.get(f"/api/v1/groups/{group_id}", headers=api_headers)
    assert listed.json()["member_count"] == 1
    await sim.says(ann, "leave")
    await sim.says(ann, "bad")
    await drain(hub)
    assert await members_of(hub, group_id) == []
    texts = [body for _, body in await texts_to(hub)]
    assert texts.count(f"in {group_id}") == 2
    assert "out []" in texts
    assert any("unknown group 'grp_nope'" in t for t in texts), texts


def child_flow() -> dict[str, Any]:
    return keyword_flow(
        "child",
        "never-typed",
        {
            "id": "hello",
            "type": "sms.send",
            "config": {
                "to": "{{ contact.phone }}",
                "text": "{{ trigger.type }} by {{ trigger.data.parent_flow_id }} "
                "code {{ trigger.data.params.code }} depth {{ trigger.data.depth }}",
            },
        },
    )


async def test_flow_start_for_the_contact_once_per_key(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    child_id = await publish(client, api_headers, child_flow())
    parent = keyword_flow(
        "parent",
        "go",
        {
            "id": "start_flow",
            "type": "flow.start",
            "config": {"flow_id": child_id, "params": {"code": "{{ 40 + 2 }}"}},
        },
        {
            "id": "done",
            "type": "sms.reply",
            "config": {"text": "child {{ steps.start_flow.output.status }}"},
        },
    )
    parent_id = await publish(client, api_headers, parent)
    ann = phones(1)[0]
    await sim.says(ann, "go")
    await drain(hub)
    assert await texts_to(hub) == sorted(
        [(ann, f"flow.started by {parent_id} code 42 depth 1"), (ann, "child completed")]
    )
    async with hub.db.read() as session:
        runs = (await session.execute(sa.select(FlowRun))).scalars().all()
    child = next(r for r in runs if r.flow_id == child_id)
    parent_run = next(r for r in runs if r.flow_id == parent_id)
    assert child.doc["trigger"]["type"] == FLOW_STARTED
    assert child.doc["trigger"]["data"]["parent_run_id"] == parent_run.id
    assert child.doc["contact"]["phone"] == ann

    # The same key again (a retried step): the same run, nothing new sent.
    command = StartFlowCommand(
        flow_id=child_id,
        phone=ann,
        idempotency_key=f"{parent_run.id}:start_flow",
        run_id=parent_run.id,
        parent_flow_id=parent_id,
        node_id="start_flow",
    )
    again = await hub.flows.executor.effects.start_flow(command)
    assert again.run_id == child.id
    await drain(hub)
    assert len(await texts_to(hub)) == 2


async def test_flow_start_refuses_an_unpublished_flow(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    resp = await client.post("/api/v1/flows", json=child_flow(), headers=api_headers)
    assert resp.status_code == 201, resp.text
    draft_id = resp.json()["id"]
    parent = keyword_flow(
        "parent",
        "go",
        {"id": "start_flow", "type": "flow.start", "config": {"flow_id": draft_id}},
        {
            "id": "oops",
            "type": "sms.reply",
            "config": {"text": "{{ steps.start_flow.output.error }}"},
        },
        start_flow="error",
    )
    await publish(client, api_headers, parent)
    await sim.says(phones(1)[0], "go")
    await drain(hub)
    texts = [body for _, body in await texts_to(hub)]
    assert texts == [f"flow.start: flow {draft_id!r} is not published"]


async def test_flow_start_for_a_group_is_a_broadcast_of_flow_started_runs(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    child_id = await publish(client, api_headers, child_flow())
    members = phones(5, base=15553000000)
    group_id = await make_group(client, api_headers, "team", members)
    parent = keyword_flow(
        "parent",
        "team",
        {
            "id": "start_flow",
            "type": "flow.start",
            "config": {"flow_id": child_id, "group_id": group_id, "params": {"code": "T"}},
        },
        {
            "id": "done",
            "type": "sms.reply",
            "config": {"text": "sent as {{ steps.start_flow.output.broadcast_id }}"},
        },
    )
    parent_id = await publish(client, api_headers, parent)
    boss = phones(1)[0]
    await sim.says(boss, "team")
    await settle(hub)
    texts = await texts_to(hub)
    reply = [body for to, body in texts if to == boss]
    assert len(reply) == 1 and reply[0].startswith("sent as bc_")
    broadcast_id = reply[0].removeprefix("sent as ")
    assert sorted(to for to, _ in texts if to != boss) == sorted(members)
    assert {body for to, body in texts if to != boss} == {
        f"flow.started by {parent_id} code T depth 1"
    }
    done = await status_of(client, api_headers, broadcast_id)
    assert done["status"] == "completed" and done["counts"]["runs"] == {"completed": 5}


async def test_editor_test_run_knows_the_groups_and_the_started_flows(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], web: Web
) -> None:
    """The editor's test run (in memory, nothing real happens) adds to a real group id and
    starts the published flow a flow.start names, with split branches as ports."""
    child_id = await publish(client, api_headers, child_flow())
    resp = await client.post("/api/v1/groups", json={"name": "Testers"}, headers=api_headers)
    group_id = resp.json()["id"]
    draft = keyword_flow(
        "draft",
        "try",
        {"id": "join_group", "type": "contact.group_add", "config": {"group_id": group_id}},
        {
            "id": "split",
            "type": "logic.split_random",
            "config": {"branches": [{"name": "a", "percent": 100}, {"name": "b", "percent": 0}]},
        },
        {"id": "start_flow", "type": "flow.start", "config": {"flow_id": child_id}},
        split="a",
    )
    created = await client.post("/api/v1/flows", json=draft, headers=api_headers)
    assert created.status_code == 201, created.text
    result = (
        await web.post_json(
            f"/flows/{created.json()['id']}/test-run",
            {"document": draft, "mode": "sms", "text": "try", "from": "+15550001234"},
        )
    ).json()
    runs = {run["flow_id"]: run for run in result["runs"]}
    assert runs["draft"]["status"] == "completed", result
    steps = {s["node_id"]: s for s in runs["draft"]["steps"]}
    assert steps["join_group"]["output"]["groups"] == [group_id]
    assert steps["split"]["port"] == "a"
    assert runs[child_id]["status"] == "completed"
    assert [s["text"] for s in result["sms"]] == ["flow.started by draft code  depth 1"]
    assert await members_of(hub, group_id) == []  # nothing real happened
