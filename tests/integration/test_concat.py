"""Long SMS arrive whole: the parts of a concatenated Vonage SMS, posted as Vonage posts
them (signed, out of order, one twice), become ONE message, one ``sms.received``, one flow
run; a missing part is waited for ``SMSHUB_CONCAT_WAIT_S`` (fake clock) and then what
arrived is released, marked incomplete (hub.services.concat)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa

from connectors.base import InboundEvent, MessagePart
from hub.app import build_hub
from hub.context import ChannelRuntime, Hub
from hub.models import ConcatGroup, ConcatPart, Contact, Event, Message
from hub.services.concat import CONCAT_RELEASE, concat_release
from hub.services.ingest import ingest_events, write_batch
from hub.store import Unit, fetch_all
from tests.conftest import ChannelFactory, drain, make_settings
from tests.fakes.sink import Sink
from tests.fakes.webhooks import vonage_sig
from tests.helpers import count, fast_forward

SECRET = "vonage-s3cret-s3cret"
SENDER = "+447700900001"
OURS = "+447700900000"
#: A text of three GSM-7 parts (153 characters each, the last shorter), as a phone splits it.
WHOLE = (
    "Hello, this is a long message about tomorrow's appointment at the clinic. "
    "Please bring your card, arrive ten minutes early and tell the desk your name. "
    "If you cannot come, reply to this number and we will find another time for you. "
    "We open at eight and the car park is behind the building, next to the pharmacy. "
    "Thank you and see you soon."
)
PARTS = [WHOLE[:153], WHOLE[153:306], WHOLE[306:]]


@pytest.fixture
async def vonage(hub: Hub, make_channel: ChannelFactory) -> str:
    """A Vonage channel whose webhooks are signed (SHA-256 with the channel's secret)."""
    channel = await make_channel(
        "vonage",
        name="Vonage",
        config={"api_key": "abcd1234", "api_secret": "s", "signature_method": "sha256"},
        webhook_secret=SECRET,
    )
    return str(channel.id)


def frozen(hub: Hub, at: datetime) -> Callable[[datetime], None]:
    """Stop the hub's clock at ``at``; the returned function moves it."""
    now = [at]
    hub.clock = lambda: now[0]

    def move(to: datetime) -> None:
        now[0] = to

    return move


async def post_part(
    hub: Hub,
    client: httpx.AsyncClient,
    channel_id: str,
    number: int,
    *,
    ref: str = "A7",
    parts: list[str] = PARTS,
    sender: str = SENDER,
) -> httpx.Response:
    """Part ``number`` of ``parts`` as Vonage posts it: a signed form with its concat-*
    fields and its own messageId; answered 200 once stored."""
    params = {
        "msisdn": sender.removeprefix("+"),
        "to": OURS.removeprefix("+"),
        "messageId": f"0A00000{ref}{number:04d}",
        "text": parts[number - 1],
        "type": "text",
        "keyword": parts[0].split()[0].upper(),
        "api-key": "abcd1234",
        "message-timestamp": hub.clock().strftime("%Y-%m-%d %H:%M:%S"),
        "concat": "true",
        "concat-ref": ref,
        "concat-total": str(len(parts)),
        "concat-part": str(number),
        "timestamp": str(int(hub.clock().timestamp())),
    }
    params["sig"] = vonage_sig(params, SECRET, "sha256")
    resp = await client.post(
        f"/webhooks/{channel_id}",
        content=urlencode(params).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 200, resp.text
    return resp


async def publish_catch_all(client: httpx.AsyncClient, api_headers: dict[str, str]) -> str:
    """A published flow that any SMS starts; it keeps the body it was started with."""
    flow = {
        "name": "every SMS",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
            {
                "id": "keep",
                "type": "data.set",
                "config": {"vars": {"text": "{{ trigger.data.body }}"}},
            },
        ],
        "edges": [{"from": "start", "to": "keep"}],
    }
    resp = await client.post("/api/v1/flows/import?publish=true", json=flow, headers=api_headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def runs(client: httpx.AsyncClient, api_headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every run, oldest first, with its trigger and vars."""
    listed = (await client.get("/api/v1/runs", headers=api_headers)).json()["items"]
    found = []
    for summary in reversed(listed):
        detail = await client.get(f"/api/v1/runs/{summary['id']}", headers=api_headers)
        found.append(detail.json()["run"])
    return found


async def received_events(hub: Hub) -> list[dict[str, Any]]:
    """The payloads of the public sms.received events, oldest first."""
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Event.payload).where(Event.type == "sms.received").order_by(Event.id)
        )
        return [dict(p) for p in rows.scalars()]


async def inbound(hub: Hub) -> list[Message]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message).where(Message.direction == "inbound").order_by(Message.id)
        )
        return list(rows.scalars())


async def pending_parts(hub: Hub) -> tuple[int, int]:
    return await count(hub, ConcatGroup), await count(hub, ConcatPart)


async def test_three_vonage_parts_out_of_order_and_one_twice_reach_a_flow_as_one_message(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], vonage: str
) -> None:
    await publish_catch_all(client, api_headers)
    async with Sink("/endpoint") as endpoint:
        made = await client.post(
            "/api/v1/endpoints",
            json={"url": endpoint.url, "event_types": ["sms.received"]},
            headers=api_headers,
        )
        assert made.status_code == 201, made.text
        await post_part(hub, client, vonage, 3)
        await post_part(hub, client, vonage, 1)
        await post_part(hub, client, vonage, 3)  # Vonage resends a part: stored once
        await drain(hub)
        # Two of three parts are on disk; nothing downstream has seen anything.
        assert await pending_parts(hub) == (1, 2)
        assert await inbound(hub) == [] and await received_events(hub) == []
        assert await runs(client, api_headers) == [] and endpoint.requests == []

        await post_part(hub, client, vonage, 2)
        await drain(hub)
        await post_part(hub, client, vonage, 2)  # a retry after the message was made
        await drain(hub)
        forwarded = [r.json() for r in endpoint.requests]

    (message,) = await inbound(hub)
    assert message.body == WHOLE
    assert message.provider_message_id == "0A00000A70001"  # the first part's
    assert message.segments == 3
    (event,) = await received_events(hub)
    assert event["data"]["body"] == WHOLE
    assert event["data"]["message_id"] == message.id
    assert event["data"]["parts"] == {
        "total": 3,
        "received": 3,
        "missing": [],
        "provider_message_ids": ["0A00000A70001", "0A00000A70002", "0A00000A70003"],
    }
    assert event["data"]["incomplete"] is False
    (run,) = await runs(client, api_headers)
    assert run["trigger"]["data"]["body"] == WHOLE
    assert run["vars"]["text"] == WHOLE
    assert [e["type"] for e in forwarded] == ["sms.received"]
    assert forwarded[0]["data"]["body"] == WHOLE
    # Joined: the group and its parts are gone; its timeout job, when it fires, does nothing.
    assert await pending_parts(hub) == (0, 0)
    await fast_forward(hub, CONCAT_RELEASE)
    await drain(hub)
    assert len(await inbound(hub)) == 1 and len(await received_events(hub)) == 1
    assert len(await runs(client, api_headers)) == 1


async def test_a_missing_part_releases_what_arrived_after_the_window_marked_incomplete(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], vonage: str
) -> None:
    await publish_catch_all(client, api_headers)
    t0 = datetime.now(UTC)
    move = frozen(hub, t0)
    await post_part(hub, client, vonage, 1)
    await post_part(hub, client, vonage, 3)
    # The timer fires early (a fast-forwarded job): within the window it waits on.
    move(t0 + timedelta(seconds=30))
    assert await fast_forward(hub, CONCAT_RELEASE) == 1
    await drain(hub)
    assert await inbound(hub) == [] and await pending_parts(hub) == (1, 2)

    move(t0 + timedelta(seconds=61))
    assert await fast_forward(hub, CONCAT_RELEASE) == 1
    await drain(hub)
    (message,) = await inbound(hub)
    assert message.body == PARTS[0] + PARTS[2]
    (event,) = await received_events(hub)
    assert event["data"]["incomplete"] is True
    assert event["data"]["parts"] == {
        "total": 3,
        "received": 2,
        "missing": [2],
        "provider_message_ids": ["0A00000A70001", "0A00000A70003"],
    }
    (run,) = await runs(client, api_headers)
    assert run["trigger"]["data"]["body"] == PARTS[0] + PARTS[2]
    assert run["trigger"]["data"]["incomplete"] is True

    # The missing part comes late: it is kept, not merged into the published message; after
    # its own window it is a message of its own.
    await post_part(hub, client, vonage, 2)
    await drain(hub)
    assert len(await inbound(hub)) == 1 and await pending_parts(hub) == (1, 1)
    move(t0 + timedelta(seconds=125))
    await fast_forward(hub, CONCAT_RELEASE)
    await drain(hub)
    first, late = await inbound(hub)
    assert (first.id, late.body) == (message.id, PARTS[1])
    assert (await received_events(hub))[1]["data"]["parts"]["missing"] == [1, 3]
    assert len(await runs(client, api_headers)) == 2
    assert await pending_parts(hub) == (0, 0)


async def test_a_long_message_starting_with_stop_is_no_opt_out_but_stop_in_parts_is(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], vonage: str
) -> None:
    await publish_catch_all(client, api_headers)
    long_stop = ["STOP sending the reminders to my old number please, ", "use the new one."]
    for number in (2, 1):
        await post_part(hub, client, vonage, number, ref="B1", parts=long_stop)
    await drain(hub)
    (run,) = await runs(client, api_headers)
    assert run["trigger"]["data"]["body"] == "".join(long_stop)
    async with hub.db.read() as session:
        contact = (await session.execute(sa.select(Contact))).scalar_one()
        assert contact.opted_out is False

    # Silly, but a phone may split even this: joined, it is exactly STOP.
    for number in (1, 2):
        await post_part(hub, client, vonage, number, ref="B2", parts=["ST", "OP"])
    await drain(hub)
    async with hub.db.read() as session:
        contact = (await session.execute(sa.select(Contact))).scalar_one()
        assert contact.opted_out is True
    assert len(await runs(client, api_headers)) == 1  # compliance keywords reach no flow
    assert [m.body for m in await inbound(hub)] == ["".join(long_stop), "STOP"]


def part_event(number: int, *, ref: str = "C9", total: int = 3) -> InboundEvent:
    return InboundEvent(
        type="sms.received",
        dedupe_key=f"part-{ref}-{number}",
        provider_message_id=f"part-{ref}-{number}",
        from_number=SENDER,
        to_number=OURS,
        body=PARTS[number - 1],
        part=MessagePart(ref=ref, total=total, number=number),
    )


async def runtime(hub: Hub, channel_id: str) -> ChannelRuntime:
    channel = await hub.channels.get(channel_id)
    assert channel is not None
    return channel


async def test_parts_of_one_message_in_one_batch_make_one_message(hub: Hub, vonage: str) -> None:
    channel = await runtime(hub, vonage)
    results = await write_batch(
        hub,
        [
            (channel, [part_event(2), part_event(1)]),
            (channel, [part_event(2)]),  # a retry racing the original, in the same batch
            (channel, [part_event(3)]),
        ],
    )
    assert [(r.stored, r.duplicates) for r in results] == [(2, 0), (0, 1), (1, 0)]
    (message,) = await inbound(hub)
    assert message.body == WHOLE
    assert await count(hub, Event, Event.type == "sms.received") == 1
    assert await count(hub, Event, Event.type == "sms.part") == 3
    assert await pending_parts(hub) == (0, 0)


async def test_a_reference_reused_for_a_new_message_releases_the_old_one(
    hub: Hub, vonage: str
) -> None:
    """Handsets count references round: a part number the open group has already, from
    another message, is a new message (the open one is released as it stands)."""
    channel = await runtime(hub, vonage)
    await ingest_events(hub, channel, [part_event(1)])
    again = InboundEvent(
        type="sms.received",
        dedupe_key="other-1",
        provider_message_id="other-1",
        from_number=SENDER,
        to_number=OURS,
        body="Another ",
        part=MessagePart(ref="C9", total=2, number=1),
    )
    await ingest_events(hub, channel, [again])
    (old,) = await inbound(hub)
    assert old.body == PARTS[0]
    await ingest_events(hub, channel, [other_part(again, 2, "message.")])
    assert [m.body for m in await inbound(hub)] == [PARTS[0], "Another message."]


def other_part(event: InboundEvent, number: int, body: str) -> InboundEvent:
    """Part ``number`` of the message ``event`` is a part of."""
    assert event.part is not None
    return dataclasses.replace(
        event,
        dedupe_key=f"other-{number}",
        provider_message_id=f"other-{number}",
        body=body,
        part=dataclasses.replace(event.part, number=number),
    )


async def test_the_last_part_racing_the_timeout_puts_every_part_in_exactly_one_message(
    hub: Hub, vonage: str
) -> None:
    channel = await runtime(hub, vonage)
    t0 = datetime.now(UTC)
    move = frozen(hub, t0)
    await ingest_events(hub, channel, [part_event(1), part_event(2)])
    move(t0 + timedelta(seconds=61))
    group_id = (await hub.store.read(_group_ids()))[0]
    await asyncio.gather(
        ingest_events(hub, channel, [part_event(3)]), concat_release(hub, group_id)
    )
    # Whichever came first, the other did not duplicate it; a part left over is its own
    # group, released after its window.
    move(t0 + timedelta(seconds=200))
    await fast_forward(hub, CONCAT_RELEASE)
    await drain(hub)
    bodies = [m.body for m in await inbound(hub)]
    assert bodies in ([WHOLE], [PARTS[0] + PARTS[1], PARTS[2]])
    assert await count(hub, Event, Event.type == "sms.received") == len(bodies)
    assert await pending_parts(hub) == (0, 0)


def _group_ids() -> Unit[list[str]]:
    rows = yield from fetch_all("SELECT id FROM concat_groups ORDER BY id")
    return [str(r[0]) for r in rows]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_processes_writing_the_last_parts_at_once_make_one_whole_message(
    hub: Hub, vonage: str, tmp_path: Path, database_url: str
) -> None:
    """Two hubs on one PostgreSQL database (two processes' stores and pools) each get one
    of the last two parts at the same moment. Held at the group's row lock (taken here by
    another connection first), both transactions are open at once; the lock makes the one
    that goes second see the other's part, so one of them creates the message, once."""
    import asyncpg

    other = build_hub(make_settings(tmp_path / "other", database_url))
    blocker = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        mine, theirs = await runtime(hub, vonage), await runtime(other, vonage)
        await ingest_events(hub, mine, [part_event(1)])
        async with blocker.transaction():
            await blocker.execute("SELECT id FROM concat_groups FOR NO KEY UPDATE")
            both = [
                asyncio.create_task(ingest_events(hub, mine, [part_event(2)])),
                asyncio.create_task(ingest_events(other, theirs, [part_event(3)])),
            ]
            await asyncio.sleep(0.5)
            # Neither may count the parts while another writer could still add one.
            assert not any(task.done() for task in both)
        results = await asyncio.gather(*both)
        assert [(r.stored, r.duplicates) for r in results] == [(1, 0), (1, 0)]
        assert [m.body for m in await inbound(hub)] == [WHOLE]
        assert await count(hub, Event, Event.type == "sms.received") == 1
        assert await pending_parts(hub) == (0, 0)
    finally:
        await blocker.close()
        await other.close()
