"""logic.split_random: an A/B split by percentages, stable per contact.

The bucket is ``sha256(flow id, node id, contact phone) mod 100``: the same contact always
takes the same branch of the same node (in every run of the flow, and on a replay), two
nodes split independently, and a run without a contact is split by its run id.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flows.nodes._common import check_port_names, normalize_phone
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec

_RESERVED = {"error"}
_PORT_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,39}$"
#: Buckets a contact falls into (percent granularity).
BUCKETS = 100


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_PORT_NAME, description="The branch's port (a, b, control…).")
    percent: int = Field(ge=0, le=100, description="Share of contacts sent this way (0-100).")


class Config(NodeConfig):
    branches: list[Branch] = Field(
        min_length=2,
        max_length=20,
        description="Ports and their shares; the percents add up to 100.",
    )

    @field_validator("branches")
    @classmethod
    def _shares(cls, branches: list[Branch]) -> list[Branch]:
        check_port_names([b.name for b in branches], _RESERVED, "branch")
        total = sum(branch.percent for branch in branches)
        if total != BUCKETS:
            raise ValueError(f"the percents add up to {total}, not 100")
        return branches


def ports_of(config: Config) -> tuple[str, ...]:
    """One port per branch, in order."""
    return tuple(branch.name for branch in config.branches)


def bucket(flow_id: str, node_id: str, key: str) -> int:
    """0-99, the same for the same flow, node and key (a phone or a run id)."""
    digest = hashlib.sha256(f"{flow_id}\x00{node_id}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose(config: Config, value: int) -> str:
    """The branch whose share holds bucket ``value`` (shares laid end to end)."""
    upper = 0
    for branch in config.branches:
        upper += branch.percent
        if value < upper:
            return branch.name
    return config.branches[-1].name  # unreachable: the percents add up to 100


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Take the branch of this contact's bucket."""
    phone = ctx.contact_phone
    key = normalize_phone(phone) if phone else ctx.run_id
    value = bucket(ctx.flow_id, ctx.node_id, key)
    branch = choose(config, value)
    output: dict[str, Any] = {
        "branch": branch,
        "bucket": value,
        "by": "contact" if phone else "run",
    }
    return NodeResult(output=output, port=branch)


SPEC = NodeSpec(
    type="logic.split_random",
    title="Random split",
    description="Splits contacts by percentages (A/B tests); a contact always takes the "
    "same branch of the same node.",
    category="logic",
    config_model=Config,
    handler=handle,
    ports=(),
    ports_from_config=ports_of,
    ports_hint="one port per branches[].name",
    port_list=("branches", "name"),
    can_fail=False,
    id_prefix="split",
    outputs=("branch", "bucket"),
)
