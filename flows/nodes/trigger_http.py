"""trigger.http: start a run from an HTTP call (Zapier, Make, n8n, your own code)."""

from __future__ import annotations

from pydantic import Field

from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec


class Config(NodeConfig):
    description: str = Field(
        "", max_length=500, description="What callers should send (shown next to the URL)."
    )


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Output the request body (the run's ``trigger``)."""
    return NodeResult(output=dict(ctx.trigger))


SPEC = NodeSpec(
    type="trigger.http",
    title="HTTP call",
    description="Starts the flow when its URL (issued by the hub, with a secret token) is "
    "called; the JSON body becomes `trigger`.",
    category="trigger",
    config_model=Config,
    handler=handle,
    can_fail=False,
    id_prefix="hook",
    outputs=(),
)
