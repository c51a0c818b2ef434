"""First start: a simulator channel so a newcomer can try everything without a phone."""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

import sqlalchemy as sa

from hub.context import Hub
from hub.models import Channel
from hub.services.channels import create_channel
from hub.services.flows import import_flow

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
    flow = await import_flow(hub, join_example(row.id), publish_it=True)
    log.info("published the JOIN example flow %s on it", flow[0].flow.id)


def join_example(channel_id: str) -> dict[str, Any]:
    """The JOIN keyword example, listening on one channel, without its Zapier step.

    The example forwards to a placeholder Zapier URL; on a fresh install that step could
    only fail, so the demo flow stops after the reply and the tag."""
    document: dict[str, Any] = json.loads(
        resources.files("flows.examples").joinpath("join_keyword.json").read_text()
    )
    http_nodes = {n["id"] for n in document["nodes"] if n["type"] == "http.request"}
    document["nodes"] = [n for n in document["nodes"] if n["id"] not in http_nodes]
    document["edges"] = [
        e for e in document["edges"] if e["from"] not in http_nodes and e["to"] not in http_nodes
    ]
    for node in document["nodes"]:
        if node["type"] == "trigger.sms_received":
            node["config"]["channels"] = [channel_id]
    return document
