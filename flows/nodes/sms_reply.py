"""sms.reply: answer the run's contact on the route their message came in on."""

from __future__ import annotations

from flows.nodes._common import require_text, sms_output
from flows.ports import SmsCommand
from flows.registry import NodeConfig, NodeContext, NodeError, NodeResult, NodeSpec, text_template


class Config(NodeConfig):
    text: str = text_template(
        min_length=1, max_length=10_000, description="The reply (a template)."
    )


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Send the text back to the latest inbound SMS's sender, same channel, device, SIM."""
    target = ctx.reply_to
    if target is None:
        raise NodeError("sms.reply needs an inbound SMS to answer; use sms.send with `to`")
    command = SmsCommand(
        to=target.phone,
        text=require_text(config.text),
        idempotency_key=ctx.idempotency_key,
        channel_id=target.channel_id,
        device_id=target.device_id,
        sim_slot=target.sim_slot,
        reply_to=target,
        run_id=ctx.run_id,
        flow_id=ctx.flow_id,
        node_id=ctx.node_id,
    )
    outcome = await ctx.effects.send_sms(command)
    return NodeResult(output=sms_output(command, outcome))


SPEC = NodeSpec(
    type="sms.reply",
    title="Reply by SMS",
    description="Replies to the contact, on the channel, device and SIM their SMS came in on. "
    "Opted-out contacts and runaway loops are suppressed by the hub (recorded on the step).",
    category="sms",
    config_model=Config,
    handler=handle,
    effectful=True,
    id_prefix="reply",
    outputs=("status", "message_id", "text", "suppressed"),
)
