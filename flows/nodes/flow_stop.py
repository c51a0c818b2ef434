"""flow.stop: end the run here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec, text_template


class Config(NodeConfig):
    outcome: Literal["completed", "failed"] = Field(
        "completed", description="Status the run ends with."
    )
    reason: str | None = text_template(
        None, max_length=1000, description="Shown in the run history."
    )


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Stop the run with the configured outcome."""
    reason = (config.reason or "").strip() or None
    return NodeResult(
        output={"outcome": config.outcome, "reason": reason},
        stop=config.outcome,
        stop_reason=reason,
    )


SPEC = NodeSpec(
    type="flow.stop",
    title="Stop",
    description="Ends the run (completed, or failed with a reason).",
    category="flow",
    config_model=Config,
    handler=handle,
    ports=(),
    can_fail=False,
    id_prefix="stop",
    outputs=("outcome", "reason"),
)
