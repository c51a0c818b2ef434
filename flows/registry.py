"""Node registry: what a node type is made of and the catalog the editor builds forms from.

One node type = a :class:`NodeSpec` (type name, title, description, category, output
ports, the id prefix and output keys the editor offers, a pydantic config model) plus ONE
async handler ``handler(config, ctx)``. The built-in types live one per module in
:mod:`flows.nodes`. Config fields whose strings are templates are declared with
:func:`text_template` / :func:`value_template`; the executor renders exactly those before
calling the handler, so handlers get final values.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from flows.model import DEFAULT_PORT, ERROR_PORT, NODE_ID_PATTERN
from flows.ports import ContactView, Effects, ReplyTo

__all__ = [
    "NodeCategory",
    "NodeConfig",
    "NodeContext",
    "NodeError",
    "NodeResult",
    "NodeSpec",
    "TemplateKind",
    "WaitRequest",
    "get_spec",
    "node_types",
    "node_types_catalog",
    "register",
    "text_template",
    "value_template",
]

NodeCategory = Literal["trigger", "logic", "data", "sms", "http", "contact", "flow"]
#: text = every string renders to text; value = a lone ``{{ expr }}`` keeps its type.
TemplateKind = Literal["text", "value"]
_TEMPLATE_KEY = "x-template"


def text_template(default: Any = ..., *, description: str, **kwargs: Any) -> Any:
    """A config field whose strings are templates rendered to text."""
    return _template_field("text", default, description, kwargs)


def value_template(default: Any = ..., *, description: str, **kwargs: Any) -> Any:
    """A config field whose strings are templates; a lone ``{{ expr }}`` keeps its type."""
    return _template_field("value", default, description, kwargs)


def _template_field(kind: TemplateKind, default: Any, description: str, kwargs: Any) -> Any:
    extra: dict[str, Any] = {_TEMPLATE_KEY: kind}
    if "default_factory" in kwargs:
        return Field(description=description, json_schema_extra=extra, **kwargs)
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


class NodeConfig(BaseModel):
    """Base of node config models: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def template_fields(cls) -> dict[str, TemplateKind]:
        """Field name -> how its strings render."""
        found: dict[str, TemplateKind] = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get(_TEMPLATE_KEY) in ("text", "value"):
                found[name] = "value" if extra[_TEMPLATE_KEY] == "value" else "text"
        return found


ConfigT = TypeVar("ConfigT", bound=NodeConfig)


@dataclass(frozen=True, kw_only=True)
class NodeContext:
    """What a handler may know about the run it is part of, and the effects it may use."""

    run_id: str
    flow_id: str
    flow_version: int
    node_id: str
    attempt: int
    #: Use on every effect the handler issues (see :func:`flows.runs.idempotency_key`).
    idempotency_key: str
    trigger: Mapping[str, Any]
    vars: Mapping[str, Any]
    contact: Mapping[str, Any] | None
    #: The latest inbound SMS of the run, for replies; None for runs without one.
    reply_to: ReplyTo | None
    now: datetime
    effects: Effects

    @property
    def contact_phone(self) -> str | None:
        """The run's contact: the replying party if any, else the contact record's phone."""
        if self.reply_to is not None:
            return self.reply_to.phone
        phone = (self.contact or {}).get("phone")
        return str(phone) if phone else None


def fast_node_context(**fields: Any) -> NodeContext:
    """A :class:`NodeContext` made without the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field): the executor makes one per step. ``fields`` must be
    every field of NodeContext, as keywords."""
    context = object.__new__(NodeContext)
    context.__dict__.update(fields)
    return context


@dataclass(frozen=True, kw_only=True)
class WaitRequest:
    """Returned by a handler that must wait: the executor persists it and sets a timer."""

    kind: Literal["reply", "delay"]
    until: datetime
    timeout_port: str = DEFAULT_PORT
    reply_port: str = "reply"
    contact_phone: str | None = None
    channel_id: str | None = None


@dataclass(kw_only=True)
class NodeResult:
    """What a handler produced: its output, the port to leave by, and state changes."""

    output: dict[str, Any] = field(default_factory=dict)
    port: str = DEFAULT_PORT
    #: Variables to set on the run (``vars.<name>``).
    vars: dict[str, Any] | None = None
    #: The contact after a change, stored on the run (``contact.*``).
    contact: ContactView | None = None
    wait: WaitRequest | None = None
    #: End the run here with this status.
    stop: Literal["completed", "failed"] | None = None
    stop_reason: str | None = None


class NodeError(Exception):
    """A node failed. ``retryable`` lets the retry policy try again; ``output`` is kept on
    the step (and is ``steps.<id>.output`` on the error branch)."""

    def __init__(
        self, message: str, *, retryable: bool = False, output: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.output = output


@dataclass(frozen=True, kw_only=True)
class NodeSpec(Generic[ConfigT]):
    """Declarative description of a node type plus its handler."""

    type: str
    title: str
    description: str
    category: NodeCategory
    config_model: builtins.type[ConfigT]
    handler: Callable[[ConfigT, NodeContext], Awaitable[NodeResult]]
    #: Output ports (besides the error port).
    ports: tuple[str, ...] = (DEFAULT_PORT,)
    #: For types whose ports depend on the config (logic.switch): config -> ports.
    ports_from_config: Callable[[ConfigT], tuple[str, ...]] | None = None
    #: Human hint for the editor on where dynamic ports come from.
    ports_hint: str | None = None
    #: Where the dynamic ports are in the config, for the editor's canvas: (list field,
    #: item key), e.g. ``("cases", "port")``; the ports are those names, then ``ports``.
    port_list: tuple[str, str] | None = None
    #: Whether the node can fail, and so offers the ``error`` port.
    can_fail: bool = True
    #: Whether the handler talks to the outside world (its input is saved before it runs).
    effectful: bool = False
    #: Id the editor gives a new node of this type (``reply``, then ``reply_2``…);
    #: empty = the type's last part. Must be a valid node id (``NODE_ID_PATTERN``).
    id_prefix: str = ""
    #: Keys of ``steps.<id>.output`` worth reading in later templates (the editor's
    #: variables menu offers them); the handler may put more there.
    outputs: tuple[str, ...] = ()
    #: Template fields that may use ``{{ secrets.NAME }}`` (flows.secrets): the node's
    #: templates see ``secrets`` only if there are any, so they must be all of its
    #: template fields; elsewhere ``secrets`` is a problem at publish.
    secret_fields: tuple[str, ...] = ()

    @property
    def is_trigger(self) -> bool:
        """Trigger nodes start runs and have no incoming edges."""
        return self.category == "trigger"

    def ports_for(self, config: Mapping[str, Any] | NodeConfig) -> tuple[str, ...]:
        """Every port an edge may leave this node by, given its config."""
        ports = self.ports
        if self.ports_from_config is not None:
            try:
                model = (
                    config
                    if isinstance(config, self.config_model)
                    else self.config_model.model_validate(config)
                )
            except ValueError:
                model = None
            if model is not None:
                ports = self.ports_from_config(model)
        if self.can_fail and ERROR_PORT not in ports:
            ports = (*ports, ERROR_PORT)
        return ports

    def catalog_entry(self) -> dict[str, Any]:
        """The type as ``GET /api/v1/node-types`` shows it."""
        return {
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "ports": list(self.ports),
            "ports_from_config": self.ports_hint,
            "port_list": (
                {"field": self.port_list[0], "key": self.port_list[1]} if self.port_list else None
            ),
            "error_port": ERROR_PORT if self.can_fail else None,
            "effectful": self.effectful,
            "id_prefix": self.id_prefix or self.type.rsplit(".", 1)[-1],
            # The same for every type; sent with each so the editor checks ids as the
            # engine does (flows.model.Node) without a second endpoint.
            "id_pattern": NODE_ID_PATTERN,
            "outputs": list(self.outputs),
            "templates": self.config_model.template_fields(),
            "config_schema": {**self.config_model.model_json_schema(), "title": self.title},
        }


_registry: dict[str, NodeSpec[Any]] = {}
_builtins_loaded: list[bool] = []


def _ensure_builtins() -> None:
    if _builtins_loaded:
        return
    _builtins_loaded.append(True)
    # Imported here: node modules import this module for NodeSpec and friends.
    from flows.nodes import BUILTIN_SPECS

    for spec in BUILTIN_SPECS:
        _registry.setdefault(spec.type, spec)


def register(spec: NodeSpec[Any], *, replace: bool = False) -> None:
    """Add a node type (plugins, tests); refuses to shadow an existing type by accident."""
    _ensure_builtins()
    if spec.type in _registry and not replace:
        raise ValueError(f"node type {spec.type!r} is already registered")
    _registry[spec.type] = spec


def get_spec(node_type: str) -> NodeSpec[Any] | None:
    """The spec of a node type, or None if unknown."""
    if not _builtins_loaded:
        _ensure_builtins()
    return _registry.get(node_type)


def node_types() -> list[NodeSpec[Any]]:
    """All registered node types, ordered by category then type."""
    _ensure_builtins()
    order = ("trigger", "logic", "data", "sms", "http", "contact", "flow")
    return sorted(_registry.values(), key=lambda s: (order.index(s.category), s.type))


def node_types_catalog() -> list[dict[str, Any]]:
    """Every type's :meth:`NodeSpec.catalog_entry`, as ``GET /api/v1/node-types`` serves it."""
    return [spec.catalog_entry() for spec in node_types()]
