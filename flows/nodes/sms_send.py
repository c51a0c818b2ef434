"""sms.send: send an SMS to any number, optionally on a chosen channel / device / SIM."""

from __future__ import annotations

from flows.nodes._common import optional_int, optional_text, require_text, sms_output
from flows.ports import SmsCommand
from flows.registry import NodeConfig, NodeContext, NodeError, NodeResult, NodeSpec, text_template


class Config(NodeConfig):
    to: str = text_template(
        min_length=1, max_length=500, description="Recipient, E.164 (a template)."
    )
    text: str = text_template(min_length=1, max_length=10_000, description="The message.")
    channel_id: str | None = text_template(
        None, description="Channel to send on (default: the hub's routing policy)."
    )
    device_id: str | None = text_template(None, description="Gateway device to send from.")
    sim_slot: int | str | None = text_template(
        None, description="SIM slot (0, 1…); a template like {{ 1 - trigger.data.sim_slot }}."
    )


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Queue the message through the send pipeline."""
    to = optional_text(config.to)
    if to is None:
        raise NodeError("`to` rendered empty")
    command = SmsCommand(
        to=to,
        text=require_text(config.text),
        idempotency_key=ctx.idempotency_key,
        channel_id=optional_text(config.channel_id),
        device_id=optional_text(config.device_id),
        sim_slot=optional_int(config.sim_slot, "sim_slot"),
        run_id=ctx.run_id,
        flow_id=ctx.flow_id,
        node_id=ctx.node_id,
    )
    outcome = await ctx.effects.send_sms(command)
    return NodeResult(output=sms_output(command, outcome))


SPEC = NodeSpec(
    type="sms.send",
    title="Send SMS",
    description="Sends an SMS to any number; channel, device and SIM are optional.",
    category="sms",
    config_model=Config,
    handler=handle,
    effectful=True,
    id_prefix="send",
    outputs=("status", "message_id", "to", "text", "suppressed"),
)
