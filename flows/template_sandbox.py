"""The Jinja2 environment flow templates run in: an immutable sandbox with budget hooks.

:class:`jinja2.sandbox.ImmutableSandboxedEnvironment` stops access to Python internals.
On top of it every place a template can spend time or build text is routed through the
budget of :mod:`flows.template_budget`:

* the template tree is instrumented at compile time (loops, ``~`` concatenation and output
  nodes are wrapped in budget checks), so even templates without any function call are
  bounded; constant folding is off, so nothing runs unbudgeted at compile time;
* operators (``*``, ``**``, ``+``, ``%``), calls (the ``str`` methods that amplify, like
  ``ljust`` or ``replace``) and ``str.format`` are checked before they run;
* filters are wrapped by :mod:`flows.template_filters`.

Templates are lenient about missing data (``ChainableUndefined``), strict about unsafe
attributes (an error, not a silent empty string).
"""

from __future__ import annotations

import re
import string
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from flows.template_budget import (
    Budget,
    TemplateBudgetExceeded,
    TemplateError,
    check_percent_format,
    current_budget,
    int_arg,
    replace_size,
    sized_len,
)
from flows.template_filters import REMOVED_GLOBALS, guarded_filters

__all__ = ["SandboxEnvironment", "budget_out"]

#: Largest integer an operator may produce, in bits (bigger multiplications get slow).
_MAX_INT_BITS = 100_000

_DIGITS = re.compile(r"\d+")


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox plus the budget hooks."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.ChainableUndefined,
            autoescape=False,
            # No constant folding: it would run `'a' * 10**9` at compile time, unbudgeted.
            optimized=False,
            keep_trailing_newline=True,
        )
        self.budget_iter = _budget_iter
        self.budget_concat = _budget_concat
        self.budget_out = budget_out
        for name in REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.filters = guarded_filters(self.filters)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        # Every compile path (templates and compile_expression) passes through here.
        tree = _Instrument().visit(source)
        assert isinstance(tree, nodes.Template)
        tree.set_environment(self)
        return super()._generate(tree, name, filename, defer_init)

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        budget = current_budget()
        _guard_binop(budget, operator, left, right)
        result = super().call_binop(context, operator, left, right)
        if operator == "%" and isinstance(result, str):
            budget.allow(len(result), "% formatting")
        return result

    def call(
        __self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any
    ) -> Any:
        budget = current_budget()
        budget.check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(owner, str | bytes):
            if __obj.__name__ == "join" and args:
                args = (list(args[0]), *args[1:])
            _guard_str_method(budget, owner, __obj.__name__, args)
        return super().call(__context, __obj, *args, **kwargs)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # Fail loudly: a silent empty string would hide the mistake from the flow author.
        raise TemplateError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} is not allowed"
        )

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            budget = current_budget()
            budget.check_time()
            _check_brace_format(str(fmt), budget)
            budget.weigh(args, "format arguments")
            budget.weigh(kwargs, "format arguments")
            result = wrapped(*args, **kwargs)
            budget.allow(len(result), "str.format")
            return result

        return checked


# -- compile-time instrumentation ---------------------------------------------------------


class _Instrument(NodeTransformer):
    """Route loops, ``~`` and output through the budget (see the module docstring)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        iterable = node.iter
        assert isinstance(iterable, nodes.Expr)
        node.iter = _env_call("budget_iter", [iterable], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _env_call("budget_concat", list(node.nodes), node.lineno)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        wrapped: list[nodes.Expr] = []
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                child = nodes.Const(child.data, lineno=child.lineno)
            wrapped.append(_env_call("budget_out", [child], child.lineno))
        node.nodes = wrapped
        return node


def _env_call(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    # EnvironmentAttribute compiles to `environment.<name>`: a template cannot shadow it.
    return nodes.Call(
        nodes.EnvironmentAttribute(name, lineno=lineno), args, [], None, None, lineno=lineno
    )


def _budget_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = current_budget()
    for item in iterable:
        budget.tick()
        yield item


def _budget_concat(*parts: Any) -> str:
    budget = current_budget()
    budget.check_time()
    size = sum(budget.weigh(part, "concatenated value") for part in parts)
    budget.allow(size, "concatenation")
    text = "".join(str(part) for part in parts)
    budget.spend(len(text))
    return text


def budget_out(value: Any) -> Any:
    """The output hook: every value a template prints is weighed and counted."""
    budget = current_budget()
    budget.check_time()
    budget.spend(budget.weigh(value, "output value"))
    return value


# -- operator and method guards -----------------------------------------------------------


def _guard_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse an operator call whose result would blow the budget, before computing it."""
    budget.tick()
    sequence = (str, bytes, list, tuple)
    if operator == "*":
        if isinstance(left, int) and isinstance(right, sequence):
            left, right = right, left
        if isinstance(left, sequence) and isinstance(right, int):
            budget.allow(budget.weigh(left) * max(right, 0), "repetition")
        elif (
            isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > _MAX_INT_BITS
        ):
            raise TemplateBudgetExceeded("integer multiplication result is too large")
    elif operator == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and left.bit_length() * max(right, 0) > _MAX_INT_BITS
        ):
            raise TemplateBudgetExceeded("power result is too large")
    elif operator == "+":
        if isinstance(left, sequence) and isinstance(right, sequence):
            budget.allow(budget.weigh(left) + budget.weigh(right), "concatenation")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left, budget)
        budget.weigh(right)


def _guard_str_method(budget: Budget, owner: Any, name: str, args: tuple[Any, ...]) -> None:
    """Size checks for the ``str``/``bytes`` methods that can amplify their input."""
    if name in ("ljust", "rjust", "center", "zfill") and args:
        budget.allow(int_arg(args[0]), f"str.{name}")
    elif name == "expandtabs":
        tab = int_arg(args[0], 8) if args else 8
        budget.allow(
            len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * tab,
            "str.expandtabs",
        )
    elif name == "replace" and len(args) >= 2 and isinstance(owner, str):
        old, new = str(args[0]), str(args[1])
        count = args[2] if len(args) > 2 and isinstance(args[2], int) else None
        budget.allow(replace_size(owner, old, new, count), "str.replace")
    elif name == "join" and args:
        items = args[0]
        budget.allow(budget.weigh(items) + len(owner) * sized_len(items), "str.join")


def _check_brace_format(fmt: str, budget: Budget) -> None:
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise TemplateError(f"bad format string: {exc}") from exc
    for _literal, _field, spec, _conversion in parsed:
        if not spec:
            continue
        if "{" in spec:
            raise TemplateError("nested replacement fields are not allowed in format specs")
        for digits in _DIGITS.findall(spec):
            budget.allow(int(digits), "a format width")
