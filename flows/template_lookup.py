"""The fast path for the commonest template: one dotted variable lookup.

``{{ trigger.data.body }}`` or ``{{ steps.start.output.rest }}`` is most of what flows
render. :class:`TextLookup` (a whole template that is one such lookup) and
:class:`ExpressionLookup` (a native ``{{ expression }}`` that is one) answer it by
walking plain dicts, with exactly Jinja's result and budget accounting, and hand
anything else to the compiled Jinja template or expression they wrap:

* the first name must be in the render context (otherwise a Jinja global, or undefined:
  Jinja decides); every value walked through must be a ``dict`` (not a subclass), and no
  name may be an attribute of ``dict`` (``items``, ``keys``…: the sandbox's ``getattr``
  prefers attributes);
* a missing key is Jinja's lenient undefined (``ChainableUndefined``: ``""`` as text,
  None as a native value), also for the names after it (unless one could be an attribute
  of the undefined itself);
* text output goes through the sandbox's output hook (time check, output weighed and
  spent) and ``str()``, as the instrumented template does: None renders ``"None"``.

So what a template can see and do is unchanged; only the Jinja machinery is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser

from flows.template_budget import current_budget
from flows.template_sandbox import SandboxEnvironment, budget_out

__all__ = ["ExpressionLookup", "TextLookup", "expression_names", "template_names"]

_DICT_ATTRIBUTES = frozenset(dir(dict))
_UNDEFINED_ATTRIBUTES = frozenset(dir(jinja2.ChainableUndefined))
#: Returned by :func:`_resolve` when Jinja has to answer.
_SLOW: Any = object()


def template_names(env: SandboxEnvironment, source: str) -> tuple[str, ...] | None:
    """The names of ``a.b.c`` if the template ``source`` is exactly ``{{ a.b.c }}``."""
    try:
        tree = env.parse(source)
    except Exception:
        return None  # the compiled template reports it
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    return _chain(body[0].nodes[0])


def expression_names(env: SandboxEnvironment, source: str) -> tuple[str, ...] | None:
    """The names of ``a.b.c`` if the expression ``source`` is exactly ``a.b.c``."""
    try:
        parser = Parser(env, source, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            return None
    except Exception:
        return None  # the compiled expression reports it
    return _chain(expression)


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    names: list[str] = []
    while isinstance(node, nodes.Getattr):
        names.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load":
        return None
    names.append(node.name)
    return tuple(reversed(names))


def _resolve(env: SandboxEnvironment, names: tuple[str, ...], context: Mapping[str, Any]) -> Any:
    """The value Jinja's sandbox would find, or ``_SLOW`` where only Jinja can tell."""
    value = context.get(names[0], _SLOW)
    if value is _SLOW:
        return _SLOW
    index = 1
    for name in names[1:]:
        if type(value) is not dict or name in _DICT_ATTRIBUTES:
            return _SLOW
        found = value.get(name, _SLOW)
        if found is _SLOW:
            return _undefined(env, value, name, names[index + 1 :])
        value = found
        index += 1
    return value


def _undefined(
    env: SandboxEnvironment, obj: dict[str, Any], name: str, rest: tuple[str, ...]
) -> Any:
    """Jinja's undefined for a missing key, chained through the names after it (unless
    one of them could be an attribute of the undefined itself: then Jinja decides)."""
    if any(n.startswith("_") or n in _UNDEFINED_ATTRIBUTES for n in rest):
        return _SLOW
    return env.undefined(obj=obj, name=name)


class TextLookup:
    """A template that is one dotted lookup; quacks like the ``jinja2.Template`` it wraps
    as far as :class:`~flows.expressions.Renderer` uses it (``generate``)."""

    def __init__(
        self, env: SandboxEnvironment, names: tuple[str, ...], template: jinja2.Template
    ) -> None:
        self.env = env
        self.names = names
        self.template = template

    def generate(self, context: Mapping[str, Any]) -> Iterator[str]:
        """The rendered text, as one chunk."""
        value = _resolve(self.env, self.names, context)
        if value is _SLOW:
            yield from self.template.generate(dict(context))
            return
        current_budget().check_time()  # the sandbox's call() of the output hook
        yield str(budget_out(value))


class ExpressionLookup:
    """An expression that is one dotted lookup; called like the compiled expression."""

    def __init__(
        self, env: SandboxEnvironment, names: tuple[str, ...], expression: TemplateExpression
    ) -> None:
        self.env = env
        self.names = names
        self.expression = expression

    def __call__(self, **context: Any) -> Any:
        """The value (an undefined one is None, as for ``compile_expression``)."""
        return self.value(context)

    def value(self, context: Mapping[str, Any]) -> Any:
        """The same, given the context as a mapping."""
        value = _resolve(self.env, self.names, context)
        if value is _SLOW:
            return self.expression(**dict(context))
        return None if isinstance(value, jinja2.Undefined) else value
