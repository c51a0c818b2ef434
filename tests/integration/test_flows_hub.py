"""Flows on the real hub: API, dispatch, waits as queue timers, versions, loop breaker, replay."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import Contact, Event, Message
from tests.conftest import ChannelFactory, drain
from tests.helpers import SimPhone, count, fast_forward

EXAMPLES = Path(__file__).parents[2] / "flows" / "examples"
SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ANN = "+15550001234"


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return document


def without_http(document: dict[str, Any]) -> dict[str, Any]:
    """The flow minus its http.request nodes (no outside world in these tests)."""
    doc = copy.deepcopy(document)
    gone = {n["id"] for n in doc["nodes"] if n["type"] == "http.request"}
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] not in gone]
    doc["edges"] = [e for e in doc["edges"] if e["to"] not in gone and e["from"] not in gone]
    return doc


@pytest.fixture
async def phone(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


async def publish(
    client: httpx.AsyncClient, headers: dict[str, str], document: dict[str, Any]
) -> dict[str, Any]:
    resp = await client.post("/api/v1/flows/import?publish=true", json=document, headers=headers)
    assert resp.status_code == 201, resp.text
    flow: dict[str, Any] = resp.json()
    assert flow["published_version"] == 1
    return flow


async def texts_to(hub: Hub, phone: str) -> list[str]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message.body)
            .where(col(Message.to_number) == phone, col(Message.direction) == "outbound")
            .order_by(col(Message.id))
        )
        return list(rows.scalars())


async def runs(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/runs", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_join_keyword_replies_tags_and_announces(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow = await publish(client, api_headers, without_http(example("join_keyword")))
    await phone.says(ANN, "join News")
    await drain(hub)
    assert await texts_to(hub, ANN) == ["Welcome to News! Reply STOP to opt out."]
    async with hub.db.read() as session:
        contact = (
            await session.execute(sa.select(Contact).where(col(Contact.phone) == ANN))
        ).scalar_one()
        reply = (
            await session.execute(sa.select(Message).where(col(Message.to_number) == ANN))
        ).scalar_one()
    assert "subscriber" in contact.tags and contact.fields["list"] == "news"
    assert reply.status == "delivered" and reply.source == "flow"
    [run] = await runs(client, api_headers, flow_id=flow["id"])
    assert run["status"] == "completed" and run["contact_phone"] == ANN
    detail = (await client.get(f"/api/v1/runs/{run['id']}", headers=api_headers)).json()
    assert [s["node_id"] for s in detail["steps"]] == ["start", "welcome", "tag"]
    assert all(s["status"] == "succeeded" for s in detail["steps"])
    assert await count(hub, Event, Event.type == "flow.run.completed") == 1
    # Other words start nothing.
    await phone.says(ANN, "what's on today?")
    await drain(hub)
    assert len(await runs(client, api_headers)) == 1


async def test_gateway_retry_of_the_trigger_starts_one_run(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    await publish(client, api_headers, without_http(example("join_keyword")))
    for _ in range(3):
        await phone.says(ANN, "JOIN", event_id="same-event")
    await drain(hub)
    assert len(await runs(client, api_headers)) == 1
    assert len(await texts_to(hub, ANN)) == 1


def appointment(timeout_s: int = 60) -> dict[str, Any]:
    doc = example("appointment_confirmation")
    for node in doc["nodes"]:
        if node["type"] == "sms.wait_for_reply":
            node["config"]["timeout_s"] = timeout_s
    return doc


async def start_appointment(
    client: httpx.AsyncClient, headers: dict[str, str], flow: dict[str, Any]
) -> dict[str, Any]:
    resp = await client.post(
        flow["http_trigger_url"].removeprefix("http://testserver.local"),
        json={"phone": ANN, "name": "Ann", "when": "Tue 3 pm"},
    )
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_appointment_yes_goes_to_confirmed(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow = await publish(client, api_headers, appointment())
    started = await start_appointment(client, api_headers, flow)
    await drain(hub)
    assert started["status"] == "waiting"
    assert (await texts_to(hub, ANN))[0].startswith("Hi Ann, your appointment is on Tue 3 pm")
    await phone.says(ANN, "y")
    await drain(hub)
    assert (await texts_to(hub, ANN))[-1] == "Thank you, your appointment on Tue 3 pm is confirmed."
    [run] = await runs(client, api_headers)
    assert run["status"] == "completed"


async def test_appointment_silence_reminds_then_times_out(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow = await publish(client, api_headers, appointment())
    await start_appointment(client, api_headers, flow)
    await drain(hub)
    assert await fast_forward(hub, "flow_timer") == 1  # the reply timeout is a queue timer
    await drain(hub)
    assert (await texts_to(hub, ANN))[-1].startswith("Reminder: please reply Y")
    assert await fast_forward(hub, "flow_timer") == 1
    await drain(hub)
    texts = await texts_to(hub, ANN)
    assert texts[-1].startswith("We did not hear back")
    assert len(texts) == 3
    [run] = await runs(client, api_headers)
    assert run["status"] == "completed"
    # A late answer after the run ended starts nothing and continues nothing.
    await phone.says(ANN, "y")
    await drain(hub)
    assert len(await texts_to(hub, ANN)) == 3


async def test_stale_timer_after_a_reply_changes_nothing(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow = await publish(client, api_headers, appointment())
    await start_appointment(client, api_headers, flow)
    await drain(hub)
    await phone.says(ANN, "n")
    await drain(hub)
    assert (await texts_to(hub, ANN))[-1] == "Your appointment on Tue 3 pm has been cancelled."
    await fast_forward(hub, "flow_timer")  # the old timeout fires anyway
    await drain(hub)
    assert len(await texts_to(hub, ANN)) == 2


async def test_invalid_flow_is_422_naming_node_and_problem_and_cannot_publish(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    bad = {
        "name": "Broken",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.sms_received",
                "config": {"match": "exact", "keywords": ["HI"]},
            },
            {"id": "say", "type": "sms.reply", "config": {"text": "Hello {{ contact.name "}},
            {"id": "lost", "type": "sms.teleport", "config": {}},
        ],
        "edges": [
            {"from": "start", "to": "say"},
            {"from": "say", "port": "sideways", "to": "lost"},
        ],
    }
    resp = await client.post("/api/v1/flows", json=bad, headers=api_headers)
    assert resp.status_code == 422
    details = resp.json()["error"]["details"]
    by_node = {(d["node_id"], d["code"]) for d in details}
    assert ("say", "template_syntax") in by_node or any(d["node_id"] == "say" for d in details)
    assert any(d["node_id"] == "lost" for d in details)
    assert await client.get("/api/v1/flows", headers=api_headers) is not None
    draft = await client.post("/api/v1/flows?draft=true", json=bad, headers=api_headers)
    assert draft.status_code == 201 and draft.json()["problems"]
    refused = await client.post(f"/api/v1/flows/{draft.json()['id']}/publish", headers=api_headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"] == draft.json()["problems"]
    assert (await client.get(f"/api/v1/flows/{draft.json()['id']}", headers=api_headers)).json()[
        "published_version"
    ] is None


async def test_v2_publish_leaves_waiting_v1_runs_on_v1(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow = await publish(client, api_headers, appointment())
    await start_appointment(client, api_headers, flow)
    await drain(hub)
    v2 = appointment()
    for node in v2["nodes"]:
        if node["id"] == "confirmed":
            node["config"]["text"] = "v2: confirmed!"
    saved = await client.put(f"/api/v1/flows/{flow['id']}", json=v2, headers=api_headers)
    assert saved.status_code == 200
    published = await client.post(
        f"/api/v1/flows/{flow['id']}/publish", json={"note": "new text"}, headers=api_headers
    )
    assert published.status_code == 201 and published.json()["version"] == 2
    await phone.says(ANN, "yes")
    await drain(hub)
    assert (await texts_to(hub, ANN))[
        -1
    ] == "Thank you, your appointment on Tue 3 pm is confirmed."  # v1 text
    await start_appointment(client, api_headers, flow)
    await drain(hub)
    await phone.says(ANN, "Y")
    await drain(hub)
    assert (await texts_to(hub, ANN))[-1] == "v2: confirmed!"
    versions = [r["flow_version"] for r in await runs(client, api_headers)]
    assert sorted(versions) == [1, 2]
    listed = (await client.get(f"/api/v1/flows/{flow['id']}/versions", headers=api_headers)).json()
    assert [v["version"] for v in listed] == [2, 1]
    exported = (
        await client.get(f"/api/v1/flows/{flow['id']}/export?version=1", headers=api_headers)
    ).text
    assert '"v2: confirmed!"' not in exported and exported.endswith("\n")


async def test_two_simulator_channels_auto_replying_stop_at_the_loop_breaker(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    numbers = {"a": "+15550100001", "b": "+15550100002"}
    for name, number in numbers.items():
        await make_channel(
            "simulator",
            name=name,
            webhook_secret=SECRET,
            config={"phone_number": number, "delivery_delay_s": 0},
            phone_number=number,
        )
    echo = {
        "name": "Echo bot",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
            {
                "id": "echo",
                "type": "sms.reply",
                "config": {"text": "You said: {{ trigger.data.body[:40] }}"},
            },
        ],
        "edges": [{"from": "start", "to": "echo"}],
    }
    await publish(client, api_headers, echo)
    # A sends to B; both channels' flows answer every SMS: a loop.
    resp = await client.post(
        "/api/v1/send",
        json={
            "to": numbers["b"],
            "message": "ping",
            "channel_id": (await _channel_id(hub, numbers["a"])),
        },
        headers=api_headers,
    )
    assert resp.status_code == 202
    for _ in range(30):  # bounded: the loop must die out well before this
        await drain(hub)
        if not await fast_forward(hub):
            break
    async with hub.db.read() as session:
        rows = (
            await session.execute(
                sa.select(Message.to_number, Message.status, Message.error).where(
                    col(Message.direction) == "outbound", col(Message.source) == "flow"
                )
            )
        ).all()
    sent = [r for r in rows if r.status != "suppressed"]
    suppressed = [r for r in rows if r.status == "suppressed"]
    assert len([r for r in sent if r.to_number == numbers["a"]]) == hub.settings.loop_breaker_max
    assert len([r for r in sent if r.to_number == numbers["b"]]) == hub.settings.loop_breaker_max
    assert suppressed and all("loop_breaker" in (r.error or "") for r in suppressed)
    failed_steps = await runs(client, api_headers, status="failed")
    assert failed_steps == []  # a suppressed send is recorded on the step, not a failure


async def _channel_id(hub: Hub, number: str) -> str:
    from hub.models import Channel

    async with hub.db.read() as session:
        return str(
            (
                await session.execute(
                    sa.select(Channel.id).where(col(Channel.phone_number) == number)
                )
            ).scalar_one()
        )


async def test_replay_from_failed_step_does_not_resend_earlier_sms(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow_doc = {
        "name": "Thank and forward",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.sms_received",
                "config": {"match": "first_word", "keywords": ["ORDER"]},
            },
            {"id": "thanks", "type": "sms.reply", "config": {"text": "Thanks, order noted."}},
            {
                "id": "boss",
                "type": "sms.send",
                "config": {"to": "{{ vars.boss }}", "text": "New order"},
            },
        ],
        "edges": [{"from": "start", "to": "thanks"}, {"from": "thanks", "to": "boss"}],
    }
    flow = await publish(client, api_headers, flow_doc)
    await phone.says(ANN, "order 2 pizzas")
    await drain(hub)
    [run] = await runs(client, api_headers, flow_id=flow["id"])
    assert run["status"] == "failed"  # vars.boss is not a phone number
    assert await texts_to(hub, ANN) == ["Thanks, order noted."]
    replayed = await client.post(
        f"/api/v1/runs/{run['id']}/replay", json={"mode": "from_failed"}, headers=api_headers
    )
    assert replayed.status_code == 200, replayed.text
    await drain(hub)
    assert await texts_to(hub, ANN) == ["Thanks, order noted."]  # not sent again
    detail = (await client.get(f"/api/v1/runs/{run['id']}", headers=api_headers)).json()
    thanks_steps = [s for s in detail["steps"] if s["node_id"] == "thanks"]
    assert len(thanks_steps) == 1


async def test_stop_cancels_the_contacts_waiting_runs(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow = await publish(client, api_headers, appointment())
    await start_appointment(client, api_headers, flow)
    await drain(hub)
    await phone.says(ANN, "STOP")
    await drain(hub)
    [run] = await runs(client, api_headers)
    assert run["status"] == "cancelled"
    assert "unsubscribed" in (await texts_to(hub, ANN))[-1]


async def test_flow_hook_rejects_bad_token_and_bad_body(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    flow = await publish(client, api_headers, appointment())
    url = flow["http_trigger_url"].removeprefix("http://testserver.local")
    assert (await client.post(url[:-3] + "xyz", json={})).status_code == 404
    bad = await client.post(url, content=b"[1,2]", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "malformed_body"


async def test_node_types_catalog(client: httpx.AsyncClient, api_headers: dict[str, str]) -> None:
    catalog = (await client.get("/api/v1/node-types", headers=api_headers)).json()
    types = {t["type"]: t for t in catalog}
    assert {"trigger.sms_received", "sms.reply", "sms.wait_for_reply", "http.request"} <= set(types)
    assert types["sms.wait_for_reply"]["ports"] == ["reply", "timeout"] or "reply" in str(
        types["sms.wait_for_reply"]["ports"]
    )
    assert "properties" in types["sms.reply"]["config_schema"]


async def test_sweep_carries_on_runs_a_crash_left_behind(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    from datetime import UTC, datetime, timedelta

    from hub.models import FlowRun

    flow = await publish(client, api_headers, without_http(example("join_keyword")))
    # A worker died right after creating the run: it is "running" and nobody moves it.
    run = await hub.flows.executor.start_run(
        flow["id"],
        1,
        {
            "id": "evt_x",
            "type": "sms.received",
            "data": {"from": ANN, "body": "join", "channel_id": phone.channel_id},
        },
        advance=False,
    )
    async with hub.db.write() as session:
        await session.execute(
            sa.update(FlowRun)
            .where(col(FlowRun.id) == run.id)
            .values(updated_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    await drain(hub)  # the first drain of a worker runs the periodic sweep
    [row] = await runs(client, api_headers)
    assert row["status"] == "completed"
    assert await texts_to(hub, ANN) == ["Welcome! Reply STOP to opt out."]


async def test_flow_http_request_is_signed_and_shaped_by_its_preset(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    from standardwebhooks.webhooks import Webhook

    from tests.fakes.sink import Sink

    async with Sink("/zap") as sink:
        document = example("join_keyword")
        for node in document["nodes"]:
            if node["type"] == "http.request":
                node["config"]["url"] = sink.url
        await publish(client, api_headers, document)
        await phone.says(ANN, "JOIN news")
        await drain(hub)
        await sink.wait_for(1)
    secret = (await client.get("/api/v1/flow-signing-secret", headers=api_headers)).json()["secret"]
    request = sink.requests[0]
    flat = Webhook(secret).verify(request.body, request.headers)
    assert flat["event_type"] == "sms.received" and flat["body"] == "JOIN news"  # Zapier: flat
    [run] = await runs(client, api_headers)
    assert request.webhook_id == f"{run['id']}:zap"  # the step's key: stable across retries
    assert run["status"] == "completed"
