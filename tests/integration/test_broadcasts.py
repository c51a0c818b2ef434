"""Broadcasts on the real hub: groups to a gateway with 2 phones x 2 SIMs, opt-outs skipped
and counted, templates over the contact, pause / resume / cancel, flow broadcasts, replies
linked, the events, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import Device, Event, FlowRun, Message
from hub.services import broadcasts_jobs
from hub.store import fetch_all, fetch_value
from tests.conftest import ChannelFactory, drain
from tests.fakes.providers import FakeProvider
from tests.helpers import SimPhone, fast_forward

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Pacing is Part B's subject (and its own test); here every SIM may go at once.
    return {"device_rate_limit_per_min": 600, "send_spacing_max_s": 0.0}


def phones(n: int, base: int = 15552000000) -> list[str]:
    return [f"+{base + i}" for i in range(n)]


async def settle(hub: Hub, timeout: float = 60.0) -> None:
    """Drain, then let the finish check look again at once (it polls every 2 s)."""
    await drain(hub, timeout=timeout)
    for _ in range(5):
        if not await fast_forward(hub, broadcasts_jobs.BROADCAST_FINISH):
            return
        await drain(hub, timeout=timeout)


async def make_group(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, numbers: list[str]
) -> str:
    resp = await client.post("/api/v1/groups", json={"name": name}, headers=headers)
    assert resp.status_code == 201, resp.text
    group_id: str = resp.json()["id"]
    added = await client.post(
        f"/api/v1/groups/{group_id}/members", json={"phones": numbers}, headers=headers
    )
    assert added.status_code == 200, added.text
    return group_id


async def contact_ids(hub: Hub, numbers: list[str]) -> dict[str, str]:
    from hub.models import Contact

    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Contact.phone, Contact.id).where(col(Contact.phone).in_(numbers))
        )
        return {str(p): str(i) for p, i in rows.all()}


async def set_contact(
    client: httpx.AsyncClient, headers: dict[str, str], contact_id: str, **changes: Any
) -> None:
    resp = await client.patch(f"/api/v1/contacts/{contact_id}", json=changes, headers=headers)
    assert resp.status_code == 200, resp.text


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Spring sale")
    resp = await client.post("/api/v1/broadcasts", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    found: dict[str, Any] = resp.json()
    return found


async def status_of(
    client: httpx.AsyncClient, headers: dict[str, str], broadcast_id: str
) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/broadcasts/{broadcast_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


async def events_of(hub: Hub, type_: str) -> list[dict[str, Any]]:
    async with hub.db.read() as session:
        rows = await session.execute(sa.select(Event.payload).where(col(Event.type) == type_))
        return [dict(p) for p in rows.scalars()]


async def test_group_of_500_over_2_phones_x_2_sims_each_eligible_recipient_once(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    async with FakeProvider("smsgate", username="u", password="p") as fake:
        channel = await make_channel(
            "smsgate",
            name="phones",
            config={"mode": "private", "base_url": fake.base_url, "username": "u", "password": "p"},
        )
        async with hub.db.write() as session:
            for n in (1, 2):
                session.add(
                    Device(
                        id=f"dev_{n}", channel_id=channel.id, external_id=f"ph{n}", sim_slots=[0, 1]
                    )
                )
        members = phones(500)
        group_a = await make_group(client, api_headers, "customers", members[:300])
        # Overlapping groups and a contact named twice: each contact gets one message.
        group_b = await make_group(client, api_headers, "newsletter", members[250:])
        ids = await contact_ids(hub, members)
        opted_out = members[::25]  # 20 of them replied STOP some day
        for number in opted_out:
            await set_contact(client, api_headers, ids[number], opted_out=True)
        await set_contact(client, api_headers, ids[members[1]], name="Ann")
        created = await create(
            client,
            api_headers,
            text="Hi {{ contact.name or 'there' }}, 20% off today",
            group_ids=[group_a, group_b],
            contact_ids=[ids[members[1]]],
            channel_id=channel.id,
        )
        assert created["status"] in ("scheduled", "running")
        await settle(hub, timeout=120)

        to = [r.json()["phoneNumbers"][0] for r in fake.requests]
        eligible = set(members) - set(opted_out)
        assert len(to) == len(eligible) == 480
        assert set(to) == eligible  # each eligible recipient once, no opted-out one
        texts = {
            r.json()["phoneNumbers"][0]: r.json()["textMessage"]["text"] for r in fake.requests
        }
        assert texts[members[1]] == "Hi Ann, 20% off today"
        assert texts[members[2]] == "Hi there, 20% off today"
        devices = {r.json().get("deviceId") for r in fake.requests}
        assert devices == {"ph1", "ph2"}  # spread over both phones

    done = await status_of(client, api_headers, created["id"])
    assert done["status"] == "completed"
    counts = done["counts"]
    assert counts["recipients"] == 500
    assert counts["skipped_opted_out"] == 20
    assert counts["sent"] + counts["delivered"] == 480
    assert counts["queued"] == counts["failed"] == counts["cancelled"] == 0
    started = await events_of(hub, "broadcast.started")
    completed = await events_of(hub, "broadcast.completed")
    assert [e["data"]["broadcast_id"] for e in started] == [created["id"]]
    assert started[0]["data"]["counts"]["recipients"] == 500
    assert [e["data"]["status"] for e in completed] == ["completed"]
    assert completed[0]["data"]["counts"]["skipped_opted_out"] == 20
    listed = await client.get("/api/v1/broadcasts", headers=api_headers)
    assert [b["id"] for b in listed.json()["items"]] == [created["id"]]
    assert done["waiting_for_capacity_until"] is None
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"/api/v1/broadcasts", "/api/v1/broadcasts/{broadcast_id}/pause"} <= set(schema["paths"])
    fields = schema["components"]["schemas"]["BroadcastIn"]["properties"]
    assert all(f.get("description") for f in fields.values())


@pytest.fixture
async def sim(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


async def outbound_to(hub: Hub) -> list[str]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message.to_number).where(
                col(Message.direction) == "outbound",
                col(Message.status).in_(("accepted", "sent", "delivered")),
            )
        )
        return [str(r) for r in rows.scalars()]


async def started_with_one_batch(
    hub: Hub, client: httpx.AsyncClient, headers: dict[str, str], group_id: str
) -> str:
    """A broadcast started, its first batch of 100 messages written, none handed over."""
    created = await create(
        client, headers, text="Hello", group_ids=[group_id], send_at="2099-01-01T09:00:00Z"
    )
    await broadcasts_jobs.broadcast_start(hub, created["id"])
    await broadcasts_jobs.broadcast_batch(hub, created["id"], 0, 0)
    return str(created["id"])


async def test_pause_holds_every_unsent_message_and_resume_sends_each_once(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    group = await make_group(client, api_headers, "club", phones(150))
    broadcast_id = await started_with_one_batch(hub, client, api_headers, group)
    paused = await client.post(f"/api/v1/broadcasts/{broadcast_id}/pause", headers=api_headers)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.json()["counts"]["queued"] == 150
    await drain(hub)
    assert await outbound_to(hub) == []  # the 100 queued messages were held
    again = await client.post(f"/api/v1/broadcasts/{broadcast_id}/pause", headers=api_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "bad_state"

    resumed = await client.post(f"/api/v1/broadcasts/{broadcast_id}/resume", headers=api_headers)
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    await settle(hub)
    sent = await outbound_to(hub)
    assert sorted(sent) == sorted(phones(150))  # each once
    done = await status_of(client, api_headers, broadcast_id)
    assert done["status"] == "completed"
    assert done["counts"]["sent"] + done["counts"]["delivered"] == 150


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("action", ["pause", "cancel"])
async def test_pause_and_cancel_never_wait_on_a_message_a_hand_over_holds(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    sim: SimPhone,
    database_url: str,
    action: str,
) -> None:
    """A hand-over (here another connection) holds one queued message's row lock: the
    action commits without waiting for it (waiting there is how a group-committed batch of
    hand-overs deadlocked it again and again), and moves that message too once it is free."""
    import asyncpg

    group = await make_group(client, api_headers, "club", phones(150))
    broadcast_id = await started_with_one_batch(hub, client, api_headers, group)
    to = {"pause": "held", "cancel": "cancelled"}[action]
    blocker = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with blocker.transaction():
            locked = await blocker.fetchval(
                "SELECT m.id FROM messages m JOIN broadcast_recipients r ON r.message_id = m.id "
                "WHERE r.broadcast_id = $1 ORDER BY m.id DESC LIMIT 1 FOR NO KEY UPDATE OF m",
                broadcast_id,
            )
            task = asyncio.create_task(
                client.post(f"/api/v1/broadcasts/{broadcast_id}/{action}", headers=api_headers)
            )
            for _ in range(300):  # the action's own unit commits while the lock is held
                moved = await hub.store.read(
                    fetch_value("SELECT COUNT(*) FROM messages WHERE status = ?", (to,))
                )
                if moved:
                    break
                await asyncio.sleep(0.01)
            assert moved == 99  # every queued message but the one being handed over
            assert not task.done()  # it waits for that one, not in a lock
        resp = await task
    finally:
        await blocker.close()
    assert resp.status_code == 200, resp.text
    statuses = await hub.store.read(
        fetch_all("SELECT status, COUNT(*) FROM messages GROUP BY status")
    )
    assert dict(statuses) == {to: 100}
    assert (
        await hub.store.read(fetch_value("SELECT status FROM messages WHERE id = ?", (locked,)))
        == to
    )


async def test_cancel_sends_nothing_more_and_keeps_the_counts(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    group = await make_group(client, api_headers, "club", phones(150))
    broadcast_id = await started_with_one_batch(hub, client, api_headers, group)
    cancelled = await client.post(f"/api/v1/broadcasts/{broadcast_id}/cancel", headers=api_headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await drain(hub)
    assert await outbound_to(hub) == []
    counts = (await status_of(client, api_headers, broadcast_id))["counts"]
    assert counts["recipients"] == counts["cancelled"] == 150
    for action in ("pause", "resume", "cancel"):
        resp = await client.post(f"/api/v1/broadcasts/{broadcast_id}/{action}", headers=api_headers)
        assert resp.status_code == 409, action
    completed = await events_of(hub, "broadcast.completed")
    assert [e["data"]["status"] for e in completed] == ["cancelled"]


async def test_scheduled_broadcast_cancelled_before_its_time_never_starts(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    group = await make_group(client, api_headers, "club", phones(3))
    created = await create(
        client, api_headers, text="Later", group_ids=[group], send_at="2099-01-01T09:00:00+01:00"
    )
    assert created["status"] == "scheduled" and created["send_at"].startswith("2099-01-01T08:00")
    pause = await client.post(f"/api/v1/broadcasts/{created['id']}/pause", headers=api_headers)
    assert pause.status_code == 409
    resp = await client.post(f"/api/v1/broadcasts/{created['id']}/cancel", headers=api_headers)
    assert resp.status_code == 200
    await broadcasts_jobs.broadcast_start(hub, created["id"])  # its time comes: nothing
    await drain(hub)
    assert await outbound_to(hub) == []
    assert (await status_of(client, api_headers, created["id"]))["counts"]["recipients"] == 0
    assert await events_of(hub, "broadcast.started") == []


async def test_a_reply_is_linked_to_the_broadcast_and_a_flow_sees_its_id(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    flow = {
        "name": "Answer",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
            {
                "id": "echo",
                "type": "sms.reply",
                "config": {"text": "re {{ trigger.data.broadcast_id or 'nothing' }}"},
            },
        ],
        "edges": [{"from": "start", "to": "echo"}],
    }
    resp = await client.post("/api/v1/flows/import?publish=true", json=flow, headers=api_headers)
    assert resp.status_code == 201, resp.text
    ann, bob = phones(2)
    group = await make_group(client, api_headers, "club", [ann])
    created = await create(client, api_headers, text="Coming on Friday?", group_ids=[group])
    await drain(hub)
    await sim.says(ann, "yes!")
    await sim.says(bob, "who is this?")  # not a recipient: no link
    await drain(hub)
    received = await events_of(hub, "sms.received")
    links = {e["data"]["from"]: e["data"]["broadcast_id"] for e in received}
    assert links == {ann: created["id"], bob: None}
    async with hub.db.read() as session:
        texts = (
            await session.execute(
                sa.select(Message.to_number, Message.body).where(
                    col(Message.body).startswith("re ")
                )
            )
        ).all()
    assert sorted(texts) == sorted([(ann, f"re {created['id']}"), (bob, "re nothing")])
    counts = (await status_of(client, api_headers, created["id"]))["counts"]
    assert counts["replied"] == 1


async def test_flow_broadcast_starts_one_run_per_recipient_carrying_the_broadcast_id(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    survey = {
        "name": "Survey",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
            {
                "id": "ask",
                "type": "sms.send",
                "config": {
                    "to": "{{ contact.phone }}",
                    "text": "Rate us 1-5 ({{ trigger.data.broadcast_id }})",
                },
            },
        ],
        "edges": [{"from": "start", "to": "ask"}],
    }
    resp = await client.post("/api/v1/flows/import?publish=true", json=survey, headers=api_headers)
    assert resp.status_code == 201, resp.text
    flow_id = resp.json()["id"]
    members = phones(25)
    group = await make_group(client, api_headers, "panel", members)
    created = await create(client, api_headers, flow_id=flow_id, group_ids=[group])
    await settle(hub)
    assert sorted(await outbound_to(hub)) == sorted(members)
    async with hub.db.read() as session:
        docs = (await session.execute(sa.select(FlowRun.doc))).scalars().all()
    assert len(docs) == 25
    assert {d["trigger"]["data"]["broadcast_id"] for d in docs} == {created["id"]}
    done = await status_of(client, api_headers, created["id"])
    assert done["status"] == "completed"
    assert done["counts"]["runs"] == {"completed": 25}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # both text and flow_id
        ({"text": "hi", "flow_id": "flw_x", "contact_ids": ["ct_1"]}, "text"),
        # neither
        ({"contact_ids": ["ct_1"]}, "text"),
        # no recipients
        ({"text": "hi"}, "group_ids"),
        # a template that does not compile
        ({"text": "Hi {{ contact.name", "contact_ids": ["ct_1"]}, "text"),
        # a template that fails when rendered
        ({"text": "{{ contact.name.nope() }}", "contact_ids": ["ct_1"]}, "text"),
        # unknown ids, named
        ({"text": "hi", "group_ids": ["grp_nope"]}, "group_ids"),
        ({"text": "hi", "contact_ids": ["ct_nope"]}, "contact_ids"),
        ({"flow_id": "flw_nope", "contact_ids": ["ct_1"]}, "flow_id"),
        ({"text": "hi", "contact_ids": ["ct_1"], "channel_id": "ch_nope"}, "channel_id"),
        # quiet hours that are not HH:MM
        ({"text": "hi", "contact_ids": ["ct_1"], "quiet_hours": {"start": "9pm"}}, "quiet_hours"),
        # a time without an offset
        ({"text": "hi", "contact_ids": ["ct_1"], "send_at": "2099-01-01T09:00"}, "send_at"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    sim: SimPhone,
    body: dict[str, Any],
    field: str,
) -> None:
    await sim.says("+15550001234", "hello")  # makes contact ct_…: swap it in for ct_1
    await drain(hub)
    real = (await contact_ids(hub, ["+15550001234"]))["+15550001234"]
    body = {
        "name": "x",
        **body,
        "contact_ids": [real if c == "ct_1" else c for c in body.get("contact_ids", [])],
    }
    if not body["contact_ids"]:
        del body["contact_ids"]
    resp = await client.post("/api/v1/broadcasts", json=body, headers=api_headers)
    assert resp.status_code in (400, 422), resp.text
    details = resp.json()["error"]["details"]
    assert any(d["field"].startswith(field) for d in details), details
    missing = await client.get("/api/v1/broadcasts/bc_nope", headers=api_headers)
    assert missing.status_code == 404


async def test_500_to_2_phones_x_2_sims_at_20_a_minute_spread_and_never_over_the_rate(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    """The must-show with Part B's pacing, on a fake clock: each eligible recipient once,
    spread across the 4 SIMs, never more than 20 parts a minute on any SIM."""
    from datetime import UTC, datetime, timedelta

    from tests.integration.test_pacing import run_clock, two_phones

    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 3600},
    )
    sims = [{"slot": 0, "rate_per_min": 20}, {"slot": 1, "rate_per_min": 20}]
    await two_phones(client, api_headers, channel.id, sims)
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    now = [start]
    hub.clock = lambda: now[0]
    members = phones(500)
    group = await make_group(client, api_headers, "customers", members)
    ids = await contact_ids(hub, members)
    opted_out = members[::50]
    for number in opted_out:
        await set_contact(client, api_headers, ids[number], opted_out=True)
    created = await create(client, api_headers, text="Sale", group_ids=[group])
    await drain(hub, timeout=60)
    first = await status_of(client, api_headers, created["id"])
    assert first["counts"]["sent"] == 80  # 20 per SIM at once; the rest waits
    assert first["counts"]["queued"] == 410
    free_at = datetime.fromisoformat(first["waiting_for_capacity_until"])
    assert start + timedelta(seconds=60) <= free_at < start + timedelta(seconds=62)
    await run_clock(hub, now, rounds=40)
    await settle(hub)

    async with hub.db.read() as session:
        sent = list(
            (
                await session.execute(
                    sa.select(Message).where(
                        col(Message.direction) == "outbound", col(Message.body) == "Sale"
                    )
                )
            ).scalars()
        )
    assert sorted(str(m.to_number) for m in sent) == sorted(set(members) - set(opted_out))
    per_sim: dict[tuple[str, int], list[Any]] = {}
    for m in sent:
        assert m.status == "sent" and m.device_id and m.sim_slot is not None and m.handed_at
        per_sim.setdefault((m.device_id, m.sim_slot), []).append(m.handed_at)
    assert len(per_sim) == 4
    minute = timedelta(seconds=60)
    for times in per_sim.values():
        for t in times:
            assert sum(1 for u in times if t <= u < t + minute) <= 20
    done = await status_of(client, api_headers, created["id"])
    assert done["status"] == "completed"
    assert done["counts"]["skipped_opted_out"] == len(opted_out) == 10
    assert done["counts"]["sent"] == 490


async def test_broadcast_quiet_hours_hold_its_messages_until_they_end(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    from datetime import UTC, datetime

    night = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    now = [night]
    hub.clock = lambda: now[0]
    group = await make_group(client, api_headers, "club", phones(3))
    quiet = {"start": "21:00", "end": "08:00"}
    created = await create(client, api_headers, text="Hi", group_ids=[group], quiet_hours=quiet)
    assert created["quiet_hours"] == quiet
    await drain(hub)
    assert await outbound_to(hub) == []  # 22:00 UTC is inside the window
    async with hub.db.read() as session:
        waiting = (
            (await session.execute(sa.select(Message).where(col(Message.body) == "Hi")))
            .scalars()
            .all()
        )
    assert {m.quiet_hours["start"] for m in waiting if m.quiet_hours} == {"21:00"}
    assert {m.next_attempt_at for m in waiting} == {datetime(2026, 12, 2, 8, 0, tzinfo=UTC)}
    now[0] = datetime(2026, 12, 2, 8, 0, 1, tzinfo=UTC)
    await fast_forward(hub, "send_message")
    await settle(hub)
    assert sorted(await outbound_to(hub)) == sorted(phones(3))
    assert (await status_of(client, api_headers, created["id"]))["status"] == "completed"
