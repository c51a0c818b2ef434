"""The render budget: what one template render may spend, and what an operation would cost.

Every render (or every render of one node's config, see :func:`budget_scope`) runs under
one :class:`Budget`:

* **time** — a deadline checked on every loop iteration, call, filter, operator and output,
  in CPU time of the rendering thread: on a busy machine a render may wait for a core,
  and that wait is no template's doing (a wall-clock budget failed runs under load);
  nor is time the interpreter spends collecting garbage (a full collection of a big heap
  can take longer than the whole budget), which does not count either;
* **size** — the final output is capped (64 KiB by default), and so is the total text a
  render produces on the way (macro and ``{% set %}`` buffers included), and every single
  operation that can amplify data (``'a' * 10**9``, ``9 ** 9 ** 9``, ``|center(10**9)``,
  ``'%999999999s' % x``, self-referencing lists stringified) is checked *before* it runs.

The checks themselves are placed by :mod:`flows.template_sandbox` (operators, calls,
output) and :mod:`flows.template_filters` (filters); the size estimates they share are here.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import itertools
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2.utils import Namespace

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_MAX_TIME_S",
    "Budget",
    "TemplateBudgetExceeded",
    "TemplateError",
    "active_budget",
    "budget_scope",
    "check_percent_format",
    "current_budget",
    "int_arg",
    "replace_size",
    "sized_len",
]

#: Largest rendered output of one template, in characters.
DEFAULT_MAX_OUTPUT = 64 * 1024
#: Longest one render (or one node's whole config) may take, in seconds.
DEFAULT_MAX_TIME_S = 0.1
#: Text a render may produce in total (buffers included) as a multiple of the output cap,
#: so a template may build text and then trim it, but not build gigabytes.
_WORK_FACTOR = 8
#: How many loop iterations pass between deadline checks.
_TICK_MASK = 15

_PERCENT_SPEC = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(?P<width>\*|\d*)(?:\.(?P<precision>\*|\d*))?[hlL]?[a-zA-Z%]"
)


class TemplateError(Exception):
    """A template failed to compile or to render; the message says where and why."""


class TemplateBudgetExceeded(TemplateError):
    """A template ran over its time or size budget."""


@dataclass
class Budget:
    """What the render in progress may still spend."""

    deadline: float
    max_time_s: float
    max_output: int
    max_work: int
    produced: int = 0
    ticks: int = 0
    #: Seconds the interpreter had spent collecting garbage when the budget began.
    collected: float = 0.0
    #: ``time.perf_counter()`` at which the budget could first be spent.
    wall_deadline: float = 0.0

    def check_time(self) -> None:
        """Raise once the deadline has passed (garbage collections push it back)."""
        if time.perf_counter() <= self.wall_deadline:
            # A thread's CPU time never runs ahead of the wall clock, and the wall clock is
            # a vDSO read where the thread's CPU clock is a system call: look at it only
            # once the wall clock says the budget could be spent.
            return
        now = time.thread_time()
        if now > self.deadline and now - (_collections[0] - self.collected) > self.deadline:
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
        if type(value) is str:  # the usual case, as _weight would count it
            size = len(value) + 3
            if size > self.max_work:
                raise TemplateBudgetExceeded(
                    f"{what} is too large (over {self.max_work} characters when printed)"
                )
            return size
        return _weight(value, self.max_work, what)


#: [seconds spent in garbage collections so far, when the current collection started].
_collections = [0.0, 0.0]


def _time_collections(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _collections[1] = time.thread_time()
    else:
        _collections[0] += time.thread_time() - _collections[1]


gc.callbacks.append(_time_collections)

_active: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "flows_template_budget", default=None
)


def active_budget() -> Budget | None:
    """The budget of the render in progress, or None outside any render."""
    return _active.get()


def current_budget() -> Budget:
    """The budget of the render in progress (a fresh default one outside any render)."""
    budget = _active.get()
    if budget is None:
        # Outside a render (e.g. a helper called directly): apply the default budget.
        return _new_budget(DEFAULT_MAX_OUTPUT, DEFAULT_MAX_TIME_S)
    return budget


def budget_scope(max_output: int, max_time_s: float) -> contextlib.AbstractContextManager[None]:
    """Share one budget between all renders inside the block; a nested block joins it.

    Whether it joins one is decided when it is called: use it in a ``with`` at once."""
    if _active.get() is not None:
        return _JOINED
    return _Scope(max_output, max_time_s)


_JOINED: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


class _Scope:
    """The context manager of :func:`budget_scope` (a class: renders enter it often)."""

    __slots__ = ("_token", "max_output", "max_time_s")

    def __init__(self, max_output: int, max_time_s: float) -> None:
        self.max_output = max_output
        self.max_time_s = max_time_s
        self._token: contextvars.Token[Budget | None] | None = None

    def __enter__(self) -> None:
        if _active.get() is None:
            self._token = _active.set(_new_budget(self.max_output, self.max_time_s))

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _active.reset(self._token)
            self._token = None


def _new_budget(max_output: int, max_time_s: float) -> Budget:
    return Budget(
        deadline=time.thread_time() + max_time_s,
        wall_deadline=time.perf_counter() + max_time_s,
        collected=_collections[0],
        max_time_s=max_time_s,
        max_output=max_output,
        max_work=max_output * _WORK_FACTOR,
    )


# -- size estimates -----------------------------------------------------------------------


def _weight(value: Any, cap: int, what: str) -> int:
    """Estimate the printed size of ``value``, walking shared references as often as
    ``str()`` would, but never more than ``cap`` units (so a self-doubling list costs
    at most ``cap`` steps to reject)."""
    total = 0
    stack = [value]
    while stack:
        cost, children = _cost(stack.pop())
        total += cost
        if total > cap:
            raise TemplateBudgetExceeded(
                f"{what} is too large (over {cap} characters when printed)"
            )
        # Lazy: the children of an oversized container are never enumerated.
        stack.extend(children)
    return total


def _cost(item: Any) -> tuple[int, Iterable[Any]]:
    """The printed size of ``item`` itself, and the values printed inside it."""
    if isinstance(item, str | bytes | bytearray):
        return len(item) + 3, ()
    if isinstance(item, bool) or item is None:
        return 5, ()
    if isinstance(item, int):
        return item.bit_length() // 3 + 2, ()
    if isinstance(item, float | range):
        return 24, ()
    if isinstance(item, Mapping):
        return 2 + 4 * len(item), itertools.chain(item.keys(), item.values())
    if isinstance(item, list | tuple | set | frozenset):
        return 2 + 2 * len(item), item
    if isinstance(item, Namespace):
        return 16, (object.__getattribute__(item, "_Namespace__attrs"),)
    return 32, ()


def replace_size(text: str, old: str, new: str, count: int | None) -> int:
    """Length of ``text.replace(old, new, count)``, computed without replacing."""
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * max(len(new) - len(old), 0)


def int_arg(value: Any, default: int = 0) -> int:
    """A width or count argument as the size it asks for (strings count their length)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return len(value)
    return default


def sized_len(items: Any) -> int:
    """``len(items)``, or 0 for iterables without a length."""
    try:
        return len(items)
    except TypeError:
        return 0


def check_percent_format(fmt: str, budget: Budget) -> None:
    """Refuse ``%`` formatting whose widths or precisions would blow the budget."""
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in (match.group("width"), match.group("precision")):
            if part == "*":
                raise TemplateError("'*' widths are not allowed in % formatting")
            if part and int(part) > budget.max_output:
                budget.allow(int(part), "a % format width")
