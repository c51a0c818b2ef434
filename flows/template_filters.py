"""The filters a flow template may use: Jinja's own, each under the budget, plus ``jsonpath``.

Every filter is wrapped (:func:`guarded_filters`): the deadline is checked, each input is
weighed, and the filters that can amplify their input (``center``, ``indent``, ``join``,
``replace``, ``batch``…) have their result size checked before they run. ``random`` and
``lipsum`` are removed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jinja2
from jinja2 import nodes
from jsonpath_ng.ext.parser import parse as _jsonpath_parse  # ext: [?(@.x > 1)] filters

from flows.template_budget import (
    Budget,
    TemplateError,
    check_percent_format,
    current_budget,
    int_arg,
    replace_size,
    sized_len,
)

__all__ = ["REMOVED_GLOBALS", "guarded_filters", "jsonpath_filter"]

#: Cap on ``|tojson(indent=…)``: indentation multiplies the output size.
_MAX_JSON_INDENT = 16
#: Filters and globals removed: ``random`` would make renders unrepeatable (a resumed step
#: must render the same input), ``lipsum`` generates text for free.
_REMOVED_FILTERS = ("random",)
REMOVED_GLOBALS = ("lipsum",)


def guarded_filters(filters: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Jinja's filters minus the removed ones, plus ``jsonpath``, each wrapped in its guard."""
    kept = {name: f for name, f in filters.items() if name not in _REMOVED_FILTERS}
    kept["jsonpath"] = jsonpath_filter
    return {name: _guard_filter(name, f) for name, f in kept.items()}


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


# -- the guard ----------------------------------------------------------------------------


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Jinja filter with the deadline, an input-size check and its own limits."""
    check = _FILTER_CHECKS.get(name)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
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


# -- per-filter limits --------------------------------------------------------------------


def _check_center(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    budget.allow(int_arg(_arg(args, kwargs, 1, "width"), 80), "|center")


def _check_indent(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text = str(args[0]) if args else ""
    width = int_arg(_arg(args, kwargs, 1, "width"), 4)
    budget.allow(len(text) + width * (text.count("\n") + 1), "|indent")


def _check_wordwrap(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text = str(args[0]) if args else ""
    width = max(int_arg(_arg(args, kwargs, 1, "width"), 79), 1)
    wrap = _arg(args, kwargs, 3, "wrapstring")
    wrap_len = len(wrap) if isinstance(wrap, str) else 1
    budget.allow(len(text) + wrap_len * (len(text) // width + 1), "|wordwrap")


def _check_replace(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if len(args) < 3 and not {"old", "new"} <= kwargs.keys():
        return
    text = str(args[0])
    old = str(_arg(args, kwargs, 1, "old"))
    new = str(_arg(args, kwargs, 2, "new"))
    count = _arg(args, kwargs, 3, "count")
    budget.allow(
        replace_size(text, old, new, count if isinstance(count, int) else None), "|replace"
    )


def _check_format(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if args and isinstance(args[0], str):
        check_percent_format(args[0], budget)


def _check_join(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    sep = _arg(args, kwargs, 1, "d")
    sep_len = len(sep) if isinstance(sep, str) else 0
    items = args[0] if args else ()
    budget.allow(budget.weigh(items) + sep_len * sized_len(items), "|join")


def _check_count(position: int, name: str, label: str) -> _FilterCheck:
    def check(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        budget.allow(int_arg(_arg(args, kwargs, position, name), 1), label)

    return check


def _check_sum(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    start = _arg(args, kwargs, 2, "start")
    if start is not None and not isinstance(start, int | float):
        # Summing lists or strings is quadratic; numbers are what |sum is for.
        raise TemplateError("|sum only adds numbers")


def _check_tojson(budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    indent = _arg(args, kwargs, 1, "indent")
    if isinstance(indent, int) and indent > _MAX_JSON_INDENT:
        raise TemplateError(f"|tojson indent is limited to {_MAX_JSON_INDENT}")
    if isinstance(indent, str) and len(indent) > _MAX_JSON_INDENT:
        raise TemplateError(f"|tojson indent is limited to {_MAX_JSON_INDENT}")


_FilterCheck = Callable[[Budget, tuple[Any, ...], dict[str, Any]], None]
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
