"""contact.group_add / contact.group_remove: a contact joins or leaves a group.

Two node types with one config and one handler each way. The change goes through
``Effects.update_contact`` (``ContactUpdate.add_groups`` / ``remove_groups``): joining
twice is one membership, leaving a group one is not in changes nothing, and an unknown
group id is an effect error (not retried) that takes the ``error`` port.
"""

from __future__ import annotations

from flows.nodes._common import normalize_phone, optional_text
from flows.ports import ContactUpdate, ContactView
from flows.registry import NodeConfig, NodeContext, NodeError, NodeResult, NodeSpec, text_template


class Config(NodeConfig):
    group_id: str = text_template(
        description="The group (its id, grp_…; a template such as {{ vars.group }} works).",
        min_length=1,
        max_length=200,
    )
    phone: str | None = text_template(None, description="The contact (default: the run's contact).")


async def _change(config: Config, ctx: NodeContext, *, join: bool) -> NodeResult:
    """Apply the membership change; templates later in the run see the updated contact."""
    group_id = config.group_id.strip()
    if not group_id:
        raise NodeError("group_id rendered empty")
    phone = optional_text(config.phone) or ctx.contact_phone
    if phone is None:
        raise NodeError("this run has no contact: set `phone`")
    groups = (group_id,)
    view = await ctx.effects.update_contact(
        ContactUpdate(
            phone=phone,
            add_groups=groups if join else (),
            remove_groups=() if join else groups,
            idempotency_key=ctx.idempotency_key,
            run_id=ctx.run_id,
        )
    )
    return NodeResult(
        output={**view.to_dict(), "group_id": group_id, "member": group_id in view.groups},
        contact=view if _is_run_contact(ctx, view) else None,
    )


def _is_run_contact(ctx: NodeContext, view: ContactView) -> bool:
    own = (ctx.contact or {}).get("phone")
    return own is None or normalize_phone(str(own)) == normalize_phone(view.phone)


async def handle_add(config: Config, ctx: NodeContext) -> NodeResult:
    """The contact joins the group (already a member: no change)."""
    return await _change(config, ctx, join=True)


async def handle_remove(config: Config, ctx: NodeContext) -> NodeResult:
    """The contact leaves the group (not a member: no change)."""
    return await _change(config, ctx, join=False)


_OUTPUTS = ("group_id", "member", "groups", "phone")

ADD_SPEC = NodeSpec(
    type="contact.group_add",
    title="Add to group",
    description="Adds a contact to a group (once; a member stays a member).",
    category="contact",
    config_model=Config,
    handler=handle_add,
    effectful=True,
    id_prefix="join_group",
    outputs=_OUTPUTS,
)

REMOVE_SPEC = NodeSpec(
    type="contact.group_remove",
    title="Remove from group",
    description="Takes a contact out of a group (no change when not a member).",
    category="contact",
    config_model=Config,
    handler=handle_remove,
    effectful=True,
    id_prefix="leave_group",
    outputs=_OUTPUTS,
)
