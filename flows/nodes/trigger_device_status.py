"""trigger.device_status: start a run when a phone goes silent or is heard again, so a flow
can alert the owner ("the shop phone is offline").

The hub emits ``device.offline`` after ``SMSHUB_DEVICE_OFFLINE_AFTER_S`` without anything
from a device that pings, and ``device.online`` when it is heard again (docs/events.md);
their ``data`` is what is read here. The run has no contact: an alert names its recipient
(``sms.send`` with ``to``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from flows.nodes._common import event_data
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec

__all__ = ["DEVICE_EVENTS", "Config", "match_device"]

DeviceState = Literal["offline", "online"]
#: The events of a device's state, and the state each one means.
DEVICE_EVENTS: dict[str, DeviceState] = {"device.offline": "offline", "device.online": "online"}


class Config(NodeConfig):
    states: list[DeviceState] = Field(
        default_factory=lambda: list[DeviceState](["offline"]),
        min_length=1,
        description="offline (nothing heard for the configured time) and / or online (heard "
        "again after being offline).",
    )
    channels: list[str] = Field(
        default_factory=list, description="Only devices of these channels (empty = all)."
    )
    devices: list[str] = Field(
        default_factory=list,
        description="Only these devices: the hub's ids (dev_…) or the gateway's own ids "
        "(empty = all).",
    )


def match_device(config: Config, event: Mapping[str, Any]) -> bool:
    """True if a device-state event should start this trigger's flow."""
    state = DEVICE_EVENTS.get(str(event.get("type")))
    if state is None or state not in config.states:
        return False
    data = event_data(event)
    if config.channels and data.get("channel_id") not in config.channels:
        return False
    if not config.devices:
        return True
    device = data.get("device")
    gateway_id = device.get("gateway_id") if isinstance(device, Mapping) else None
    return bool({data.get("device_id"), gateway_id} & set(config.devices))


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Output the event's fields: ``status``, ``device``, ``channel``, ``last_seen_at``…"""
    return NodeResult(output=dict(event_data(ctx.trigger)))


SPEC = NodeSpec(
    type="trigger.device_status",
    title="Device offline / online",
    description="Starts the flow when a phone goes silent for too long, or is heard again.",
    category="trigger",
    config_model=Config,
    handler=handle,
    can_fail=False,
    id_prefix="on_device",
    outputs=("status", "device_id", "channel_id", "last_seen_at", "offline_at"),
)
