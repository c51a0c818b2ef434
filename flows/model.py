"""The flow document: what the editor saves and ``flows import`` reads (DESIGN.md "Flow format").

A flow is a name, a list of nodes (id, type, config, editor ``ui`` data, optional retry
policy), a list of edges ``{from, port, to}`` and optional ``settings`` (what the run
history keeps of the steps). This module only knows the shape; what a
node type accepts is checked by :mod:`flows.validation` against the node registry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

__all__ = [
    "DEFAULT_PORT",
    "ERROR_PORT",
    "NODE_ID_PATTERN",
    "Edge",
    "Flow",
    "FlowSettings",
    "Node",
    "RetryPolicy",
    "dump_flow",
    "export_flow",
    "parse_flow",
]

#: The port of a node with a single output; edges may omit it.
DEFAULT_PORT = "next"
#: The port a failed node continues on, available on every node that can fail.
ERROR_PORT = "error"
#: Node ids appear in ``steps.<id>`` and in idempotency keys (``run:node``), so no colons.
NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class RetryPolicy(BaseModel):
    """How often a failing node is tried and how long to wait in between."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(
        1, ge=1, le=10, description="Total attempts, the first included (1 = no retry)."
    )
    backoff_s: float = Field(
        0.0, ge=0, le=86_400, description="Seconds to wait before the first retry."
    )
    factor: float = Field(
        2.0, ge=1, le=10, description="Each further retry waits this many times longer."
    )

    def delay_before(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 = the first retry)."""
        return float(self.backoff_s * self.factor ** max(retry_number - 1, 0))


class Node(BaseModel):
    """One step of a flow: its type decides the config it takes and its output ports."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=NODE_ID_PATTERN, description="Unique within the flow.")
    type: str = Field(min_length=1, description="A registered node type, e.g. sms.reply.")
    config: dict[str, Any] = Field(default_factory=dict, description="Checked by the type.")
    ui: dict[str, Any] = Field(
        default_factory=dict, description="Editor data (position, label); ignored by the engine."
    )
    retry: RetryPolicy | None = Field(None, description="Retry policy when the node fails.")


class Edge(BaseModel):
    """A connection from one node's output port to another node."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", description="Id of the node the edge leaves.")
    port: str = Field(DEFAULT_PORT, min_length=1, description="Output port it leaves from.")
    to: str = Field(description="Id of the node the edge enters.")


#: A key named in ``settings.redact``.
RedactedKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class FlowSettings(BaseModel):
    """What the stored step log of the flow's runs keeps (personal data need not stay).

    Only the *stored* copy of a finished step is stripped: the engine still has the data
    in memory, and the run record (trigger, ``steps.<id>.output``, vars) keeps what later
    steps, a resumed wait and a replay need."""

    model_config = ConfigDict(extra="forbid")

    store_step_data: bool = Field(
        True,
        strict=True,
        description="false: finished steps are stored without their input and output "
        '(null, with "redacted": true).',
    )
    redact: list[RedactedKey] = Field(
        default_factory=list,
        max_length=50,
        description='Keys whose values are stored as "[redacted]" in finished steps\' '
        "input and output, at any depth (e.g. body, from, text).",
    )

    @property
    def strips(self) -> bool:
        """True when stored steps lose anything."""
        return not self.store_step_data or bool(self.redact)


class Flow(BaseModel):
    """A whole flow document."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    ui: dict[str, Any] = Field(default_factory=dict, description="Editor data for the canvas.")
    settings: FlowSettings = Field(
        default_factory=FlowSettings, description="What the run history keeps of the steps."
    )

    _nodes_by_id: dict[str, Node] | None = PrivateAttr(None)
    _targets: dict[tuple[str, str], str] | None = PrivateAttr(None)

    def node(self, node_id: str) -> Node | None:
        """The node with this id (the first one if a broken flow repeats an id)."""
        by_id: dict[str, Node] | None = self._private()["_nodes_by_id"]
        if by_id is None:
            by_id = self._nodes_by_id = {}
            for node in self.nodes:
                by_id.setdefault(node.id, node)
        return by_id.get(node_id)

    def next_node(self, node_id: str, port: str) -> str | None:
        """Where the edge leaving ``node_id`` on ``port`` goes, if there is one."""
        targets: dict[tuple[str, str], str] | None = self._private()["_targets"]
        if targets is None:
            targets = self._targets = {}
            for edge in self.edges:
                targets.setdefault((edge.from_, edge.port), edge.to)
        return targets.get((node_id, port))

    def _private(self) -> dict[str, Any]:
        # The private attributes, read through __pydantic_private__ (a slot): ``self._x``
        # on a model goes through pydantic's __getattr__, which costs more than the lookup
        # it serves, and the engine asks for nodes and edges on every step.
        private = self.__pydantic_private__
        assert private is not None
        return private


def parse_flow(raw: Mapping[str, Any] | str | bytes) -> Flow:
    """Parse a flow document (dict or JSON text); raises pydantic's ValidationError on shape
    errors. Use :func:`flows.validation.validate_flow` for the full list of problems."""
    if isinstance(raw, str | bytes):
        return Flow.model_validate_json(raw)
    return Flow.model_validate(raw)


def dump_flow(flow: Flow) -> dict[str, Any]:
    """The canonical document: nodes sorted by id, edges by (from, port, to), object keys
    sorted, empty optional parts left out. Two equal flows dump identically."""
    out: dict[str, Any] = {"name": flow.name}
    if flow.description:
        out["description"] = flow.description
    out["nodes"] = [_dump_node(node) for node in sorted(flow.nodes, key=lambda n: n.id)]
    out["edges"] = [
        {"from": edge.from_, "port": edge.port, "to": edge.to}
        for edge in sorted(flow.edges, key=lambda e: (e.from_, e.port, e.to))
    ]
    if flow.ui:
        out["ui"] = _sorted_keys(flow.ui)
    settings = flow.settings.model_dump(exclude_defaults=True)
    if settings:
        out["settings"] = settings
    return out


def export_flow(flow: Flow) -> str:
    """The canonical document as JSON text, indented by 2, ending in a newline (diff-able)."""
    return json.dumps(dump_flow(flow), indent=2, ensure_ascii=False) + "\n"


def _dump_node(node: Node) -> dict[str, Any]:
    # Fixed, readable key order for the node itself; sorted keys inside its objects.
    out: dict[str, Any] = {"id": node.id, "type": node.type, "config": _sorted_keys(node.config)}
    if node.retry is not None:
        out["retry"] = node.retry.model_dump()
    if node.ui:
        out["ui"] = _sorted_keys(node.ui)
    return out


def _sorted_keys(value: Any) -> Any:
    # Lists keep their order: in a config it usually means something (switch cases).
    if isinstance(value, Mapping):
        return {str(k): _sorted_keys(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_sorted_keys(item) for item in value]
    return value
