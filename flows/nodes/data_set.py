"""data.set: set run variables (``vars.<name>``) from templates."""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator

from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec, value_template

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class Config(NodeConfig):
    vars: dict[str, Any] = value_template(
        min_length=1,
        description="Name -> template. A lone {{ expression }} keeps its type (number, "
        "list, object); every template sees the variables as they were before this node.",
    )

    @field_validator("vars")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _VAR_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid variable name (letters, digits, _)")
        return value


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Output the values and store them on the run."""
    return NodeResult(output={"vars": dict(config.vars)}, vars=dict(config.vars))


SPEC = NodeSpec(
    type="data.set",
    title="Set variables",
    description="Sets run variables (`vars.<name>`) from templates.",
    category="data",
    config_model=Config,
    handler=handle,
    id_prefix="set_vars",
    outputs=("vars",),
)
