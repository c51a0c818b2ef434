"""The ingest group commit: many requests, one transaction, each answered for itself."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from connectors.base import InboundEvent
from hub.context import Hub
from hub.models import Contact, Device, Event, Job, Message
from hub.services.ingest import write_batch
from tests.conftest import ChannelFactory
from tests.helpers import count


def sms(
    key: str, sender: str = "+15550001234", body: str = "hello", device: str | None = "phone-1"
) -> InboundEvent:
    return InboundEvent(
        type="sms.received",
        dedupe_key=key,
        from_number=sender,
        to_number="+15550100000",
        body=body,
        device_id=device,
        sim_slot=0,
    )


@pytest.fixture
async def channel(hub: Hub, make_channel: ChannelFactory) -> object:
    row = await make_channel("simulator", config={"phone_number": "+15550100000"})
    runtime = await hub.channels.get(row.id)
    assert runtime is not None
    return runtime


async def test_one_batch_writes_every_request_and_drops_repeats(hub: Hub, channel: object) -> None:
    results = await write_batch(
        hub,
        [
            (channel, [sms("a"), sms("b", sender="+15550002222", device="phone-2")]),  # type: ignore[list-item]
            (channel, [sms("a")]),  # a gateway retry of "a" racing the original
            (channel, [sms("c", sender="+15550002222", body="STOP")]),  # type: ignore[list-item]
        ],
    )
    assert [(r.stored, r.duplicates) for r in results] == [(2, 0), (0, 1), (1, 0)]
    assert await count(hub, Event, Event.type == "sms.received") == 3
    assert await count(hub, Message, Message.direction == "inbound") == 3
    assert await count(hub, Contact) == 2
    assert await count(hub, Device) == 2
    # Sinks ran in the batch's transaction: no dispatch jobs; no flow wants these events;
    # the STOP queued its confirmation and the cancelling of its contact's waiting runs.
    assert await count(hub, Job, Job.name == "dispatch_event") == 0
    assert await count(hub, Job, Job.name == "flow_dispatch") == 0
    assert await count(hub, Job, Job.name == "send_message") == 1
    assert await count(hub, Job, Job.name == "flow_cancel_waiting") == 1
    # STOP in a batch is still handled: opted out, one confirmation queued.
    assert await count(hub, Contact, Contact.opted_out.is_(True)) == 1  # type: ignore[attr-defined]
    assert await count(hub, Message, Message.direction == "outbound") == 1
    # The same batch again: all duplicates, nothing new.
    again = await write_batch(hub, [(channel, [sms("a"), sms("b"), sms("c")])])  # type: ignore[list-item]
    assert (again[0].stored, again[0].duplicates) == (0, 3)
    assert await count(hub, Message) == 4


async def test_concurrent_requests_are_group_committed_and_a_bad_one_fails_alone(
    hub: Hub, channel: object
) -> None:
    ghost = dataclasses.replace(channel, id="ch_does_not_exist")  # type: ignore[type-var]
    good = [
        hub.ingest.submit(channel, [sms(f"k{i}", sender=f"+155500030{i:02d}")]) for i in range(20)
    ]  # type: ignore[arg-type]
    bad = hub.ingest.submit(ghost, [sms("x")])
    outcomes = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(not isinstance(o, BaseException) and o.stored == 1 for o in outcomes[:-1])
    assert isinstance(outcomes[-1], Exception)  # a message cannot reference a missing channel
    assert await count(hub, Message) == 20
