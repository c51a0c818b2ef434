"""Flow validation: every problem of a flow document, each with its node and field.

A flow with problems may be saved as a draft but never published. Rules decided here
where DESIGN.md is silent:

* A flow needs **at least one trigger**; several are allowed (e.g. an SMS keyword and an
  HTTP hook starting the same conversation), but at most one ``trigger.http`` (its URL
  names the flow), and no edge may enter a trigger.
* **No fan-out**: a port leads to at most one node. Runs walk one path at a time; two
  edges on a port would need parallel branches and a join, which the engine does not do.
* **Cycles are allowed** (re-ask until valid, remind then wait again); the per-run step
  limit stops runaway loops.
* Unconnected output ports are fine: the run completes when it leaves by one.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from flows.expressions import check_template
from flows.model import Edge, Flow, Node, parse_flow
from flows.registry import NodeSpec, get_spec
from flows.secrets import secret_problems

__all__ = [
    "DUPLICATE_EDGE",
    "DUPLICATE_NODE_ID",
    "EDGE_INTO_TRIGGER",
    "INVALID_CONFIG",
    "INVALID_EDGE",
    "INVALID_FLOW",
    "INVALID_NODE",
    "MULTIPLE_HTTP_TRIGGERS",
    "NO_TRIGGER",
    "PORT_FAN_OUT",
    "SECRET_REFERENCE",
    "TEMPLATE_SYNTAX",
    "UNKNOWN_NODE",
    "UNKNOWN_NODE_TYPE",
    "UNKNOWN_PORT",
    "UNREACHABLE_NODE",
    "InvalidFlowError",
    "Problem",
    "load_flow",
    "validate_flow",
]

# Problem codes (stable: the API returns them and the editor keys messages on them).
INVALID_FLOW = "invalid_flow"  # the document itself: not an object, bad name, unknown key
INVALID_NODE = "invalid_node"  # a node's shape: bad id, missing type, bad retry policy
INVALID_EDGE = "invalid_edge"  # an edge's shape: missing from/to
DUPLICATE_NODE_ID = "duplicate_node_id"
UNKNOWN_NODE_TYPE = "unknown_node_type"
INVALID_CONFIG = "invalid_config"  # config fails the node type's schema
TEMPLATE_SYNTAX = "template_syntax"  # a template field does not compile
SECRET_REFERENCE = "secret_reference"  # {{ secrets.X }} where or how it cannot be used
UNKNOWN_NODE = "unknown_node"  # an edge leaves or enters a node that does not exist
UNKNOWN_PORT = "unknown_port"  # an edge leaves by a port the node does not have
DUPLICATE_EDGE = "duplicate_edge"
PORT_FAN_OUT = "port_fan_out"  # two edges leave the same port
EDGE_INTO_TRIGGER = "edge_into_trigger"
NO_TRIGGER = "no_trigger"
MULTIPLE_HTTP_TRIGGERS = "multiple_http_triggers"
UNREACHABLE_NODE = "unreachable_node"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow. ``field`` is a dotted path inside the node
    (``config.text``, ``config.cases.0.port``, ``retry.attempts``) or, for edges and the
    document, inside the flow (``edges.2.to``, ``name``)."""

    node_id: str | None
    field: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the 422 response's ``details`` items)."""
        return asdict(self)


class InvalidFlowError(ValueError):
    """Raised by :func:`load_flow`; carries every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else None
        where = f" (node {first.node_id})" if first and first.node_id else ""
        more = f" and {len(self.problems) - 1} more" if len(self.problems) > 1 else ""
        super().__init__(f"invalid flow: {first.message if first else '?'}{where}{more}")


def load_flow(raw: Mapping[str, Any] | str | bytes) -> Flow:
    """Parse and fully validate a flow; raises InvalidFlowError listing every problem."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InvalidFlowError(
                [Problem(None, None, INVALID_FLOW, f"not JSON: {exc}")]
            ) from None
    problems = validate_flow(raw)
    if problems:
        raise InvalidFlowError(problems)
    assert isinstance(raw, Mapping)
    return parse_flow(raw)


def validate_flow(raw: Any) -> list[Problem]:
    """Every problem of a flow document (empty list = publishable)."""
    if not isinstance(raw, Mapping):
        return [Problem(None, None, INVALID_FLOW, "a flow must be a JSON object")]
    problems = _check_document(raw)
    nodes = _parse_nodes(raw.get("nodes", []), problems)
    specs: dict[str, NodeSpec[Any]] = {}
    for node in nodes:
        spec = _check_node(node, problems)
        if spec is not None:
            specs[node.id] = spec
    by_id = {node.id: node for node in nodes}
    edges = _parse_edges(raw.get("edges", []), problems)
    _check_edges(edges, by_id, specs, problems)
    _check_graph(nodes, edges, specs, problems)
    return problems


def _check_document(raw: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    shell = {k: v for k, v in raw.items() if k not in ("nodes", "edges")}
    try:
        Flow.model_validate({**shell, "nodes": [], "edges": []})
    except ValidationError as exc:
        problems += [
            Problem(None, _path(err["loc"]), INVALID_FLOW, _message(err)) for err in exc.errors()
        ]
    for key in ("nodes", "edges"):
        if key in raw and not isinstance(raw[key], list):
            problems.append(Problem(None, key, INVALID_FLOW, f"`{key}` must be a list"))
    return problems


def _parse_nodes(items: Any, problems: list[Problem]) -> list[Node]:
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, item in enumerate(items if isinstance(items, list) else []):
        raw_id = item.get("id") if isinstance(item, Mapping) else None
        node_id = raw_id if isinstance(raw_id, str) else None
        try:
            node = Node.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                field = _path(err["loc"]) or f"nodes.{index}"
                problems.append(Problem(node_id, field, INVALID_NODE, _message(err)))
            continue
        if node.id in seen:
            problems.append(
                Problem(node.id, "id", DUPLICATE_NODE_ID, f"node id {node.id!r} is used twice")
            )
            continue
        seen.add(node.id)
        nodes.append(node)
    if not nodes and not problems:
        problems.append(Problem(None, "nodes", INVALID_FLOW, "the flow has no nodes"))
    return nodes


def _check_node(node: Node, problems: list[Problem]) -> NodeSpec[Any] | None:
    spec = get_spec(node.type)
    if spec is None:
        problems.append(
            Problem(node.id, "type", UNKNOWN_NODE_TYPE, f"unknown node type {node.type!r}")
        )
        return None
    try:
        spec.config_model.model_validate(node.config)
    except ValidationError as exc:
        for err in exc.errors():
            field = "config" + ("." + _path(err["loc"]) if err["loc"] else "")
            problems.append(Problem(node.id, field, INVALID_CONFIG, _message(err)))
    for name in spec.config_model.template_fields():
        for path, text in _strings(node.config.get(name), f"config.{name}"):
            error = check_template(text)
            if error is not None:
                problems.append(Problem(node.id, path, TEMPLATE_SYNTAX, f"template: {error}"))
            elif wrong := secret_problems(text, allowed=name in spec.secret_fields):
                problems.append(Problem(node.id, path, SECRET_REFERENCE, wrong))
    return spec


def _parse_edges(items: Any, problems: list[Problem]) -> list[tuple[int, Edge]]:
    edges: list[tuple[int, Edge]] = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        try:
            edges.append((index, Edge.model_validate(item)))
        except ValidationError as exc:
            for err in exc.errors():
                field = f"edges.{index}" + ("." + _path(err["loc"]) if err["loc"] else "")
                problems.append(Problem(None, field, INVALID_EDGE, _message(err)))
    return edges


def _check_edges(
    edges: list[tuple[int, Edge]],
    nodes: Mapping[str, Node],
    specs: Mapping[str, NodeSpec[Any]],
    problems: list[Problem],
) -> None:
    seen: set[tuple[str, str, str]] = set()
    targets: dict[tuple[str, str], str] = {}
    for index, edge in edges:
        where = f"edges.{index}"
        problems += _unknown_ends(edge, where, nodes)
        key = (edge.from_, edge.port, edge.to)
        if key in seen:
            problems.append(
                Problem(
                    edge.from_,
                    where,
                    DUPLICATE_EDGE,
                    f"edge {edge.from_}.{edge.port} -> {edge.to} is repeated",
                )
            )
            continue
        seen.add(key)
        problems += _port_problems(edge, where, nodes, specs)
        previous = targets.setdefault((edge.from_, edge.port), edge.to)
        if previous != edge.to:
            problems.append(
                Problem(
                    edge.from_,
                    f"{where}.port",
                    PORT_FAN_OUT,
                    f"port {edge.port!r} already leads to {previous!r}; a port leads to one node",
                )
            )


def _unknown_ends(edge: Edge, where: str, nodes: Mapping[str, Node]) -> list[Problem]:
    """An edge that leaves or enters a node the flow does not have."""
    problems: list[Problem] = []
    if edge.from_ not in nodes:
        problems.append(
            Problem(None, f"{where}.from", UNKNOWN_NODE, f"edge leaves unknown node {edge.from_!r}")
        )
    if edge.to not in nodes:
        problems.append(
            Problem(
                edge.from_ if edge.from_ in nodes else None,
                f"{where}.to",
                UNKNOWN_NODE,
                f"edge enters unknown node {edge.to!r}",
            )
        )
    return problems


def _port_problems(
    edge: Edge, where: str, nodes: Mapping[str, Node], specs: Mapping[str, NodeSpec[Any]]
) -> list[Problem]:
    """An edge that leaves by a port its node does not have, or enters a trigger."""
    problems: list[Problem] = []
    spec = specs.get(edge.from_)
    if spec is not None:
        ports = spec.ports_for(nodes[edge.from_].config)
        if edge.port not in ports:
            allowed = ", ".join(ports) or "none"
            problems.append(
                Problem(
                    edge.from_,
                    f"{where}.port",
                    UNKNOWN_PORT,
                    f"node has no port {edge.port!r} (ports: {allowed})",
                )
            )
    target_spec = specs.get(edge.to)
    if target_spec is not None and target_spec.is_trigger:
        problems.append(
            Problem(
                edge.to, f"{where}.to", EDGE_INTO_TRIGGER, "a trigger cannot have incoming edges"
            )
        )
    return problems


def _check_graph(
    nodes: list[Node],
    edges: list[tuple[int, Edge]],
    specs: Mapping[str, NodeSpec[Any]],
    problems: list[Problem],
) -> None:
    triggers = [node for node in nodes if node.id in specs and specs[node.id].is_trigger]
    if not triggers and nodes:
        problems.append(Problem(None, None, NO_TRIGGER, "the flow has no trigger node"))
    http = [node for node in triggers if node.type == "trigger.http"]
    for extra in http[1:]:
        problems.append(
            Problem(extra.id, "type", MULTIPLE_HTTP_TRIGGERS, "a flow has at most one trigger.http")
        )
    if not triggers:
        return
    following: dict[str, list[str]] = {}
    for _, edge in edges:
        following.setdefault(edge.from_, []).append(edge.to)
    reached = {node.id for node in triggers}
    queue = deque(reached)
    while queue:
        for target in following.get(queue.popleft(), []):
            if target not in reached:
                reached.add(target)
                queue.append(target)
    for node in nodes:
        if node.id not in reached:
            problems.append(
                Problem(node.id, None, UNREACHABLE_NODE, "no trigger leads to this node")
            )


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a config value, with its dotted path (keys of objects too)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield f"{path}.{key}", str(key)
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")


def _path(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def _message(err: Any) -> str:
    message = str(err.get("msg", "invalid"))
    return message.removeprefix("Value error, ")
