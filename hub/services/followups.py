"""Events a connector scheduled after a send: the simulator's delivery reports and the
loop-back SMS it delivers to another simulator channel. They go through ingest like a
gateway's webhook would, only later (a delayed ``ingest_followup`` job)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from connectors.base import InboundEvent, ScheduledEvent
from hub.context import Hub
from hub.queue.base import enqueue_job
from hub.store import Unit, fetch_value

log = logging.getLogger("smshub.followups")

#: Job: ingest an event a connector scheduled.
INGEST_FOLLOWUP = "ingest_followup"


def schedule_followups(
    hub: Hub, channel_id: str, followups: Sequence[ScheduledEvent]
) -> Unit[None]:
    """Unit: queue each scheduled event, in the unit that records the send."""
    for followup in followups:
        yield from enqueue_job(
            INGEST_FOLLOWUP,
            {
                "channel_id": channel_id,
                "event": followup.event.to_json(),
                "to_channel_number": followup.to_channel_number,
            },
            delay_s=followup.delay_s,
            lease=hub.queue.lease(),
        )


async def ingest_followup(
    hub: Hub, channel_id: str, event: dict[str, Any], to_channel_number: str | None = None
) -> None:
    """Job: ingest an event a connector scheduled (to the channel owning that number when
    it is a loop-back)."""
    target = channel_id
    if to_channel_number:
        found = await _simulator_with_number(hub, to_channel_number)
        if found is None:
            return
        target = found
    channel = await hub.channels.get(target)
    if channel is None or not channel.enabled:
        log.info("dropping followup for missing or disabled channel %s", target)
        return
    # Through the port, not hub.services.ingest: ingest leads (via opt-out replies) to the
    # send job, which schedules these followups.
    await hub.ingest.submit(channel, [InboundEvent.from_json(event)])


async def _simulator_with_number(hub: Hub, number: str) -> str | None:
    found = await hub.store.read(
        fetch_value(
            "SELECT id FROM channels WHERE phone_number = ? AND connector = 'simulator' "
            "AND deleted_at IS NULL ORDER BY id LIMIT 1",
            (number,),
        )
    )
    return str(found) if found else None
