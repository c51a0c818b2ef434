"""Flow templates: render the strings of a node's config, sandboxed and under a budget.

Every string a user writes in a node's template fields is rendered here, by a
:class:`Renderer` that compiles and caches templates and renders them in the sandbox of
:mod:`flows.template_sandbox` under the time and size budget of :mod:`flows.template_budget`
(the filters, ``jsonpath`` among them, are in :mod:`flows.template_filters`). A lone
``{{ expression }}`` can keep its type (``render_native``); everything else renders to
text. Templates are lenient about missing data: ``steps.missing.output.body`` renders as
an empty string instead of failing the step. :func:`template_context` builds the names a
template sees. A template that is one dotted lookup (``{{ trigger.data.body }}``) is
answered without running Jinja, with the same result (:mod:`flows.template_lookup`).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import jinja2

from flows.template_budget import (
    DEFAULT_MAX_OUTPUT,
    DEFAULT_MAX_TIME_S,
    TemplateBudgetExceeded,
    TemplateError,
    active_budget,
    budget_scope,
)
from flows.template_filters import jsonpath_filter
from flows.template_lookup import ExpressionLookup, TextLookup, expression_names, template_names
from flows.template_sandbox import SandboxEnvironment

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_MAX_TIME_S",
    "MAX_TEMPLATE_LENGTH",
    "Renderer",
    "TemplateBudgetExceeded",
    "TemplateError",
    "check_template",
    "default_renderer",
    "is_template",
    "jsonpath_filter",
    "render_template",
    "render_value",
    "template_context",
]

#: Longest template source accepted, in characters.
MAX_TEMPLATE_LENGTH = 32 * 1024
#: Compiled templates kept per renderer; flows reuse the same few hundred strings.
_CACHE_SIZE = 2048

_UNSEEN: Any = object()
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


def is_template(text: str) -> bool:
    """True if ``text`` contains Jinja markup (otherwise rendering returns it unchanged)."""
    return "{{" in text or "{%" in text or "{#" in text


class Renderer:
    """Compiles, caches and renders templates under a time and size budget."""

    def __init__(
        self,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
        max_time_s: float = DEFAULT_MAX_TIME_S,
        fast_lookups: bool = True,
    ) -> None:
        self.max_output = max_output
        self.max_time_s = max_time_s
        #: Answer one-lookup templates without Jinja (same results; off to compare).
        self.fast_lookups = fast_lookups
        self._env = SandboxEnvironment()
        self._templates: dict[str, jinja2.Template | TextLookup] = {}
        self._expressions: dict[str, Any] = {}
        #: source -> its lone expression compiled, or None if it renders as text.
        self._natives: dict[str, Any] = {}

    def budget(self) -> contextlib.AbstractContextManager[None]:
        """Share one budget between all renders inside the block (one node's config)."""
        return budget_scope(self.max_output, self.max_time_s)

    def check(self, source: str) -> str | None:
        """The syntax problem of ``source`` as a message, or None if it compiles."""
        try:
            self._template(source)
            self._native(source)
        except TemplateError as exc:
            return str(exc)
        return None

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        """Render ``source`` to text."""
        if not is_template(source):
            return source
        template = self._template(source)
        budget = active_budget()
        if budget is None:
            with self.budget():
                return self.render(source, context)
        try:
            chunks: list[str] = []
            size = 0
            # A lookup reads the context as it is; Jinja gets its own copy.
            names = context if type(template) is TextLookup else dict(context)
            for chunk in template.generate(names):
                size += len(chunk)
                budget.allow(size, "template output")
                chunks.append(chunk)
        except Exception as exc:
            _reraise(exc, "template")
        if size > self.max_output:
            raise TemplateBudgetExceeded(
                f"template output is {size} characters; the limit is {self.max_output}"
            )
        return "".join(chunks)

    def render_native(self, source: str, context: Mapping[str, Any]) -> Any:
        """Render ``source``; a lone ``{{ expression }}`` keeps its type (number, list,
        object), anything else renders to text."""
        expression = self._native(source)
        if expression is None:
            return self.render(source, context)
        budget = active_budget()
        if budget is None:
            with self.budget():
                return self.render_native(source, context)
        try:
            if type(expression) is ExpressionLookup:
                value = expression.value(context)
            else:
                value = expression(**dict(context))
        except Exception as exc:
            _reraise(exc, "expression")
        budget.weigh(value, "expression result")
        return _plain(value)

    def render_value(self, value: Any, context: Mapping[str, Any], *, native: bool) -> Any:
        """Render every string inside ``value`` (dicts and lists are walked; keys too)."""
        if active_budget() is None:
            with self.budget():
                return self._render_value(value, context, native)
        return self._render_value(value, context, native)

    def _render_value(self, value: Any, context: Mapping[str, Any], native: bool) -> Any:
        if isinstance(value, str):
            return self.render_native(value, context) if native else self.render(value, context)
        if type(value) is dict or isinstance(value, Mapping):
            return {
                self.render(str(k), context): self._render_value(v, context, native)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._render_value(item, context, native) for item in value]
        return value

    def _native(self, source: str) -> Any:
        """The compiled expression of a lone ``{{ expression }}``, or None (render as text);
        raises TemplateError if it does not compile (not remembered)."""
        found = self._natives.get(source, _UNSEEN)
        if found is not _UNSEEN:
            return found
        match = _SINGLE_EXPRESSION.match(source)
        if match and _is_single(match.group("expr")):
            found = self._expression(match.group("expr"))
        else:
            found = None
        _remember(self._natives, source, found)
        return found

    def _template(self, source: str) -> jinja2.Template | TextLookup:
        template = self._templates.get(source)
        if template is None:
            if len(source) > MAX_TEMPLATE_LENGTH:
                raise TemplateError(f"template is longer than {MAX_TEMPLATE_LENGTH} characters")
            try:
                template = self._env.from_string(source)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"line {exc.lineno}: {exc.message}") from exc
            except Exception as exc:
                raise TemplateError(f"template does not compile: {_describe(exc)}") from exc
            names = template_names(self._env, source) if self.fast_lookups else None
            if names is not None:
                template = TextLookup(self._env, names, template)
            _remember(self._templates, source, template)
        return template

    def _expression(self, source: str) -> Any:
        expression = self._expressions.get(source)
        if expression is None:
            try:
                expression = self._env.compile_expression(source.strip())
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"line {exc.lineno}: {exc.message}") from exc
            except Exception as exc:
                raise TemplateError(f"expression does not compile: {_describe(exc)}") from exc
            names = expression_names(self._env, source.strip()) if self.fast_lookups else None
            if names is not None:
                expression = ExpressionLookup(self._env, names, expression)
            _remember(self._expressions, source, expression)
        return expression


def _is_single(expression: str) -> bool:
    return "{{" not in expression and "}}" not in expression and "{%" not in expression


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _reraise(exc: Exception, what: str) -> NoReturn:
    """Raise what a failed render raises: a TemplateError as it is, anything else as one."""
    if isinstance(exc, TemplateError):
        raise exc
    if isinstance(exc, RecursionError):
        raise TemplateBudgetExceeded("template recursion is too deep") from exc
    raise TemplateError(f"{what} failed: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _plain(value: Any) -> Any:
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, str):  # Markup and other str subclasses
        return str(value)
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, jinja2.Undefined):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | range):
        return [_plain(item) for item in value]
    return str(value)


# -- module-level helpers -------------------------------------------------------------------


default_renderer = Renderer()


def render_template(source: str, context: Mapping[str, Any]) -> str:
    """Render ``source`` with the default renderer and budget."""
    return default_renderer.render(source, context)


def render_value(value: Any, context: Mapping[str, Any], *, native: bool = False) -> Any:
    """Render every string inside ``value`` with the default renderer."""
    return default_renderer.render_value(value, context, native=native)


def check_template(source: str) -> str | None:
    """The syntax problem of ``source``, or None if it compiles."""
    return default_renderer.check(source)


def template_context(
    *,
    trigger: Mapping[str, Any] | None = None,
    vars: Mapping[str, Any] | None = None,
    steps: Mapping[str, Any] | None = None,
    contact: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The names a template sees; ``steps`` maps node id to that node's latest output."""
    return {
        "trigger": dict(trigger or {}),
        "vars": dict(vars or {}),
        "steps": {node_id: {"output": output} for node_id, output in (steps or {}).items()},
        "contact": dict(contact or {}),
        "run": dict(run or {}),
    }
