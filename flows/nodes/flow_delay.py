"""flow.delay: pause the run (a durable timer, not a sleeping task)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from flows.model import DEFAULT_PORT
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec, WaitRequest

#: Longest delay: 30 days.
MAX_DELAY_S = 30 * 86_400


class Config(NodeConfig):
    seconds: float = Field(gt=0, le=MAX_DELAY_S, description="How long to pause.")


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Wait until now + seconds, then continue on ``next``."""
    until = ctx.now + timedelta(seconds=config.seconds)
    return NodeResult(
        output={"seconds": config.seconds, "until": until.isoformat()},
        wait=WaitRequest(kind="delay", until=until, timeout_port=DEFAULT_PORT),
    )


SPEC = NodeSpec(
    type="flow.delay",
    title="Delay",
    description="Pauses the run for a number of seconds (survives restarts).",
    category="flow",
    config_model=Config,
    handler=handle,
    can_fail=False,
    id_prefix="wait",
    outputs=("until",),
)
