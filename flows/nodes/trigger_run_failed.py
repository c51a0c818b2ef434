"""trigger.run_failed: start a run when a run of any (or the named) flow fails — an
"error flow" that texts the owner, opens a ticket, posts to a hook.

The hub emits ``flow.run.failed`` in the save that fails a run; its ``data`` (the public
event contract, docs/events.md) is what is read here. Loop guard: a run that was itself started
by a ``trigger.run_failed`` starts no run_failed flow when it fails (:func:`match_failed`),
so an error flow that fails cannot feed itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from flows.nodes._common import event_data
from flows.ports import ContactView
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec

__all__ = ["RUN_FAILED_EVENT", "Config", "contact_of", "match_failed"]

#: The event a failed run emits (``trigger.type`` of the runs it starts).
RUN_FAILED_EVENT = "flow.run.failed"
#: This node type, as the event's ``trigger_node_type`` names the trigger of the failed run.
SPEC_TYPE = "trigger.run_failed"


class Config(NodeConfig):
    flows: list[str] = Field(
        default_factory=list,
        description="Only failures of these flows (flow ids; empty = any flow).",
    )

    @field_validator("flows")
    @classmethod
    def _flows(cls, value: list[str]) -> list[str]:
        return [f.strip() for f in value if f.strip()]


def match_failed(config: Config, event: Mapping[str, Any]) -> bool:
    """True if this ``flow.run.failed`` event should start the trigger's flow."""
    if event.get("type") != RUN_FAILED_EVENT:
        return False
    data = event_data(event)
    if data.get("trigger_node_type") == SPEC_TYPE:
        return False  # the loop guard: an error flow's own failure starts no error flow
    return not config.flows or data.get("flow_id") in config.flows


def contact_of(event: Mapping[str, Any]) -> ContactView | None:
    """The failed run's contact, as the new run's contact (None for a run without one)."""
    contact = event_data(event).get("contact")
    if not isinstance(contact, Mapping) or not contact.get("phone"):
        return None
    fields = contact.get("fields")
    return ContactView(
        phone=str(contact["phone"]),
        id=str(contact["id"]) if contact.get("id") else None,
        name=str(contact.get("name") or ""),
        language=contact.get("language") or None,
        timezone=contact.get("timezone") or None,
        opted_out=bool(contact.get("opted_out")),
        tags=tuple(str(t) for t in contact.get("tags") or ()),
        fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, Mapping) else {},
        groups=tuple(str(g) for g in contact.get("groups") or ()),
    )


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Output the failed run: ``run_id``, ``flow_id``, ``flow_name``, ``error``, the node
    it failed in and its contact."""
    data = event_data(ctx.trigger)
    return NodeResult(
        output={
            "run_id": data.get("run_id"),
            "flow_id": data.get("flow_id"),
            "flow_name": data.get("flow_name"),
            "flow_version": data.get("flow_version"),
            "error": data.get("error"),
            "node_id": data.get("failed_node_id"),
            "node_type": data.get("failed_node_type"),
            "contact": data.get("contact"),
            "finished_at": data.get("finished_at"),
        }
    )


SPEC = NodeSpec(
    type=SPEC_TYPE,
    title="Run failed",
    description="Starts the flow when a run of another flow (any, or the ones named) "
    "fails; the failed run's contact is this run's contact.",
    category="trigger",
    config_model=Config,
    handler=handle,
    can_fail=False,
    id_prefix="on_failure",
    outputs=("run_id", "flow_id", "flow_name", "error", "node_id", "node_type", "contact"),
)
