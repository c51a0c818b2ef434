"""Sandboxed templates: context, jsonpath, native values, syntax checks, render budget."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flows import (
    Renderer,
    TemplateBudgetExceeded,
    TemplateError,
    check_template,
    render_template,
    render_value,
    template_context,
)

EVENT = {
    "id": "evt_1",
    "type": "sms.received",
    "data": {
        "message_id": "msg_1",
        "from": "+15550001234",
        "body": "JOIN news",
        "items": [{"n": 1}, {"n": 2}],
    },
}
CTX = template_context(
    trigger=EVENT,
    vars={"count": 3, "name": "Ann"},
    steps={"ask": {"body": "Yes"}},
    contact={"phone": "+15550001234", "tags": ["vip"], "fields": {"city": "Oslo"}},
    run={"id": "run_1"},
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("plain text", "plain text"),  # no markup: returned as is
        ("{{ trigger.data.body }}", "JOIN news"),  # the event
        ("{{ trigger.type }}", "sms.received"),
        ("{{ vars.name }} x{{ vars.count }}", "Ann x3"),  # variables
        ("{{ steps.ask.output.body | lower }}", "yes"),  # previous step outputs
        ("{{ contact.fields.city }} {{ contact.tags | join(',') }}", "Oslo vip"),
        ("{{ run.id }}", "run_1"),
        ("[{{ steps.missing.output.body }}]", "[]"),  # missing data is empty, not an error
        ("{{ trigger | jsonpath('$.data.body') }}", "JOIN news"),  # jsonpath: one match
        ("{{ trigger | jsonpath('$.data.items[*].n') }}", "[1, 2]"),  # several: a list
        ("{{ trigger | jsonpath('$.nope') }}", "None"),  # none: None
        ("{{ trigger | jsonpath('$.data.items[?(@.n > 1)].n') }}", "2"),  # ext filters
        ("{{ '%.1f' | format(2.25) }} {{ '{}-{}'.format(1, 2) }}", "2.2 1-2"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{{ 'a' * 3 }}{{ 2 ** 10 }}", "aaa1024"),
        ("{% set x = [1, 2] + [3] %}{{ x | sum }}", "6"),
    ],
)
def test_render(source: str, expected: str) -> None:
    assert render_template(source, CTX) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ vars.count + 1 }}", 4),  # a lone expression keeps its type
        ("{{ trigger.data }}", EVENT["data"]),  # objects stay objects
        ("{{ [1, 'a'] }}", [1, "a"]),
        ("{{ steps.nothing.output }}", None),  # undefined becomes None
        ("n={{ vars.count }}", "n=3"),  # anything else is text
        ("{{ 1 }} and {{ 2 }}", "1 and 2"),
        ("{{ 1.5 }}", 1.5),
        ("{{ (1, 2) }}", [1, 2]),  # tuples become lists (JSON)
    ],
)
def test_render_native(source: str, expected: Any) -> None:
    assert render_value(source, CTX, native=True) == expected


def test_render_value_walks_objects_and_keys() -> None:
    body = {
        "from": "{{ trigger.data.from }}",
        "n": 5,
        "list": ["{{ vars.count }}", True],
        "{{ vars.name }}": "key rendered",
    }
    assert render_value(body, CTX, native=True) == {
        "from": "+15550001234",
        "n": 5,
        "list": [3, True],
        "Ann": "key rendered",
    }
    assert render_value(body, CTX)["list"] == ["3", True]


@pytest.mark.parametrize(
    "source",
    [
        "{{ trigger.__class__ }}",  # dunder attributes
        "{{ trigger.data.body.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ [].append(1) }}",  # immutable sandbox: no mutation of data
        "{{ trigger.data.items.pop() }}",
        "{% include 'x' %}",  # no template loading
        "{{ lipsum(5) }}",  # removed global
    ],
)
def test_sandbox_blocks(source: str) -> None:
    with pytest.raises(TemplateError):
        render_template(source, CTX)


def test_random_filter_is_removed_for_repeatable_renders() -> None:
    assert check_template("{{ [1, 2] | random }}") is not None


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ x ", "line 1"),
        ("{% if %}", "line 1"),
        ("{{ x | nosuchfilter }}", "nosuchfilter"),
        ("{% for x in y %}", "endfor"),
        ("{{ 1 + }}", "line 1"),
    ],
)
def test_check_template_reports_syntax(source: str, fragment: str) -> None:
    message = check_template(source)
    assert message is not None and fragment in message


def test_check_template_accepts_good_templates() -> None:
    assert check_template("Hi {{ trigger.data.from }} {% if vars.x %}x{% endif %}") is None
    assert check_template("no markup at all") is None


def test_template_length_is_capped() -> None:
    assert check_template("{{ x }}" + "a" * 40_000) is not None


HOSTILE = [
    # String multiplication far beyond the budget.
    "{{ 'a' * 10**9 }}",
    # Huge powers would compute for minutes.
    "{{ 9 ** (9 ** 9) }}",
    "{{ (2 ** 60000) * (2 ** 60000) }}",
    # Nested loops: 10^10 iterations.
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    # Unbounded macro recursion.
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    # Exponential macro fan-out (2^40 calls), no loop involved.
    "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    # Recursive loops.
    "{% for x in range(10) recursive %}{{ loop(range(10)) }}{% endfor %}",
    # Filters and methods with size arguments.
    "{{ 'a' | center(10**9) }}",
    "{{ 'x' | indent(10**9) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ 'a\tb'.expandtabs(10**9) }}",
    "{{ [1] | batch(10**9, 'x') | list }}",
    "{{ [1] | slice(10**8, 'x') | list }}",
    "{{ ('a' * 60000) | replace('a', 'a' * 60000) }}",
    "{{ ('a' * 60000).replace('a', 'bb' * 30000) }}",
    "{{ ('a' * 60000) | wordwrap(1, wrapstring='b' * 60000) }}",
    "{{ {'a': 1} | tojson(indent=10**6) }}",
    # Format widths.
    "{{ '%999999999s' % 'x' }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ '{0:>{1}}'.format('x', 10**9) }}",
    "{{ '%999999999d' | format(1) }}",
    # Doubling a string (~) or a self-referencing structure until printing explodes.
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
    "{% endfor %}{{ ns.l }}",
    "{% set ns = namespace(d={}) %}{% for i in range(60) %}{% set ns.d = {'a': ns.d, 'b': ns.d} %}"
    "{% endfor %}{{ ns.d | tojson }}",
    # A macro buffering 6 GB of references before joining them.
    "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 60000 }}{% endfor %}{% endmacro %}"
    "{{ m() | length }}",
    "{{ ''.join(['a' * 60000] * 100) }}",
    "{{ range(100000) | join(',') }}",
    # Quadratic list sums.
    "{{ [[1] * 6000] * 6000 | sum(start=[]) }}",
    # Output bigger than the cap.
    "{% for i in range(2000) %}{{ 'y' * 100 }}{% endfor %}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_fail_fast(source: str) -> None:
    renderer = Renderer(max_output=64 * 1024, max_time_s=0.1)
    started = time.perf_counter()
    with pytest.raises(TemplateError):
        renderer.render(source, CTX)
    assert time.perf_counter() - started < 1.5


@pytest.mark.parametrize("source", HOSTILE[:8])
def test_hostile_expressions_fail_fast_in_native_mode(source: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateError):
        Renderer().render_native(source, CTX)
    assert time.perf_counter() - started < 1.5


def test_budget_errors_are_named() -> None:
    with pytest.raises(TemplateBudgetExceeded, match="budget"):
        render_template("{{ 'a' * 10**9 }}", CTX)
    with pytest.raises(TemplateBudgetExceeded, match="ms budget"):
        render_template(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", CTX
        )


def test_output_cap_is_configurable() -> None:
    small = Renderer(max_output=10)
    assert small.render("{{ 'a' * 10 }}", CTX) == "a" * 10
    with pytest.raises(TemplateBudgetExceeded):
        small.render("{{ 'a' * 11 }}", CTX)


def test_one_budget_covers_a_whole_object() -> None:
    renderer = Renderer(max_time_s=0.1)
    slow = "{% for a in range(100000) %}{% for b in range(30) %}{% endfor %}{% endfor %}"
    started = time.perf_counter()
    with pytest.raises(TemplateBudgetExceeded):
        renderer.render_value({f"k{i}": slow for i in range(20)}, CTX, native=False)
    assert time.perf_counter() - started < 1.0


def test_runtime_errors_become_template_errors() -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render_template("{{ 1 / 0 }}", CTX)
    with pytest.raises(TemplateError, match="jsonpath"):
        render_template("{{ trigger | jsonpath('$[') }}", CTX)


def test_reasonable_templates_render_quickly() -> None:
    source = "Hi {{ contact.fields.city }}, you said {{ trigger.data.body | upper }}"
    render_template(source, CTX)  # compile once
    started = time.perf_counter()
    for _ in range(200):
        render_template(source, CTX)
    assert time.perf_counter() - started < 0.5
