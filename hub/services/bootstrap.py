"""First start: a simulator channel so a newcomer can try everything without a phone."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from hub.context import Hub
from hub.models import Channel
from hub.services.channels import create_channel

log = logging.getLogger("smshub")

#: The number the bootstrap simulator channel texts from.
SIMULATOR_NUMBER = "+15550100000"


async def bootstrap(hub: Hub) -> None:
    """Create the default simulator channel when the hub has no channel at all."""
    if not hub.settings.bootstrap_simulator:
        return
    async with hub.db.read() as session:
        count = (await session.execute(sa.select(sa.func.count()).select_from(Channel))).scalar()
    if count:
        return
    row = await create_channel(
        hub,
        connector="simulator",
        name="Simulator",
        config={"phone_number": SIMULATOR_NUMBER},
        phone_number=SIMULATOR_NUMBER,
    )
    log.info("created simulator channel %s (%s)", row.id, SIMULATOR_NUMBER)
