"""Sandboxed Jinja2 templates for flow configs, with a jsonpath filter and a render budget.

Every string a user writes in a node's template fields is rendered here. The sandbox
(:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`) stops access to Python internals;
on top of it a *budget* bounds what one render may cost:

* **time** — a deadline checked on every loop iteration, call, filter, operator and output;
* **size** — the final output is capped (64 KiB by default), and so is the total text a
  render produces on the way (macro and ``{% set %}`` buffers included), and every single
  operation that can amplify data (``'a' * 10**9``, ``9 ** 9 ** 9``, ``|center(10**9)``,
  ``'%999999999s' % x``, self-referencing lists stringified) is checked *before* it runs.

The template tree is instrumented at compile time (loops, ``~`` concatenation and output
nodes are wrapped in budget checks) so even templates without any function call are
bounded. Templates are lenient about missing data: ``steps.missing.output.body`` renders
as an empty string instead of failing the step.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import re
import string
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from jsonpath_ng.ext.parser import parse as _jsonpath_parse  # ext: [?(@.x > 1)] filters

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

#: Largest rendered output of one template, in characters.
DEFAULT_MAX_OUTPUT = 64 * 1024
#: Longest one render (or one node's whole config) may take, in seconds.
DEFAULT_MAX_TIME_S = 0.1
#: Longest template source accepted, in characters.
MAX_TEMPLATE_LENGTH = 32 * 1024
#: Text a render may produce in total (buffers included) as a multiple of the output cap,
#: so a template may build text and then trim it, but not build gigabytes.
_WORK_FACTOR = 8
#: Largest integer an operator may produce, in bits (bigger multiplications get slow).
_MAX_INT_BITS = 100_000
#: Cap on ``|tojson(indent=…)``: indentation multiplies the output size.
_MAX_JSON_INDENT = 16
#: How many loop iterations pass between deadline checks.
_TICK_MASK = 15
#: Compiled templates kept per renderer; flows reuse the same few hundred strings.
_CACHE_SIZE = 2048

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
_PERCENT_SPEC = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(?P<width>\*|\d*)(?:\.(?P<precision>\*|\d*))?[hlL]?[a-zA-Z%]"
)
_DIGITS = re.compile(r"\d+")


class TemplateError(Exception):
    """A template failed to compile or to render; the message says where and why."""


class TemplateBudgetExceeded(TemplateError):
    """A template ran over its time or size budget."""


@dataclass
class _Budget:
    """What the render in progress may still spend."""

    deadline: float
    max_time_s: float
    max_output: int
    max_work: int
    produced: int = 0
    ticks: int = 0

    def check_time(self) -> None:
        """Raise once the deadline has passed."""
        if time.monotonic() > self.deadline:
            raise TemplateBudgetExceeded(
                f"template took longer than its {self.max_time_s * 1000:.0f} ms budget"
            )

    def tick(self) -> None:
        """Cheap per-iteration check: look at the clock every few iterations."""
        self.ticks += 1
        if not self.ticks & _TICK_MASK:
            self.check_time()

    def allow(self, size: int, what: str) -> None:
        """Refuse an operation whose result would be bigger than any render may hold."""
        if size > self.max_work:
            raise TemplateBudgetExceeded(
                f"{what} would produce about {size} characters; "
                f"the template budget is {self.max_work}"
            )

    def spend(self, size: int) -> None:
        """Count text produced by the render (outputs and buffers)."""
        self.produced += size
        if self.produced > self.max_work:
            raise TemplateBudgetExceeded(f"template produced more than {self.max_work} characters")

    def weigh(self, value: Any, what: str = "value") -> int:
        """Size of ``str(value)``, estimated without building it; refuses oversized values."""
        return _weight(value, self.max_work, what)


_active: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "flows_template_budget", default=None
)


def _budget() -> _Budget:
    budget = _active.get()
    if budget is None:
        # Outside a render (e.g. a helper called directly): apply the default budget.
        return _new_budget(DEFAULT_MAX_OUTPUT, DEFAULT_MAX_TIME_S)
    return budget


def _new_budget(max_output: int, max_time_s: float) -> _Budget:
    return _Budget(
        deadline=time.monotonic() + max_time_s,
        max_time_s=max_time_s,
        max_output=max_output,
        max_work=max_output * _WORK_FACTOR,
    )


def _weight(value: Any, cap: int, what: str) -> int:
    """Estimate the printed size of ``value``, walking shared references as often as
    ``str()`` would, but never more than ``cap`` units (so a self-doubling list costs
    at most ``cap`` steps to reject)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item) + 3
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float | range):
            total += 24
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total <= cap:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= cap:
                stack.extend(item)
        elif isinstance(item, Namespace):
            total += 16
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        else:
            total += 32
        if total > cap:
            raise TemplateBudgetExceeded(
                f"{what} is too large (over {cap} characters when printed)"
            )
    return total


# -- operator, method and filter guards -------------------------------------------------


def _check_percent_format(fmt: str, budget: _Budget) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in (match.group("width"), match.group("precision")):
            if part == "*":
                raise TemplateError("'*' widths are not allowed in % formatting")
            if part and int(part) > budget.max_output:
                budget.allow(int(part), "a % format width")


def _check_brace_format(fmt: str, budget: _Budget) -> None:
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


def _guard_binop(budget: _Budget, operator: str, left: Any, right: Any) -> None:
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
        _check_percent_format(left, budget)
        budget.weigh(right)


def _replace_size(text: str, old: str, new: str, count: int | None) -> int:
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * max(len(new) - len(old), 0)


def _int_arg(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return len(value)
    return default


def _guard_str_method(budget: _Budget, owner: Any, name: str, args: tuple[Any, ...]) -> None:
    """Size checks for the ``str``/``bytes`` methods that can amplify their input."""
    if name in ("ljust", "rjust", "center", "zfill") and args:
        budget.allow(_int_arg(args[0]), f"str.{name}")
    elif name == "expandtabs":
        tab = _int_arg(args[0], 8) if args else 8
        budget.allow(
            len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * tab,
            "str.expandtabs",
        )
    elif name == "replace" and len(args) >= 2 and isinstance(owner, str):
        old, new = str(args[0]), str(args[1])
        count = args[2] if len(args) > 2 and isinstance(args[2], int) else None
        budget.allow(_replace_size(owner, old, new, count), "str.replace")
    elif name == "join" and args:
        items = args[0]
        budget.allow(budget.weigh(items) + len(owner) * _sized_len(items), "str.join")


def _sized_len(items: Any) -> int:
    try:
        return len(items)
    except TypeError:
        return 0


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Jinja filter with the deadline, an input-size check and its own limits."""
    check = _FILTER_CHECKS.get(name)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.check_time()
        for arg in args:
            if not isinstance(arg, jinja2.Environment | jinja2.runtime.Context):
                budget.weigh(arg, f"input of filter {name!r}")
        if check is not None:
            check(budget, _strip_env(args), kwargs)
        return func(*args, **kwargs)

    return guarded


def _strip_env(args: tuple[Any, ...]) -> tuple[Any, ...]:
    # pass_environment / pass_context / pass_eval_context filters get that object first.
    if args and isinstance(
        args[0], jinja2.Environment | jinja2.runtime.Context | nodes.EvalContext
    ):
        return args[1:]
    return args


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _check_center(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    budget.allow(_int_arg(_arg(args, kwargs, 1, "width"), 80), "|center")


def _check_indent(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text = str(args[0]) if args else ""
    width = _int_arg(_arg(args, kwargs, 1, "width"), 4)
    budget.allow(len(text) + width * (text.count("\n") + 1), "|indent")


def _check_wordwrap(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text = str(args[0]) if args else ""
    width = max(_int_arg(_arg(args, kwargs, 1, "width"), 79), 1)
    wrap = _arg(args, kwargs, 3, "wrapstring")
    wrap_len = len(wrap) if isinstance(wrap, str) else 1
    budget.allow(len(text) + wrap_len * (len(text) // width + 1), "|wordwrap")


def _check_replace(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if len(args) < 3 and not {"old", "new"} <= kwargs.keys():
        return
    text = str(args[0])
    old = str(_arg(args, kwargs, 1, "old"))
    new = str(_arg(args, kwargs, 2, "new"))
    count = _arg(args, kwargs, 3, "count")
    budget.allow(
        _replace_size(text, old, new, count if isinstance(count, int) else None), "|replace"
    )


def _check_format(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if args and isinstance(args[0], str):
        _check_percent_format(args[0], budget)


def _check_join(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    sep = _arg(args, kwargs, 1, "d")
    sep_len = len(sep) if isinstance(sep, str) else 0
    items = args[0] if args else ()
    budget.allow(budget.weigh(items) + sep_len * _sized_len(items), "|join")


def _check_count(position: int, name: str, label: str) -> _FilterCheck:
    def check(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        budget.allow(_int_arg(_arg(args, kwargs, position, name), 1), label)

    return check


def _check_sum(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    start = _arg(args, kwargs, 2, "start")
    if start is not None and not isinstance(start, int | float):
        # Summing lists or strings is quadratic; numbers are what |sum is for.
        raise TemplateError("|sum only adds numbers")


def _check_tojson(budget: _Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    indent = _arg(args, kwargs, 1, "indent")
    if isinstance(indent, int) and indent > _MAX_JSON_INDENT:
        raise TemplateError(f"|tojson indent is limited to {_MAX_JSON_INDENT}")
    if isinstance(indent, str) and len(indent) > _MAX_JSON_INDENT:
        raise TemplateError(f"|tojson indent is limited to {_MAX_JSON_INDENT}")


_FilterCheck = Callable[[_Budget, tuple[Any, ...], dict[str, Any]], None]
_FILTER_CHECKS: dict[str, _FilterCheck] = {
    "center": _check_center,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "replace": _check_replace,
    "format": _check_format,
    "join": _check_join,
    "batch": _check_count(1, "linecount", "|batch"),
    "slice": _check_count(1, "slices", "|slice"),
    "sum": _check_sum,
    "tojson": _check_tojson,
}
#: Filters and globals removed: ``random`` would make renders unrepeatable (a resumed step
#: must render the same input), ``lipsum`` generates text for free.
_REMOVED_FILTERS = ("random",)
_REMOVED_GLOBALS = ("lipsum",)


# -- the environment --------------------------------------------------------------------


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
    budget = _budget()
    for item in iterable:
        budget.tick()
        yield item


def _budget_concat(*parts: Any) -> str:
    budget = _budget()
    budget.check_time()
    size = sum(budget.weigh(part, "concatenated value") for part in parts)
    budget.allow(size, "concatenation")
    text = "".join(str(part) for part in parts)
    budget.spend(len(text))
    return text


def _budget_out(value: Any) -> Any:
    budget = _budget()
    budget.check_time()
    budget.spend(budget.weigh(value, "output value"))
    return value


class _SandboxEnvironment(ImmutableSandboxedEnvironment):
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
        self.budget_out = _budget_out
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.filters["jsonpath"] = jsonpath_filter
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

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
        budget = _budget()
        _guard_binop(budget, operator, left, right)
        result = super().call_binop(context, operator, left, right)
        if operator == "%" and isinstance(result, str):
            budget.allow(len(result), "% formatting")
        return result

    def call(
        __self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any
    ) -> Any:
        budget = _budget()
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
            budget = _budget()
            budget.check_time()
            _check_brace_format(str(fmt), budget)
            budget.weigh(args, "format arguments")
            budget.weigh(kwargs, "format arguments")
            result = wrapped(*args, **kwargs)
            budget.allow(len(result), "str.format")
            return result

        return checked


# -- jsonpath -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _compiled_jsonpath(path: str) -> Any:
    try:
        return _jsonpath_parse(path)
    except Exception as exc:  # jsonpath-ng raises several unrelated types on bad input
        raise TemplateError(f"bad jsonpath {path!r}: {exc}") from exc


def jsonpath_filter(value: Any, path: str) -> Any:
    """``{{ trigger | jsonpath('$.data.body') }}``: the single match, a list of several
    matches, or None when nothing matches."""
    if isinstance(value, jinja2.Undefined):
        return None
    matches = [match.value for match in _compiled_jsonpath(str(path)).find(value)]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else matches


# -- the renderer ---------------------------------------------------------------------------


def is_template(text: str) -> bool:
    """True if ``text`` contains Jinja markup (otherwise rendering returns it unchanged)."""
    return "{{" in text or "{%" in text or "{#" in text


class Renderer:
    """Compiles, caches and renders templates under a time and size budget."""

    def __init__(
        self, *, max_output: int = DEFAULT_MAX_OUTPUT, max_time_s: float = DEFAULT_MAX_TIME_S
    ) -> None:
        self.max_output = max_output
        self.max_time_s = max_time_s
        self._env = _SandboxEnvironment()
        self._templates: dict[str, jinja2.Template] = {}
        self._expressions: dict[str, Any] = {}

    @contextlib.contextmanager
    def budget(self) -> Iterator[None]:
        """Share one budget between all renders inside the block (one node's config)."""
        if _active.get() is not None:
            yield
            return
        token = _active.set(_new_budget(self.max_output, self.max_time_s))
        try:
            yield
        finally:
            _active.reset(token)

    def check(self, source: str) -> str | None:
        """The syntax problem of ``source`` as a message, or None if it compiles."""
        try:
            self._template(source)
        except TemplateError as exc:
            return str(exc)
        native = _SINGLE_EXPRESSION.match(source)
        if native and _is_single(native.group("expr")):
            try:
                self._expression(native.group("expr"))
            except TemplateError as exc:
                return str(exc)
        return None

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        """Render ``source`` to text."""
        if not is_template(source):
            return source
        template = self._template(source)
        with self.budget():
            budget = _budget()
            try:
                chunks: list[str] = []
                size = 0
                for chunk in template.generate(dict(context)):
                    size += len(chunk)
                    budget.allow(size, "template output")
                    chunks.append(chunk)
            except TemplateError:
                raise
            except RecursionError as exc:
                raise TemplateBudgetExceeded("template recursion is too deep") from exc
            except Exception as exc:
                raise TemplateError(f"template failed: {_describe(exc)}") from exc
            if size > self.max_output:
                raise TemplateBudgetExceeded(
                    f"template output is {size} characters; the limit is {self.max_output}"
                )
            return "".join(chunks)

    def render_native(self, source: str, context: Mapping[str, Any]) -> Any:
        """Render ``source``; a lone ``{{ expression }}`` keeps its type (number, list,
        object), anything else renders to text."""
        match = _SINGLE_EXPRESSION.match(source)
        if not match or not _is_single(match.group("expr")):
            return self.render(source, context)
        expression = self._expression(match.group("expr"))
        with self.budget():
            budget = _budget()
            try:
                value = expression(**dict(context))
            except TemplateError:
                raise
            except RecursionError as exc:
                raise TemplateBudgetExceeded("template recursion is too deep") from exc
            except Exception as exc:
                raise TemplateError(f"expression failed: {_describe(exc)}") from exc
            return _to_json_value(value, budget)

    def render_value(self, value: Any, context: Mapping[str, Any], *, native: bool) -> Any:
        """Render every string inside ``value`` (dicts and lists are walked; keys too)."""
        with self.budget():
            return self._render_value(value, context, native)

    def _render_value(self, value: Any, context: Mapping[str, Any], native: bool) -> Any:
        if isinstance(value, str):
            return self.render_native(value, context) if native else self.render(value, context)
        if isinstance(value, Mapping):
            return {
                self.render(str(k), context): self._render_value(v, context, native)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._render_value(item, context, native) for item in value]
        return value

    def _template(self, source: str) -> jinja2.Template:
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
            _remember(self._expressions, source, expression)
        return expression


def _is_single(expression: str) -> bool:
    return "{{" not in expression and "}}" not in expression and "{%" not in expression


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _to_json_value(value: Any, budget: _Budget) -> Any:
    """Turn a native render result into plain JSON data (Undefined becomes None)."""
    budget.weigh(value, "expression result")
    return _plain(value)


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
