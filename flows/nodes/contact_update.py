"""contact.update: opt a contact out or in, change tags and custom fields."""

from __future__ import annotations

from pydantic import Field, model_validator

from flows.nodes._common import normalize_phone, optional_text
from flows.ports import ContactUpdate
from flows.registry import NodeConfig, NodeContext, NodeError, NodeResult, NodeSpec, text_template


class Config(NodeConfig):
    phone: str | None = text_template(
        None, description="The contact to change (default: the run's contact)."
    )
    opt_out: bool | None = Field(
        None, description="true opts the contact out of all SMS, false opts them back in."
    )
    add_tags: list[str] = Field(default_factory=list, description="Tags to add.")
    remove_tags: list[str] = Field(default_factory=list, description="Tags to remove.")
    fields: dict[str, str] = text_template(
        default_factory=dict, description="Custom fields to set (values are templates)."
    )

    @model_validator(mode="after")
    def _something(self) -> Config:
        if self.opt_out is None and not (self.add_tags or self.remove_tags or self.fields):
            raise ValueError("set at least one of opt_out, add_tags, remove_tags or fields")
        return self


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Apply the change; templates later in the run see the updated contact."""
    phone = optional_text(config.phone) or ctx.contact_phone
    if phone is None:
        raise NodeError("contact.update needs `phone` (this run has no contact)")
    view = await ctx.effects.update_contact(
        ContactUpdate(
            phone=phone,
            opt_out=config.opt_out,
            add_tags=tuple(t.strip() for t in config.add_tags if t.strip()),
            remove_tags=tuple(t.strip() for t in config.remove_tags if t.strip()),
            fields=dict(config.fields),
            idempotency_key=ctx.idempotency_key,
            run_id=ctx.run_id,
        )
    )
    own = (ctx.contact or {}).get("phone")
    is_run_contact = own is None or normalize_phone(str(own)) == normalize_phone(view.phone)
    return NodeResult(output=view.to_dict(), contact=view if is_run_contact else None)


SPEC = NodeSpec(
    type="contact.update",
    title="Update contact",
    description="Opts a contact out or in, adds or removes tags, sets custom fields.",
    category="contact",
    config_model=Config,
    handler=handle,
    effectful=True,
    id_prefix="contact",
    outputs=("phone", "opted_out", "tags", "fields"),
)
