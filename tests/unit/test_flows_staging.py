"""Staging: pure steps are saved with the next durable point (before an effect, a wait, the
end), so a run makes few store writes; a crash right before or after any of them loses no
outcome an effect depended on, sends no SMS twice, and the run completes on resume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from bench.engine import FLOW as KEYWORD_FLOW
from flows import HttpCommand, HttpOutcome, Run, Step
from flows.memory import HttpCall, InMemoryRunStore
from flows.testing import FlowHarness
from tests.unit.test_flows_executor import (
    HOOK,
    PHONE,
    CrashingEffects,
    CrashingScheduler,
    CrashingStore,
    Faults,
    SimulatedCrash,
    as_a_job,
    chain,
    crash_everywhere,
    crashing_harness,
    edge,
    flow,
    keyword,
    node,
    texts,
)

Write = tuple[str, str, list[tuple[str, str, bool]]]


class RecordingStore(InMemoryRunStore):
    """Remembers every write: (create/save, run status, [(node, step status, has input)])."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[Write] = []

    async def create_run(self, run: Run, steps: Sequence[Step]) -> None:
        self.writes.append(("create", run.status, _shape(steps)))
        await super().create_run(run, steps)

    async def save_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        self.writes.append(("save", run.status, _shape(steps)))
        await super().save_run(run, steps)


def _shape(steps: Sequence[Step]) -> list[tuple[str, str, bool]]:
    return [(s.node_id, s.status, s.input is not None) for s in steps]


def recording_harness(document: dict[str, Any]) -> tuple[FlowHarness, RecordingStore]:
    h = FlowHarness()
    store = RecordingStore()
    h.store = h.executor.store = store
    h.publish(document)
    return h, store


# -- how many writes, and what each holds ------------------------------------------------


async def test_a_matching_keyword_run_makes_three_writes() -> None:
    h, store = recording_harness(KEYWORD_FLOW)
    await h.inbound("JOIN news", from_=PHONE)
    assert store.writes == [
        # the trigger step and the HTTP step's intent, before the request
        ("create", "running", [("start", "succeeded", True), ("zap", "running", True)]),
        # the HTTP outcome, the condition, and the reply's intent, before the SMS
        (
            "save",
            "running",
            [("zap", "succeeded", True), ("check", "succeeded", True), ("reply", "running", True)],
        ),
        # the SMS outcome and the end of the run
        ("save", "completed", [("reply", "succeeded", True)]),
    ]
    assert texts(h) == ["Welcome! Reply STOP to opt out."]
    assert len(store.writes) <= 4


async def test_a_keyword_run_that_does_not_match_makes_two_writes() -> None:
    h, store = recording_harness(KEYWORD_FLOW)
    await h.inbound("hello there", from_=PHONE)
    assert store.writes == [
        ("create", "running", [("start", "succeeded", True), ("zap", "running", True)]),
        ("save", "completed", [("zap", "succeeded", True), ("check", "succeeded", True)]),
    ]
    assert texts(h) == [] and len(h.effects.http) == 1
    assert len(store.writes) <= 3


async def test_a_run_of_pure_steps_is_stored_once_when_it_ends() -> None:
    h, store = recording_harness(
        chain(keyword("HI"), node("set", "data.set", vars={"n": "{{ 1 + 1 }}"}))
    )
    await h.inbound("hi", from_=PHONE)
    assert store.writes == [
        ("create", "completed", [("start", "succeeded", True), ("set", "succeeded", True)])
    ]
    run = h.runs()[0]
    assert run.vars == {"n": 2} and run.revision == 0


async def test_a_wait_is_saved_before_its_timer_and_the_reply_with_what_follows() -> None:
    h, store = recording_harness(
        flow(
            keyword("GO"),
            node("pause", "flow.delay", seconds=60),
            node("set", "data.set", vars={"x": "1"}),
            node("hi", "sms.reply", text="hi"),
            edges=[edge("start", "pause"), edge("pause", "set"), edge("set", "hi")],
        )
    )
    await h.inbound("go", from_=PHONE)
    assert store.writes == [
        ("create", "waiting", [("start", "succeeded", True), ("pause", "waiting", True)])
    ]
    assert len(h.scheduler.timers) == 1
    await h.advance_time(60)
    # leaving the wait and the pure step are saved with the reply's intent
    assert store.writes[1] == (
        "save",
        "running",
        [("pause", "succeeded", True), ("set", "succeeded", True), ("hi", "running", True)],
    )
    assert len(store.writes) == 3 and texts(h) == ["hi"]


async def test_start_run_without_advance_stores_the_run_at_once() -> None:
    h, store = recording_harness(KEYWORD_FLOW)
    event = {"id": "e1", "type": "sms.received", "data": {"from": PHONE, "body": "join"}}
    run = await h.executor.start_run("kw", 1, event, advance=False)
    assert store.writes == [("create", "running", [("start", "running", False)])]
    assert (await h.executor.advance(run.id)).status == "completed"


# -- a new run's id already exists: drop the walk, continue the stored run --------------------


async def test_a_run_whose_id_exists_continues_the_stored_one() -> None:
    h, faults = crashing_harness(None)
    event = {
        "id": "evt_go",
        "type": "sms.received",
        "data": {"from": PHONE, "body": "go", "channel_id": "ch_test"},
    }
    faults.crash_at = 2  # 0 before create, 1 after create, 2 before the first SMS
    with pytest.raises(SimulatedCrash):
        await h.dispatch(event)
    stored = h.runs()[0]
    assert [s.node_id for s in await h.steps(stored.id)] == ["start", "hello"]
    mark = len(faults.points)
    await h.dispatch(event)  # the dispatch job runs again: same deterministic run id
    # Its walk reached the same first durable point, found the run stored, and went on there.
    assert faults.points[mark : mark + 2] == ["before create_run", "before send_sms hello"]
    assert len(h.runs()) == 1 and texts(h) == ["hello"]
    steps = await h.steps(stored.id)
    assert [s.node_id for s in steps] == ["start", "hello", "hook", "tag", "pause"]
    assert [s.seq for s in steps] == [0, 1, 2, 3, 4]


# -- crash right before and right after every durable point -----------------------------------


class CountingHook(CrashingEffects):
    """Answers every request with a new code: a repeated request gets a different answer,
    so an SMS built from a lost outcome would show it."""

    async def http_request(self, command: HttpCommand) -> HttpOutcome:
        self.faults.point("before http_request")
        outcome = HttpOutcome(status=200, body=json.dumps({"code": f"c{len(self.http) + 1}"}))
        self.http.append(HttpCall(command=command, outcome=outcome, at=self.clock.now()))
        self.faults.point("after http_request")
        return outcome


DEPENDENT_FLOW = flow(
    keyword("GO"),
    node("zap", "http.request", url=HOOK, body={"from": "{{ trigger.data.from }}"}),
    node("remember", "data.set", vars={"code": "{{ steps.zap.output.json.code }}"}),
    node("check", "logic.condition", value="{{ vars.code }}", operator="is_empty"),
    node("reply", "sms.reply", text="Your code is {{ vars.code }}"),
    node("tag", "data.set", vars={"done": "yes"}),
    edges=[
        edge("start", "zap"),
        edge("zap", "remember", "success"),
        edge("remember", "check"),
        edge("check", "reply", "false"),
        edge("reply", "tag"),
    ],
    name="dependent",
)


async def dependent_scenario(crash_at: int | None) -> tuple[FlowHarness, Faults]:
    h = FlowHarness()
    faults = Faults(crash_at)
    h.store = h.executor.store = CrashingStore(faults)
    h.scheduler = h.executor.scheduler = CrashingScheduler(faults)
    h.effects = h.executor.effects = CountingHook(faults, h.clock, log=h.log)
    h.publish(DEPENDENT_FLOW, "dependent")
    go = {
        "id": "evt_go",
        "type": "sms.received",
        "data": {"message_id": "m1", "from": PHONE, "body": "go", "channel_id": "ch_test"},
    }
    await as_a_job(h, lambda: h.dispatch(go))
    return h, faults


async def test_crash_before_or_after_any_durable_point_keeps_what_effects_depended_on() -> None:
    _, clean = await dependent_scenario(None)
    assert clean.points == [
        "before create_run",  # (a) the trigger and the request's intent
        "after create_run",
        "before http_request",
        "after http_request",
        "before save_run",  # (a) the response, data.set, condition, the SMS's intent
        "after save_run",
        "before send_sms Your code is c1",
        "after send_sms Your code is c1",
        "before save_run",  # (c) the SMS outcome, data.set, the end
        "after save_run",
    ]

    async def check(h: FlowHarness, run: Run, faults: Faults) -> list[str]:
        steps = {s.node_id: s for s in await h.steps(run.id)}
        if list(steps) != ["start", "zap", "remember", "check", "reply", "tag"]:
            return [f"steps {list(steps)}"]
        code = (steps["zap"].output or {})["json"]["code"]
        problems: list[str] = []
        # The SMS was built from the stored outcome of the request, and went out once.
        if texts(h) != [f"Your code is {code}"] or run.vars != {"code": code, "done": "yes"}:
            problems.append(f"sent {texts(h)} with stored code {code}")
        http_keys = {c.command.idempotency_key for c in h.effects.http}
        if http_keys != {f"{run.id}:zap"}:
            problems.append(f"http keys {http_keys}")
        return problems

    failures = await crash_everywhere(dependent_scenario, check)
    assert not failures, "\n".join(failures)


async def test_a_long_pure_loop_is_one_save_and_lets_other_tasks_run() -> None:
    import asyncio

    h, store = recording_harness(
        flow(
            keyword("LOOP"),
            node("count", "data.set", vars={"n": "{{ (vars.n or 0) + 1 }}"}),
            node("more", "logic.condition", value="{{ vars.n }}", operator="lt", operand="200"),
            edges=[edge("start", "count"), edge("count", "more"), edge("more", "count", "true")],
        )
    )
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(ticker())
    await h.inbound("loop", from_=PHONE)
    other.cancel()
    run = h.runs()[0]
    assert run.status == "completed" and run.vars == {"n": 200} and run.step_count == 401
    assert len(store.writes) == 1 and len(store.writes[0][2]) == 401
    assert ticks > 5  # the event loop was not held for the whole walk
