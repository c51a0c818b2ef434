"""trigger.delivery_status: start a run when a sent message reports a status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from flows.nodes._common import event_data
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec

DeliveryStatus = Literal["sent", "delivered", "failed"]
#: Event types that carry a delivery status, and the status each one means.
STATUS_EVENTS: dict[str, DeliveryStatus] = {
    "sms.sent": "sent",
    "sms.delivered": "delivered",
    "sms.failed": "failed",
}


class Config(NodeConfig):
    statuses: list[DeliveryStatus] = Field(
        default_factory=lambda: list[DeliveryStatus](["failed"]),
        min_length=1,
        description="Statuses that start the flow.",
    )
    channels: list[str] = Field(
        default_factory=list, description="Only messages of these channels (empty = all)."
    )


def event_status(event: Mapping[str, Any]) -> str | None:
    """The delivery status an event reports, or None if it is not a status event."""
    status = STATUS_EVENTS.get(str(event.get("type")))
    if status is None:
        return None
    data = event_data(event)
    reported = data.get("status")
    return str(reported) if reported else status


def match_status(config: Config, event: Mapping[str, Any]) -> bool:
    """True if a delivery-status event should start this trigger's flow."""
    status = event_status(event)
    if status is None or status not in config.statuses:
        return False
    return not config.channels or event_data(event).get("channel_id") in config.channels


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Output the message fields with ``status`` and ``error``."""
    data = dict(event_data(ctx.trigger))
    return NodeResult(
        output={**data, "status": event_status(ctx.trigger), "error": data.get("error")}
    )


SPEC = NodeSpec(
    type="trigger.delivery_status",
    title="Delivery status",
    description="Starts the flow when a sent SMS is reported sent, delivered or failed.",
    category="trigger",
    config_model=Config,
    handler=handle,
    can_fail=False,
    id_prefix="on_status",
    outputs=("status", "to", "message_id", "error"),
)
