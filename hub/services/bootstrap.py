"""First start: a simulator channel so a newcomer can try everything without a phone."""

from __future__ import annotations

import json
import logging
import sys
from importlib import resources
from typing import Any

import sqlalchemy as sa

from hub.context import Hub
from hub.models import Channel
from hub.services.channels import create_channel
from hub.services.flows import import_flow
from hub.services.users import count_users
from hub.settings import Settings

log = logging.getLogger("smshub")

#: The number the bootstrap simulator channel texts from.
SIMULATOR_NUMBER = "+15550100000"


async def bootstrap(hub: Hub) -> None:
    """First-start setup: the simulator channel, then what to do next (on stderr)."""
    if hub.settings.bootstrap_simulator:
        await _simulator_channel(hub)
    notice = await first_start_notice(hub)
    if notice:
        print(notice, file=sys.stderr, flush=True)


async def first_start_notice(hub: Hub) -> str | None:
    """The URL to open and the next steps, while no admin account exists; else None."""
    if await count_users(hub):
        return None
    return welcome_text(hub.settings)


def welcome_text(settings: Settings) -> str:
    """What a newcomer reads in the terminal of the first ``smshub serve``."""
    url = settings.public_url.rstrip("/")
    lines = [
        "",
        f"smshub is running. Open {url}/ in a browser and create the admin account",
        "(or run `smshub user create`). Then:",
    ]
    if settings.bootstrap_simulator:
        lines += [
            "  - try it without a phone: Conversations -> Simulate an inbound SMS, text JOIN",
            "    (the Simulator channel and the JOIN example flow are ready);",
        ]
    lines += [
        "  - an API key for scripts: `smshub apikey create --name me`;",
        "  - connect a real gateway: docs/gateways/README.md.",
    ]
    if settings.host in ("127.0.0.1", "localhost", "::1"):
        lines += [
            f"It listens on {settings.host} only: a phone or a gateway cannot reach it. Set",
            "SMSHUB_HOST=0.0.0.0 and SMSHUB_PUBLIC_URL to the address they can reach",
            "(https through Caddy: deploy/Caddyfile).",
        ]
    return "\n".join([*lines, ""])


async def _simulator_channel(hub: Hub) -> None:
    """Create the default simulator channel when the hub has no channel at all."""
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
