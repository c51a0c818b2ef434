"""Events a connector scheduled after a send: the simulator's delivery reports and the
loop-back SMS it delivers to another simulator channel. They go through ingest like a
gateway's webhook would, only later (a delayed ``ingest_followup`` job)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import InboundEvent, ScheduledEvent
from hub.context import Hub
from hub.models import Channel
from hub.queue.base import enqueue

log = logging.getLogger("smshub.followups")

#: Job: ingest an event a connector scheduled.
INGEST_FOLLOWUP = "ingest_followup"


async def schedule_followups(
    session: AsyncSession, channel_id: str, followups: Sequence[ScheduledEvent]
) -> None:
    """Queue each scheduled event, in the transaction that records the send."""
    for followup in followups:
        await enqueue(
            session,
            INGEST_FOLLOWUP,
            {
                "channel_id": channel_id,
                "event": followup.event.to_json(),
                "to_channel_number": followup.to_channel_number,
            },
            delay_s=followup.delay_s,
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
    async with hub.db.read() as session:
        found = await session.execute(
            sa.select(col(Channel.id)).where(
                col(Channel.phone_number) == number,
                col(Channel.connector) == "simulator",
                col(Channel.deleted_at).is_(None),
            )
        )
        return found.scalars().first()
