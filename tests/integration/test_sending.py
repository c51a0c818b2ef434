"""Sending through the API and the queue, delivery reports, opt-outs and routing (simulator)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connectors.simulator import event_body, sign_request
from hub.context import Hub
from hub.models import Event, Job, Message, MessageStatusChange
from tests.conftest import ChannelFactory, drain
from tests.helpers import count

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ALICE = "+15550001234"


@pytest.fixture
async def sim(make_channel: ChannelFactory) -> str:
    """A simulator channel that reports delivery at once."""
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return str(channel.id)


async def post_sim(
    client: httpx.AsyncClient, channel_id: str, event: str, **fields: Any
) -> httpx.Response:
    """Post a signed simulator webhook."""
    fields.setdefault("event_id", f"e-{datetime.now(UTC).timestamp()}-{id(fields)}")
    fields.setdefault("from_number", ALICE)
    fields.setdefault("to_number", SIM_NUMBER)
    body = event_body(event, **fields)  # type: ignore[arg-type]
    headers = {"content-type": "application/json", **sign_request(SECRET, body, datetime.now(UTC))}
    return await client.post(f"/webhooks/{channel_id}", content=body, headers=headers)


async def send(
    client: httpx.AsyncClient, headers: dict[str, str], **payload: Any
) -> httpx.Response:
    payload.setdefault("to", ALICE)
    payload.setdefault("message", "Hello from the hub")
    return await client.post("/api/v1/send", json=payload, headers=headers)


async def get_message(
    client: httpx.AsyncClient, headers: dict[str, str], message_id: str
) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/messages/{message_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def outbound(hub: Hub) -> list[Message]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message).where(Message.direction == "outbound").order_by(Message.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def test_send_is_queued_sent_and_delivered_with_history(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    resp = await send(client, api_headers, message="Your table is ready")
    assert resp.status_code == 202, resp.text
    message_id = resp.json()["id"]
    assert resp.json()["status"] == "queued"
    await drain(hub)
    msg = await get_message(client, api_headers, message_id)
    assert msg["status"] == "delivered"
    assert msg["provider_message_id"] == f"sim-{message_id}"
    assert msg["to"] == ALICE and msg["from"] == SIM_NUMBER
    assert [h["status"] for h in msg["history"]] == ["queued", "sending", "sent", "delivered"]
    assert msg["segments"] == 1 and msg["encoding"] == "GSM-7"


async def test_late_sent_after_delivered_changes_nothing(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    message_id = (await send(client, api_headers)).json()["id"]
    await drain(hub)
    before = await get_message(client, api_headers, message_id)
    resp = await post_sim(
        client, sim, "sms.sent", event_id="late-sent", message_id=f"sim-{message_id}"
    )
    assert resp.status_code == 200
    await drain(hub)
    after = await get_message(client, api_headers, message_id)
    assert after["status"] == "delivered"
    assert after["history"] == before["history"]


async def test_same_delivery_report_five_times_is_one_event_one_update(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    # Slow simulator: the report below is the first one the hub sees.
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 3600},
    )
    message_id = (await send(client, api_headers, channel_id=channel.id)).json()["id"]
    await drain(hub)
    events_before = await count(hub, Event)
    for _ in range(5):
        resp = await post_sim(
            client,
            channel.id,
            "sms.failed",
            event_id="dlr-1",
            message_id=f"sim-{message_id}",
            error="NO_SIGNAL",
        )
        assert resp.status_code == 200
    await drain(hub)
    # One row for the gateway's report, one public sms.failed event for the transition.
    assert await count(hub, Event) == events_before + 2
    assert await count(hub, Event, Event.dedupe_key == "dlr-1") == 1
    assert await count(hub, Event, Event.type == "sms.failed", Event.message_id == message_id) == 2
    assert (
        await count(
            hub,
            MessageStatusChange,
            MessageStatusChange.message_id == message_id,
            MessageStatusChange.status == "failed",
        )
        == 1
    )
    msg = await get_message(client, api_headers, message_id)
    assert msg["status"] == "failed"
    assert msg["error"] == "NO_SIGNAL"


async def test_report_before_provider_id_is_matched_later(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 3600},
    )
    message_id = (await send(client, api_headers, channel_id=channel.id)).json()["id"]
    # The gateway reports before our send job has even run (and stored the provider id).
    resp = await post_sim(
        client, channel.id, "sms.delivered", event_id="early", message_id=f"sim-{message_id}"
    )
    assert resp.status_code == 200
    await drain(hub)
    async with hub.db.write() as session:  # make the retried matching job due now
        await session.execute(
            sa.update(Job).values(run_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await drain(hub)
    assert (await get_message(client, api_headers, message_id))["status"] == "delivered"


async def test_idempotency_key_returns_same_message_and_sends_once(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    first = await send(client, api_headers, idempotency_key="order-17")
    second = await send(client, api_headers, idempotency_key="order-17")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["duplicate"] is True
    await drain(hub)
    assert len(await outbound(hub)) == 1
    conflict = await send(client, api_headers, idempotency_key="order-17", message="something else")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"to": "not a number"}, 422, "invalid_number"),  # unparseable recipient
        ({"to": "+1555"}, 422, "invalid_number"),  # too short to be a number
        ({"channel_id": "ch_missing"}, 422, "unknown_channel"),  # no such channel
        ({"device_id": "dev_missing"}, 422, "unknown_device"),  # no such device on the channel
        ({"sim_slot": 9}, 422, "validation_error"),  # SIM slots are 0..7
        ({"slot": 8}, 422, "validation_error"),  # MySMSGate's alias has the same range
        ({"slot": 1, "sim_slot": 0}, 422, "validation_error"),  # alias and name disagree
        ({"message": ""}, 422, "validation_error"),  # empty text
        ({"message": "x" * 1601}, 422, "validation_error"),  # longer than 1600 characters
        ({"colour": "blue"}, 422, "validation_error"),  # unknown field
    ],
)
async def test_send_rejects_bad_input(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    sim: str,
    payload: dict[str, Any],
    status: int,
    code: str,
) -> None:
    resp = await send(client, api_headers, **payload)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert await count(hub, Message) == 0


async def test_send_needs_a_valid_api_key(client: httpx.AsyncClient, sim: str) -> None:
    missing = await send(client, {})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    wrong = await send(client, {"Authorization": "Bearer shk_not-a-real-key"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"


async def test_send_with_malformed_json_is_400(
    client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    resp = await client.post(
        "/api/v1/send",
        content=b'{"to": ',
        headers={**api_headers, "content-type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "malformed_body"


async def test_stop_confirms_once_blocks_sends_help_answers_start_lifts(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    for _ in range(3):  # the gateway retries the same STOP
        assert (
            await post_sim(client, sim, "sms.received", event_id="in-stop", text="Stop")
        ).status_code == 200
    await drain(hub)
    replies = await outbound(hub)
    assert len(replies) == 1
    assert "unsubscribed" in replies[0].body.lower()
    assert replies[0].status == "delivered"  # the confirmation goes out despite the opt-out

    blocked = await send(client, api_headers)
    assert blocked.status_code == 409
    assert blocked.json()["error"]["code"] == "opted_out"

    await post_sim(client, sim, "sms.received", event_id="in-help", text="HELP")
    await drain(hub)
    replies = await outbound(hub)
    assert len(replies) == 2 and "STOP" in replies[1].body
    assert replies[1].status == "delivered"

    await post_sim(client, sim, "sms.received", event_id="in-start", text="start")
    await drain(hub)
    replies = await outbound(hub)
    assert len(replies) == 3 and "subscribed again" in replies[2].body
    assert (await send(client, api_headers)).status_code == 202


async def test_yes_is_an_ordinary_reply_unless_opted_out(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    await post_sim(client, sim, "sms.received", event_id="in-yes", text="Yes")
    await drain(hub)
    assert await outbound(hub) == []


async def test_opt_out_after_accept_stops_the_queued_send(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    message_id = (await send(client, api_headers)).json()["id"]
    await post_sim(client, sim, "sms.received", event_id="in-stop", text="STOP")
    await drain(hub)
    msg = await get_message(client, api_headers, message_id)
    assert msg["status"] == "failed"
    assert msg["provider_message_id"] is None
    assert "opted_out" in msg["error"]


async def test_reply_goes_out_through_the_device_and_sim_the_contact_used(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    await post_sim(
        client, sim, "sms.received", event_id="in-1", text="hi", device_id="phone-b", sim_slot=1
    )
    await post_sim(
        client,
        sim,
        "sms.received",
        event_id="in-2",
        text="hi",
        device_id="phone-a",
        sim_slot=0,
        from_number="+15550002222",
    )
    message_id = (await send(client, api_headers)).json()["id"]
    await drain(hub)
    msg = await get_message(client, api_headers, message_id)
    devices = (await client.get("/api/v1/devices", headers=api_headers)).json()
    by_external = {d["external_id"]: d["id"] for d in devices}
    assert msg["device_id"] == by_external["phone-b"]
    assert msg["sim_slot"] == 1


async def test_a_mysmsgate_style_send_with_slot_1_goes_out_on_sim_2(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    # The phone is known with two SIMs (an SMS arrived on each).
    for slot, sender in enumerate(["+15550002222", "+15550003333"]):
        await post_sim(
            client,
            sim,
            "sms.received",
            event_id=f"in-{slot}",
            text="hi",
            device_id="phone-a",
            sim_slot=slot,
            from_number=sender,
        )
    devices = (await client.get("/api/v1/devices", headers=api_headers)).json()
    device_id = next(d["id"] for d in devices if d["external_id"] == "phone-a")
    # MySMSGate's body: to, message, device_id, slot (0-based).
    resp = await client.post(
        "/api/v1/send",
        json={"to": ALICE, "message": "Your order is ready", "device_id": device_id, "slot": 1},
        headers=api_headers,
    )
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    assert answer["sms_id"] == answer["id"] and answer["status"] == "queued"
    await drain(hub)
    msg = await get_message(client, api_headers, answer["sms_id"])
    assert (msg["device_id"], msg["sim_slot"]) == (device_id, 1)
    assert msg["status"] in ("sent", "delivered")


async def test_new_contacts_are_spread_round_robin_over_devices(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    for i, device in enumerate(["phone-a", "phone-b"]):
        await post_sim(
            client,
            sim,
            "sms.received",
            event_id=f"seed-{i}",
            text="hi",
            device_id=device,
            from_number=f"+1555000900{i}",
        )
    ids = [(await send(client, api_headers, to=f"+1555000700{i}")).json()["id"] for i in range(4)]
    await drain(hub)
    used = [(await get_message(client, api_headers, i))["device_id"] for i in ids]
    assert sorted(used.count(d) for d in set(used)) == [2, 2]  # jobs run concurrently


async def test_device_rate_limit_holds_messages_and_never_drops_them(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    await post_sim(client, sim, "sms.received", event_id="seed", text="hi", device_id="phone-a")
    async with hub.db.write() as session:
        from hub.models import Device

        await session.execute(sa.update(Device).values(rate_limit_per_min=2))
    ids = [(await send(client, api_headers, message=f"part {i}")).json()["id"] for i in range(3)]
    await drain(hub)
    statuses = [(await get_message(client, api_headers, i))["status"] for i in ids]
    assert statuses.count("delivered") == 2
    assert statuses.count("queued") == 1
    held = ids[statuses.index("queued")]
    async with hub.db.read() as session:
        job = (await session.execute(sa.select(Job).where(Job.name == "send_message"))).scalar_one()
    assert job.args["message_id"] == held
    assert job.run_at > datetime.now(UTC) + timedelta(seconds=30)
    assert job.attempts == 0  # waiting for the limit does not use up attempts
    # A minute later the limit has room again (the SIM's last 60 s are empty).
    async with hub.db.write() as session:
        from hub.models import SimPacing

        await session.execute(sa.update(SimPacing).values(recent=[]))
        await session.execute(sa.update(Job).values(run_at=datetime.now(UTC)))
    await drain(hub)
    assert (await get_message(client, api_headers, held))["status"] == "delivered"


async def test_segments_and_encoding_are_stored(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    long_gsm = await send(client, api_headers, message="a" * 161)
    unicode = await send(client, api_headers, message="Привет ✓")
    assert (await get_message(client, api_headers, long_gsm.json()["id"]))["segments"] == 2
    msg = await get_message(client, api_headers, unicode.json()["id"])
    assert msg["encoding"] == "UCS-2" and msg["segments"] == 1


async def test_messages_list_is_newest_first_filtered_and_paginated(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    await post_sim(client, sim, "sms.received", event_id="in-1", text="first")
    sent = [(await send(client, api_headers, message=f"out {i}")).json()["id"] for i in range(3)]
    page = (await client.get("/api/v1/messages?limit=2", headers=api_headers)).json()
    assert [m["id"] for m in page["items"]] == [sent[2], sent[1]]
    rest = (
        await client.get(
            f"/api/v1/messages?limit=2&cursor={page['next_cursor']}", headers=api_headers
        )
    ).json()
    assert [m["direction"] for m in rest["items"]] == ["outbound", "inbound"]
    assert rest["next_cursor"] is None
    inbound = (await client.get("/api/v1/messages?direction=inbound", headers=api_headers)).json()
    assert [m["body"] for m in inbound["items"]] == ["first"]
    by_contact = (
        await client.get(f"/api/v1/messages?contact=%2B1{ALICE[2:]}", headers=api_headers)
    ).json()
    assert len(by_contact["items"]) == 4
    queued = (await client.get("/api/v1/messages?status=queued", headers=api_headers)).json()
    assert len(queued["items"]) == 3
    bad = await client.get("/api/v1/messages?direction=sideways", headers=api_headers)
    assert bad.status_code in (400, 422)


async def test_each_status_transition_is_one_public_event(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    message_id = (await send(client, api_headers)).json()["id"]
    await drain(hub)
    # The gateway repeats "delivered" under a new event id: no second public event.
    await post_sim(client, sim, "sms.delivered", event_id="again", message_id=f"sim-{message_id}")
    await drain(hub)
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Event.type, Event.payload).where(
                Event.dedupe_key.like(f"status:{message_id}:%")
            )  # type: ignore[attr-defined]
        )
        public = {type_: payload for type_, payload in rows.all()}
    assert sorted(public) == ["sms.delivered", "sms.sent"]
    delivered = public["sms.delivered"]
    assert delivered["id"].startswith("evt_") and delivered["timestamp"].endswith("Z")
    assert delivered["data"]["message_id"] == message_id
    assert delivered["data"]["status"] == "delivered"
    assert delivered["data"]["to"] == ALICE


async def _mark_sending(hub: Hub, message_id: str, handed_at: datetime) -> None:
    """The message as a send job leaves it in the middle of its hand-over."""
    from hub.store import execute

    await hub.store.write(
        execute(
            "UPDATE messages SET status = 'sending', handed_at = ? WHERE id = ?",
            (handed_at, message_id),
        )
    )


async def test_a_second_send_job_waits_while_another_may_be_handing_the_message_over(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    """A message marked ``sending`` less than a job lease ago may be in another worker's
    hand-over: a second job of it waits instead of handing it over again; once that lease
    is over (the other worker died) it goes out, once."""
    from tests.helpers import fast_forward

    resp = await send(client, api_headers)
    assert resp.status_code == 202, resp.text
    message_id = resp.json()["id"]
    await _mark_sending(hub, message_id, hub.clock())
    await drain(hub)
    waiting = await get_message(client, api_headers, message_id)
    assert waiting["status"] == "sending"
    assert "another job" in waiting["waiting_reason"]
    assert [h["status"] for h in waiting["history"]] == ["queued"]

    lease = timedelta(seconds=hub.settings.job_lease_s + 1)
    await _mark_sending(hub, message_id, hub.clock() - lease)
    await fast_forward(hub)
    await drain(hub)
    done = await get_message(client, api_headers, message_id)
    assert done["status"] == "delivered"
    assert [h["status"] for h in done["history"]].count("sent") == 1


async def test_a_hand_over_of_this_process_is_waited_for_however_old(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    """The process knows its own hand-overs: while one is under way (a slow gateway, past
    the lease), a second job of the message leaves it alone."""
    from tests.helpers import fast_forward

    resp = await send(client, api_headers)
    message_id = resp.json()["id"]
    await _mark_sending(hub, message_id, hub.clock() - timedelta(hours=1))
    from hub.services.handover import HandOver

    hub.handing[message_id] = HandOver()
    await drain(hub)
    assert (await get_message(client, api_headers, message_id))["status"] == "sending"
    del hub.handing[message_id]
    await fast_forward(hub)
    await drain(hub)
    assert (await get_message(client, api_headers, message_id))["status"] == "delivered"


async def test_a_timed_out_jobs_claim_does_not_hold_the_message(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    """A send job cancelled (timed out) while its unit still waited in the store leaves a
    claim that is no longer alive: once the lease is over the message goes out."""
    from hub.services.handover import HandOver

    resp = await send(client, api_headers)
    message_id = resp.json()["id"]
    await _mark_sending(hub, message_id, hub.clock() - timedelta(hours=1))
    dead = HandOver()
    dead.alive = False
    hub.handing[message_id] = dead
    await drain(hub)
    assert (await get_message(client, api_headers, message_id))["status"] == "delivered"


async def test_a_jobs_own_claim_does_not_make_it_wait(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    """A hand-over unit run again (it lost a deadlock) finds its own claim registered by
    the first try: that is no other job's, so it goes on instead of waiting on itself."""
    from hub.services.handover import HandOver, Wait, _prepare

    resp = await send(client, api_headers)
    message_id = resp.json()["id"]
    await _mark_sending(hub, message_id, hub.clock() - timedelta(hours=1))
    token = HandOver()
    hub.handing[message_id] = token
    channel = await hub.channels.get(sim)
    prepared = await hub.store.write(lambda: _prepare(hub, message_id, channel, token))
    assert prepared is not None and not isinstance(prepared, Wait)
    other = HandOver()
    again = await hub.store.write(lambda: _prepare(hub, message_id, channel, other))
    assert isinstance(again, Wait)  # another job of this process meanwhile waits
