"""The engine's shortcuts give what the long way gives: one-lookup templates (against Jinja,
on many inputs), cached node configs, ``to_dict`` without deep copies, the in-memory
store's cheap copies (still isolating)."""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import field_validator

from flows import Renderer, Run, Step, TemplateError, Wait
from flows.memory import DEFAULT_START, InMemoryRunStore, copy_record
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec, text_template
from flows.template_budget import current_budget
from flows.template_lookup import ExpressionLookup, TextLookup
from flows.testing import FlowHarness
from tests.unit.test_flows_executor import PHONE, chain, keyword, node

# -- one dotted lookup, without Jinja -------------------------------------------------------

#: Names that are dict attributes, private, Jinja constants or globals, or plain keys.
NAMES = ["trigger", "data", "body", "a", "items", "keys", "get", "_x", "__class__", "none"]
NAMES += ["true", "upper", "output", "range", "dict", "namespace", "missing", "steps"]
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keyed = st.dictionaries(st.sampled_from(NAMES), children, max_size=4)
    return st.one_of(
        st.lists(children, max_size=3),
        keyed,
        keyed.map(OrderedDict),  # a dict subclass: Jinja's getattr decides
        keyed.map(MappingProxyType),  # a mapping that is no dict
        st.tuples(children),
    )


VALUES = st.recursive(LEAVES, _containers, max_leaves=10)
CONTEXTS = st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=6)
PATHS = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map(".".join)
SHAPES = st.sampled_from(["{{ %s }}", "{{%s}}", "{{- %s -}}", "  {{ %s }} ", "{{ %s }}\n"])
FAST = Renderer()
SLOW = Renderer(fast_lookups=False)
SMALL_FAST = Renderer(max_output=40)
SMALL_SLOW = Renderer(max_output=40, fast_lookups=False)


def outcome(render: Callable[[], Any]) -> tuple[Any, ...]:
    """What a render gave (by repr, so 1, 1.0 and True differ) and what it spent."""
    with FAST.budget():
        try:
            value: tuple[Any, ...] = ("value", repr(render()))
        except TemplateError as exc:
            value = ("error", type(exc).__name__, str(exc))
        return (*value, current_budget().produced)


@settings(max_examples=400, deadline=None)
@given(context=CONTEXTS, path=PATHS, shape=SHAPES, small=st.booleans())
def test_a_lookup_renders_as_jinja_renders_it(
    context: dict[str, Any], path: str, shape: str, small: bool
) -> None:
    source = shape % path
    fast, slow = (SMALL_FAST, SMALL_SLOW) if small else (FAST, SLOW)
    assert outcome(lambda: fast.render(source, context)) == outcome(
        lambda: slow.render(source, context)
    )
    assert outcome(lambda: fast.render_native(source, context)) == outcome(
        lambda: slow.render_native(source, context)
    )


@pytest.mark.parametrize(
    ("source", "native", "text"),
    [
        ("{{ trigger.data.body }}", "JOIN news", "JOIN news"),
        ("{{ trigger.data.count }}", 3, "3"),
        ("{{ trigger.data.none }}", None, "None"),  # None prints as Jinja prints it
        ("{{ trigger.data.missing }}", None, ""),  # missing: empty text, None natively
        ("{{ steps.missing.output.body }}", None, ""),  # missing on the way, too
        ("{{ trigger.data.nested }}", {"a": [1, 2]}, "{'a': [1, 2]}"),
        ("{{ trigger.data.items }}", None, None),  # a dict attribute: Jinja answers
    ],
)
def test_lookups_take_the_fast_path_with_jinjas_results(
    source: str, native: Any, text: str | None
) -> None:
    context = {
        "trigger": {
            "data": {"body": "JOIN news", "count": 3, "none": None, "nested": {"a": [1, 2]}}
        },
        "steps": {},
    }
    renderer = Renderer()
    assert isinstance(renderer._template(source), TextLookup)
    assert isinstance(renderer._expression(source.strip()[2:-2]), ExpressionLookup)
    for r in (renderer, SLOW):
        if text is not None:
            assert r.render(source, context) == text
            assert r.render_native(source, context) == native
        else:  # the bound method: same text either way
            assert renderer.render(source, context) == SLOW.render(source, context)


def test_a_lookup_is_still_under_the_budget() -> None:
    renderer = Renderer(max_output=10)
    context = {"trigger": {"data": {"body": "x" * 1000}}}
    with pytest.raises(TemplateError, match="too large"):
        renderer.render("{{ trigger.data.body }}", context)
    with pytest.raises(TemplateError, match="too large"):
        renderer.render_native("{{ trigger.data.body }}", context)


def test_templates_that_are_more_than_a_lookup_stay_with_jinja() -> None:
    renderer = Renderer()
    for source in (
        "{{ a.b | upper }}",
        "x {{ a.b }}",
        "{{ a['b'] }}",
        "{{ none.x }}",
        "{{ a.b() }}",
    ):
        assert not isinstance(renderer._template(source), TextLookup), source


# -- cached node configs --------------------------------------------------------------------


VALIDATIONS: list[str] = []


class CountedConfig(NodeConfig):
    text: str = text_template("", description="A template.")
    fixed: str = text_template("plain", description="Never a template here.")

    @field_validator("text")
    @classmethod
    def _count(cls, value: str) -> str:
        VALIDATIONS.append(value)
        return value


async def _counted(config: CountedConfig, ctx: NodeContext) -> NodeResult:
    return NodeResult(output={"text": config.text, "fixed": config.fixed})


COUNTED = NodeSpec(
    type="test.counted",
    title="Counted",
    description="Counts its config validations.",
    category="data",
    config_model=CountedConfig,
    handler=_counted,
)


@pytest.mark.parametrize(("text", "per_run"), [("static", 0), ("{{ trigger.data.body }}", 1)])
async def test_a_node_config_is_validated_once_and_again_only_if_rendered(
    monkeypatch: pytest.MonkeyPatch, text: str, per_run: int
) -> None:
    from flows import registry

    registry.get_spec("sms.reply")  # the built-ins are loaded
    monkeypatch.setitem(registry._registry, "test.counted", COUNTED)
    VALIDATIONS.clear()
    h = FlowHarness()
    version = h.flows.publish("f", chain(keyword("HI"), node("c", "test.counted", text=text)))
    for i in range(3):
        event = {"id": f"e{i}", "type": "sms.received", "data": {"from": PHONE, "body": "hi"}}
        run = await h.executor.start_run("f", version, event)
        assert run.outputs["c"] == {"text": "static" if per_run == 0 else "hi", "fixed": "plain"}
    # once from the document, once from its dump (when first cached), then per_run per run
    assert len(VALIDATIONS) == 2 + 3 * per_run, VALIDATIONS
    static = h.executor._configs._entries[("f", version, "c")]
    assert static.templates == (() if per_run == 0 else (("text", False),))


# -- records --------------------------------------------------------------------------------


def _old_to_dict(record: Run | Step | Wait) -> dict[str, Any]:
    """What to_dict gave before: a deep asdict, datetimes as ISO 8601."""
    data = dataclasses.asdict(record)
    for name, value in data.items():
        if hasattr(value, "isoformat"):
            data[name] = value.isoformat()
    if isinstance(record, Run) and record.wait is not None:
        data["wait"] = _old_to_dict(record.wait)
    if isinstance(record, Step) and not record.redacted:
        del data["redacted"]  # added later: left out unless the flow's settings stripped data
    return data


async def waiting_run() -> tuple[FlowHarness, Run]:
    h = FlowHarness()
    h.publish(
        chain(
            keyword("ASK"),
            node("set", "data.set", vars={"n": "{{ 1 }}", "l": "{{ [1, {'a': 2}] }}"}),
            node("ask", "sms.wait_for_reply", text="yes?"),
        )
    )
    await h.inbound("ask", from_=PHONE)
    return h, h.runs()[0]


async def test_to_dict_gives_what_asdict_gave_and_shares_no_container_the_engine_changes() -> None:
    h, run = await waiting_run()
    assert run.wait is not None
    data = run.to_dict()
    assert data == _old_to_dict(run) and set(data) == {f.name for f in dataclasses.fields(Run)}
    assert Run.from_dict(json.loads(json.dumps(data))) == run
    for step in await h.steps(run.id):
        assert step.to_dict() == _old_to_dict(step) and Step.from_dict(step.to_dict()) == step
    assert run.wait.to_dict() == _old_to_dict(run.wait)
    before = json.dumps(data, sort_keys=True)
    run.vars["x"] = 1
    run.outputs["x"] = {}
    run.visits["x"] = 1
    run.seen_events.append("e")
    assert json.dumps(data, sort_keys=True) == before


def a_step(run_id: str, **values: Any) -> Step:
    return Step(
        run_id=run_id,
        seq=0,
        node_id="a",
        node_type="t",
        attempt=1,
        visit=1,
        idempotency_key="k",
        status="running",
        started_at=DEFAULT_START,
        **values,
    )


async def test_the_memory_store_shares_nothing_with_its_callers() -> None:
    _, run = await waiting_run()
    store = InMemoryRunStore()
    step = a_step(run.id, input={"list": [{"deep": 1}]})
    fresh = copy_record(run)
    fresh.revision = 0
    await store.create_run(fresh, [step])
    reference = copy_record(fresh)
    # The caller changes what it gave...
    fresh.vars["l"][1]["a"] = 99
    fresh.trigger["data"]["body"] = "changed"
    assert fresh.wait is not None
    fresh.wait.token = "changed"
    assert step.input is not None
    step.input["list"][0]["deep"] = 2
    # ... and what it got.
    got = await store.get_run(run.id)
    assert got is not None and got == reference
    got.outputs["ask"]["waiting_for"] = "changed"
    got_step = await store.get_step(run.id, 0)
    assert got_step is not None and got_step.input == {"list": [{"deep": 1}]}
    got_step.input["list"].append(3)
    assert await store.get_run(run.id) == reference
    assert (await store.list_steps(run.id))[0].input == {"list": [{"deep": 1}]}
    waiting = await store.find_waiting_run(PHONE, None)
    assert waiting == reference and waiting is not store.runs[run.id]


async def test_the_memory_store_finds_waiting_runs_by_phone_as_they_change() -> None:
    h, run = await waiting_run()
    assert (await h.store.find_waiting_run("+1 555-000-1234", "ch_test")) == run
    assert (await h.store.find_waiting_run(PHONE, "ch_other")) is None
    h.clock.advance(1)
    await h.executor.cancel(run.id)
    assert (await h.store.find_waiting_run(PHONE, None)) is None
    assert isinstance(h.store.runs[run.id].created_at + timedelta(0), type(DEFAULT_START))


def test_copy_record_copies_unusual_values_deeply() -> None:
    value: Mapping[str, Any] = {"t": ([1],), "s": {1, 2}}
    step = a_step("r", output=dict(value))
    clone = copy_record(step)
    assert clone == step and clone.output is not None and step.output is not None
    assert clone.output["t"][0] is not step.output["t"][0]
    assert clone.output["s"] is not step.output["s"]


# -- the time budget and garbage collection ---------------------------------------------------


def _spin(seconds: float) -> None:
    """Burn this thread's CPU for ``seconds`` (the budget counts CPU time, not sleep)."""
    import time

    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_time_spent_collecting_garbage_is_not_a_templates() -> None:
    from flows.template_budget import TemplateBudgetExceeded, _time_collections, budget_scope

    with budget_scope(1000, 0.05):
        budget = current_budget()
        _time_collections("start", {})
        _spin(0.08)  # a long collection: the deadline moves with it
        _time_collections("stop", {})
        budget.check_time()
        _spin(0.06)  # the template's own time runs out
        with pytest.raises(TemplateBudgetExceeded):
            budget.check_time()


def test_waiting_for_a_core_is_not_a_templates_time() -> None:
    """Time the rendering thread does not run (the machine is busy) does not count."""
    import time

    from flows.template_budget import budget_scope

    with budget_scope(1000, 0.05):
        budget = current_budget()
        time.sleep(0.08)  # as if preempted: no CPU spent by this thread
        budget.check_time()


# -- what the engine builds by hand is what the slow way builds -------------------------------


async def test_the_engines_contexts_are_the_documented_ones() -> None:
    from flows import ContactView, get_spec, template_context
    from flows.events import bare_contact
    from flows.registry import fast_node_context
    from flows.runbook import Walk

    h, run = await waiting_run()
    walk = Walk(run)
    documented = template_context(
        trigger=run.trigger,
        vars=run.vars,
        steps=run.outputs,
        contact=run.contact,
        run={
            "id": run.id,
            "flow_id": run.flow_id,
            "version": run.flow_version,
            "started_at": run.created_at.isoformat(),
        },
    )
    reply, http = get_spec("sms.reply"), get_spec("http.request")
    assert reply is not None and http is not None
    assert h.executor._template_context(walk, reply) == documented
    # A node type that allows secrets also sees this run's ``secrets``.
    with_secrets = h.executor._template_context(walk, http)
    refs = with_secrets.pop("secrets")
    assert with_secrets == documented
    assert refs["ZAP_TOKEN"] == h.executor.secret_tokens.placeholder(run.id, "ZAP_TOKEN")
    step = (await h.steps(run.id))[-1]
    made = h.executor._context(walk, step)
    fields = {f.name: getattr(made, f.name) for f in dataclasses.fields(NodeContext)}
    assert made == NodeContext(**fields) and vars(made) == fields
    assert fast_node_context(**fields) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.attempt = 2  # type: ignore[misc]
    assert bare_contact(PHONE) == ContactView(phone=PHONE).to_dict()
