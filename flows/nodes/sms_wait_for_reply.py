"""sms.wait_for_reply: (optionally) ask something, then wait for the contact's next SMS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from flows.nodes._common import (
    normalize_phone,
    optional_int,
    optional_text,
    require_text,
    sms_output,
)
from flows.ports import ReplyTo, SmsCommand
from flows.registry import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeSpec,
    WaitRequest,
    text_template,
)

#: Longest wait for a reply: 30 days.
MAX_TIMEOUT_S = 30 * 86_400
REPLY_PORT = "reply"
TIMEOUT_PORT = "timeout"


class Config(NodeConfig):
    text: str | None = text_template(
        None, max_length=10_000, description="Sent first, if given (e.g. the question)."
    )
    timeout_s: int = Field(
        3600, ge=1, le=MAX_TIMEOUT_S, description="Seconds to wait before taking `timeout`."
    )
    to: str | None = text_template(
        None, description="Whom to ask (default: the run's contact, e.g. the SMS sender)."
    )
    channel_id: str | None = text_template(
        None, description="Channel to ask and listen on (default: the contact's channel)."
    )
    device_id: str | None = text_template(None, description="Gateway device to send from.")
    sim_slot: int | str | None = text_template(None, description="SIM slot to send from.")


def _route(config: Config, ctx: NodeContext) -> tuple[str, ReplyTo | None]:
    """Whom to ask, and the inbound message whose route to reuse (when asking its sender)."""
    explicit = optional_text(config.to)
    target = ctx.reply_to
    if explicit is not None and (
        target is None or normalize_phone(target.phone) != normalize_phone(explicit)
    ):
        target = None  # asking someone else: their route is the pipeline's choice
    phone = explicit or (target.phone if target else ctx.contact_phone)
    if phone is None:
        raise NodeError("sms.wait_for_reply needs `to` (this run has no contact)")
    return phone, target


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Send the question, then wait on (contact, channel) until a reply or the timeout."""
    phone, target = _route(config, ctx)
    channel = optional_text(config.channel_id) or (target.channel_id if target else None)
    output: dict[str, Any] = {"waiting_for": phone, "timeout_s": config.timeout_s}
    if config.text is not None and config.text.strip():
        sim_slot = optional_int(config.sim_slot, "sim_slot")
        command = SmsCommand(
            to=phone,
            text=require_text(config.text),
            idempotency_key=ctx.idempotency_key,
            channel_id=channel,
            device_id=optional_text(config.device_id) or (target.device_id if target else None),
            sim_slot=sim_slot if sim_slot is not None else (target.sim_slot if target else None),
            reply_to=target,
            run_id=ctx.run_id,
            flow_id=ctx.flow_id,
            node_id=ctx.node_id,
        )
        outcome = await ctx.effects.send_sms(command)
        output["sent"] = sms_output(command, outcome)
        channel = outcome.channel_id or channel
        phone = outcome.to or phone
    output["channel_id"] = channel
    output["waiting_for"] = normalize_phone(phone)
    return NodeResult(
        output=output,
        wait=WaitRequest(
            kind="reply",
            until=ctx.now + timedelta(seconds=config.timeout_s),
            reply_port=REPLY_PORT,
            timeout_port=TIMEOUT_PORT,
            # Normalized: the hub finds the waiting run by the sender's E.164 number.
            contact_phone=normalize_phone(phone),
            channel_id=channel,
        ),
    )


SPEC = NodeSpec(
    type="sms.wait_for_reply",
    title="Ask and wait for reply",
    description="Sends its text (if any), then waits for the contact's next SMS on that "
    "channel: `reply` (output: body, from, message_id…) or `timeout`.",
    category="sms",
    config_model=Config,
    handler=handle,
    ports=(REPLY_PORT, TIMEOUT_PORT),
    effectful=True,
    id_prefix="ask",
    # The reply's fields: the executor adds them to this step's output when it arrives.
    outputs=("body", "from", "message_id"),
)
