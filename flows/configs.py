"""A node's config as its handler gets it: validated once per flow version, rendered per step.

A flow version never changes, so the static part of a node's config — validated by the
node type's pydantic model and dumped to JSON — is computed once per
``(flow id, version, node id)`` and kept in a :class:`ConfigCache`, together with the
template fields whose value really contains a template (:func:`flows.expressions.is_template`
on a string, or a dict key, anywhere inside it). Per step only those fields are rendered
and the result validated again; a node without templates is not validated again at all:
its handler gets the cached config (handlers must not change their config).

The result is the same as validating the node's config, dumping it, rendering every
template field and validating that: strings without markup render to themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from flows.expressions import Renderer, TemplateError, is_template
from flows.model import Node
from flows.registry import NodeConfig, NodeSpec

__all__ = ["ConfigCache", "ConfigError", "StaticConfig", "has_template", "validate_config"]

#: Node configs kept per executor (FIFO): a few hundred flows of a dozen nodes.
_CACHE_SIZE = 4096


class ConfigError(Exception):
    """The node's config did not render or validate (the step fails; never retried)."""

    @classmethod
    def invalid(cls, exc: ValidationError) -> ConfigError:
        """The first problem pydantic found, as ``config.<field>: <message>``."""
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        return cls(f"config.{where}: {first['msg']}")


def validate_config(model: type[NodeConfig], data: Mapping[str, Any]) -> NodeConfig:
    """``model.model_validate(data)``, a failure as a :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.invalid(exc) from exc


@dataclass(frozen=True)
class StaticConfig:
    """A node's config before rendering."""

    #: Validated from ``data`` (what the handler gets when nothing needs rendering).
    config: NodeConfig
    #: The JSON dump of the validated config.
    data: Mapping[str, Any]
    #: (field, native) for each template field that contains a template, in field order.
    templates: tuple[tuple[str, bool], ...]

    def render(
        self,
        model: type[NodeConfig],
        renderer: Renderer,
        context: Callable[[], Mapping[str, Any]],
    ) -> tuple[NodeConfig, dict[str, Any]]:
        """The config with its templates rendered (one budget for all of them), and the
        step's input: the rendered dump. ``context`` is called only if there is anything
        to render. Raises :class:`ConfigError`."""
        data = dict(self.data)
        if not self.templates:
            return self.config, data
        names = context()
        with renderer.budget():
            for name, native in self.templates:
                try:
                    data[name] = renderer.render_value(data[name], names, native=native)
                except TemplateError as exc:
                    raise ConfigError(f"config.{name}: {exc}") from exc
        return validate_config(model, data), data


class ConfigCache:
    """:class:`StaticConfig` per (flow id, version, node id)."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self.size = size
        self._entries: dict[tuple[str, int, str], StaticConfig] = {}

    def get(self, flow_id: str, version: int, node: Node, spec: NodeSpec[Any]) -> StaticConfig:
        """The node's static config; raises :class:`ConfigError` if it is invalid (that is
        not cached: a flow that fails here fails every run anyway)."""
        key = (flow_id, version, node.id)
        entry = self._entries.get(key)
        if entry is None:
            entry = static_config(spec, node)
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = entry
        return entry


def static_config(spec: NodeSpec[Any], node: Node) -> StaticConfig:
    """Validate and dump a node's config, and find the fields that need rendering."""
    model = spec.config_model
    data = validate_config(model, node.config).model_dump(mode="json")
    templates = tuple(
        (name, kind == "value")
        for name, kind in model.template_fields().items()
        if data.get(name) is not None and has_template(data[name])
    )
    return StaticConfig(config=validate_config(model, data), data=data, templates=templates)


def has_template(value: Any) -> bool:
    """True if rendering ``value`` could change it: a string (or dict key) inside it has
    template markup."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, Mapping):
        return any(has_template(str(k)) or has_template(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_template(item) for item in value)
    return False
