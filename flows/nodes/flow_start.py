"""flow.start: start another flow for this contact, another number, or a whole group
(RapidPro's start_session).

The child runs the target flow's published version with a ``flow.started`` trigger:
``trigger.data`` = ``{flow_id, parent_run_id, parent_flow_id, parent_node_id, depth,
params, phone, contact_id}`` (plus ``broadcast_id`` for a group). ``depth`` counts the
``flow.start`` hops that led to the run; a start deeper than :data:`MAX_DEPTH` fails with
a clear error, so flows that start each other (A starts B starts A…) stop.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from flows.nodes._common import event_data, optional_text
from flows.ports import FLOW_STARTED, StartFlowCommand
from flows.registry import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeSpec,
    text_template,
    value_template,
)

#: The longest chain of flows starting flows (A starts B starts C…).
MAX_DEPTH = 10


class Config(NodeConfig):
    flow_id: str = text_template(
        description="The flow to start (its id); its published version runs.",
        min_length=1,
        max_length=200,
    )
    phone: str | None = text_template(
        None, description="Start it for this number instead of the run's contact."
    )
    group_id: str | None = text_template(
        None, description="Start it for every member of this group (one run each)."
    )
    params: dict[str, Any] = value_template(
        default_factory=dict,
        description="Values for the started flow: its templates read trigger.data.params.",
    )

    @model_validator(mode="after")
    def _one_audience(self) -> Config:
        if optional_text(self.phone) and optional_text(self.group_id):
            raise ValueError("give phone or group_id, not both")
        return self


def depth_of(trigger: Any) -> int:
    """How many ``flow.start`` hops led to a run with this trigger (0: none)."""
    if not isinstance(trigger, dict) or trigger.get("type") != FLOW_STARTED:
        return 0
    depth = event_data(trigger).get("depth")
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else 0


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Start the flow; output the child's run id, or the group's broadcast id."""
    flow_id = config.flow_id.strip()
    if not flow_id:
        raise NodeError("flow_id rendered empty")
    depth = depth_of(ctx.trigger) + 1
    if depth > MAX_DEPTH:
        raise NodeError(
            f"flow.start refused: this run is {depth - 1} flow starts deep (limit "
            f"{MAX_DEPTH}); do flows start each other in a loop?"
        )
    group_id = optional_text(config.group_id)
    phone = None if group_id else (optional_text(config.phone) or ctx.contact_phone)
    command = StartFlowCommand(
        flow_id=flow_id,
        phone=phone,
        group_id=group_id,
        params=dict(config.params),
        depth=depth,
        idempotency_key=ctx.idempotency_key,
        run_id=ctx.run_id,
        parent_flow_id=ctx.flow_id,
        node_id=ctx.node_id,
    )
    outcome = await ctx.effects.start_flow(command)
    return NodeResult(
        output={
            "flow_id": flow_id,
            "run_id": outcome.run_id,
            "status": outcome.status,
            "broadcast_id": outcome.broadcast_id,
            "phone": phone,
            "group_id": group_id,
            "depth": depth,
        }
    )


SPEC = NodeSpec(
    type="flow.start",
    title="Start flow",
    description="Starts another flow's published version for this contact, a number, "
    "or every member of a group.",
    category="flow",
    config_model=Config,
    handler=handle,
    effectful=True,
    id_prefix="start_flow",
    outputs=("run_id", "status", "broadcast_id"),
)
