"""The durable executor: steps, waits, timers, retries, error port, limits, replay, cancel,
version pinning, concurrency and crash-resume at every point."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from flows import (
    ContactView,
    FlowNotFoundError,
    ReplayError,
    Run,
    RunNotFoundError,
    SmsCommand,
    SmsOutcome,
    StaleRunError,
    Step,
)
from flows.memory import FakeEffects, InMemoryRunStore, InMemoryScheduler
from flows.testing import FlowHarness

PHONE = "+15550001234"


def node(
    node_id: str, node_type: str, retry: dict[str, Any] | None = None, **config: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {"id": node_id, "type": node_type, "config": config}
    if retry:
        data["retry"] = retry
    return data


def edge(source: str, target: str, port: str = "next") -> dict[str, Any]:
    return {"from": source, "port": port, "to": target}


def flow(*nodes: dict[str, Any], edges: list[dict[str, Any]], name: str = "f") -> dict[str, Any]:
    return {"name": name, "nodes": list(nodes), "edges": edges}


def keyword(word: str) -> dict[str, Any]:
    return node("start", "trigger.sms_received", match="first_word", keywords=[word])


def chain(*nodes: dict[str, Any], name: str = "f") -> dict[str, Any]:
    """Nodes connected one after the other by their `next` port."""
    return flow(
        *nodes,
        name=name,
        edges=[edge(a["id"], b["id"]) for a, b in itertools.pairwise(nodes)],
    )


def texts(h: FlowHarness) -> list[str]:
    return [s.command.text for s in h.effects.sms]


async def only_run(h: FlowHarness) -> Run:
    runs = h.runs()
    assert len(runs) == 1, runs
    return runs[0]


# -- walking a flow ---------------------------------------------------------------------


async def test_run_walks_the_graph_and_records_every_step() -> None:
    h = FlowHarness()
    h.publish(
        chain(
            keyword("JOIN"),
            node(
                "remember",
                "data.set",
                vars={"list": "{{ steps.start.output.rest | lower }}", "n": "{{ 1 + 1 }}"},
            ),
            node("welcome", "sms.reply", text="Welcome to {{ vars.list }} ({{ vars.n }})"),
        ),
        "join",
    )
    await h.inbound("JOIN News", from_=PHONE)
    run = await only_run(h)
    assert run.status == "completed" and run.finished_at is not None
    assert run.vars == {"list": "news", "n": 2}
    assert texts(h) == ["Welcome to news (2)"]
    steps = await h.steps(run.id)
    assert [(s.seq, s.node_id, s.status, s.port, s.attempt) for s in steps] == [
        (0, "start", "succeeded", "next", 1),
        (1, "remember", "succeeded", "next", 1),
        (2, "welcome", "succeeded", "next", 1),
    ]
    welcome = steps[2]
    assert welcome.input == {"text": "Welcome to news (2)"}
    assert welcome.output is not None and welcome.output["message_id"] == "msg_out_1"
    assert welcome.idempotency_key == f"{run.id}:welcome"
    assert welcome.started_at <= (welcome.finished_at or welcome.started_at)
    assert steps[0].output is not None and steps[0].output["keyword"] == "JOIN"


async def test_reply_goes_to_the_same_channel_device_and_sim() -> None:
    h = FlowHarness()
    h.publish(chain(keyword("HI"), node("r", "sms.reply", text="hello")))
    await h.inbound("hi", from_=PHONE, channel_id="ch_b", sim_slot=1, device_id="dev_9")
    command = h.effects.sms[0].command
    assert (command.to, command.channel_id, command.device_id, command.sim_slot) == (
        PHONE,
        "ch_b",
        "dev_9",
        1,
    )
    assert command.reply_to is not None and command.reply_to.message_id == "msg_in_1"


async def test_start_run_is_idempotent_per_run_id() -> None:
    h = FlowHarness()
    fid, version = h.publish(chain(keyword("HI"), node("r", "sms.reply", text="hello")))
    event = {"id": "e1", "type": "sms.received", "data": {"from": PHONE, "body": "hi"}}
    first = await h.executor.start_run(fid, version, event, run_id="run_x")
    again = await h.executor.start_run(fid, version, event, run_id="run_x")
    assert first.id == again.id == "run_x" and again.status == "completed"
    assert texts(h) == ["hello"]


async def test_dispatching_the_same_event_twice_starts_one_run() -> None:
    h = FlowHarness()
    h.publish(chain(keyword("HI"), node("r", "sms.reply", text="hello")))
    event = {
        "id": "evt_same",
        "type": "sms.received",
        "data": {"from": PHONE, "body": "hi", "channel_id": "ch_test"},
    }
    await h.dispatch(event)
    await h.dispatch(event)
    assert len(h.runs()) == 1 and texts(h) == ["hello"]


async def test_suppressed_sends_are_recorded_and_the_run_goes_on() -> None:
    h = FlowHarness()
    h.publish(
        chain(
            keyword("HI"),
            node("r", "sms.reply", text="hello"),
            node("after", "data.set", vars={"went_on": "yes"}),
        )
    )
    h.effects.opt_out(PHONE)
    await h.inbound("hi", from_=PHONE)
    run = await only_run(h)
    assert run.status == "completed" and run.vars == {"went_on": "yes"}
    output = run.outputs["r"]
    assert output["suppressed"] is True and output["reason"] == "opted_out"
    assert output["message_id"] is None


async def test_flow_stop_can_fail_the_run_with_a_reason() -> None:
    h = FlowHarness()
    h.publish(
        chain(
            keyword("HI"),
            node("stop", "flow.stop", outcome="failed", reason="no {{ trigger.data.body }}"),
        )
    )
    await h.inbound("hi", from_=PHONE)
    run = await only_run(h)
    assert run.status == "failed" and run.error == "no hi"


async def test_unknown_run_and_flow_version() -> None:
    h = FlowHarness()
    with pytest.raises(RunNotFoundError):
        await h.executor.advance("run_nope")
    with pytest.raises(FlowNotFoundError):
        await h.executor.start_run("nope", 1, {"type": "x"})


# -- waits and timers -------------------------------------------------------------------


ASK_FLOW = flow(
    keyword("ASK"),
    node("ask", "sms.wait_for_reply", text="Yes or no?", timeout_s=600),
    node("got", "sms.reply", text="You said {{ steps.ask.output.body }}"),
    node("late", "sms.send", to="{{ contact.phone }}", text="Too late"),
    edges=[edge("start", "ask"), edge("ask", "got", "reply"), edge("ask", "late", "timeout")],
    name="ask",
)


async def test_wait_for_reply_then_reply() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE)
    run = await only_run(h)
    assert run.status == "waiting" and run.wait is not None
    assert (run.wait.kind, run.wait.contact_phone, run.wait.channel_id) == (
        "reply",
        PHONE,
        "ch_test",
    )
    assert run.wait.until == h.clock.now() + timedelta(seconds=600)
    assert h.scheduler.timers == {(run.id, run.wait.token): run.wait.until}
    assert (await h.store.find_waiting_run(PHONE, "ch_test")) is not None
    result = await h.inbound("Yes please", from_=PHONE)
    assert result.reply_run_id == run.id and result.started == ()
    run = await only_run(h)
    assert run.status == "completed"
    assert texts(h) == ["Yes or no?", "You said Yes please"]
    ask = (await h.steps(run.id))[1]
    assert ask.port == "reply" and ask.output is not None
    assert ask.output["body"] == "Yes please" and ask.output["sent"]["text"] == "Yes or no?"


async def test_wait_for_reply_times_out() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE)
    await h.advance_time(599)
    assert (await only_run(h)).status == "waiting"
    await h.advance_time(1)
    run = await only_run(h)
    assert run.status == "completed" and texts(h) == ["Yes or no?", "Too late"]
    assert run.outputs["ask"]["timed_out"] is True
    assert (await h.steps(run.id))[1].port == "timeout"


async def test_delay_is_a_timer() -> None:
    h = FlowHarness()
    h.publish(
        chain(
            keyword("LATER"),
            node("pause", "flow.delay", seconds=3600),
            node("r", "sms.reply", text="an hour later"),
        )
    )
    await h.inbound("later", from_=PHONE)
    run = await only_run(h)
    assert run.status == "waiting" and run.wait is not None and run.wait.kind == "delay"
    assert texts(h) == []
    await h.advance_time(3599)
    assert texts(h) == []
    await h.advance_time(1)
    assert texts(h) == ["an hour later"] and (await only_run(h)).status == "completed"


async def test_stale_timers_change_nothing() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE)
    run = await only_run(h)
    assert run.wait is not None
    token = run.wait.token
    assert (await h.executor.fire_timer(run.id, "wait:999")).status == "waiting"  # unknown
    await h.inbound("yes", from_=PHONE)
    before = (await only_run(h)).revision
    after = await h.executor.fire_timer(run.id, token)  # the reply already ended the wait
    assert after.status == "completed" and after.revision == before
    assert texts(h) == ["Yes or no?", "You said yes"]


async def test_advance_on_a_waiting_run_re_arms_its_timer() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE)
    run = await only_run(h)
    h.scheduler.timers.clear()  # e.g. lost between the save and the enqueue
    await h.executor.advance(run.id)
    assert run.wait is not None and (run.id, run.wait.token) in h.scheduler.timers


async def test_reply_from_someone_else_or_to_a_non_waiting_run_is_refused() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE)
    run = await only_run(h)
    stranger = {"id": "e9", "type": "sms.received", "data": {"from": "+15550009999", "body": "y"}}
    assert await h.executor.deliver_reply(run.id, stranger) is False
    await h.inbound("yes", from_=PHONE)
    late = {"id": "e10", "type": "sms.received", "data": {"from": PHONE, "body": "again"}}
    assert await h.executor.deliver_reply(run.id, late) is False


async def test_a_redelivered_reply_is_not_consumed_twice() -> None:
    h2 = FlowHarness()
    h2.publish(
        flow(
            keyword("Q"),
            node("q1", "sms.wait_for_reply", text="first?"),
            node("q2", "sms.wait_for_reply", text="second?"),
            edges=[edge("start", "q1"), edge("q1", "q2", "reply")],
            name="two",
        )
    )
    await h2.inbound("q", from_=PHONE)
    run = await only_run(h2)
    reply = {
        "id": "evt_r1",
        "type": "sms.received",
        "data": {"from": PHONE, "body": "answer one", "channel_id": "ch_test"},
    }
    assert await h2.executor.deliver_reply(run.id, reply) is True
    assert await h2.executor.deliver_reply(run.id, reply) is True  # redelivery: accepted...
    run = await only_run(h2)
    assert run.status == "waiting" and run.outputs["q1"]["body"] == "answer one"
    assert "body" not in run.outputs["q2"]  # ...but not taken by the second question


async def test_one_waiting_run_per_contact_and_channel() -> None:
    h = FlowHarness()
    for word in ("A", "B"):
        h.publish(
            flow(
                keyword(word),
                node("ask", "sms.wait_for_reply", text=f"{word}?"),
                node("got", "sms.reply", text=f"{word} got {{{{ steps.ask.output.body }}}}"),
                edges=[edge("start", "ask"), edge("ask", "got", "reply")],
                name=f"flow {word}",
            )
        )
    await h.inbound("a", from_=PHONE)
    # While A waits, an inbound SMS would be A's reply; B starts from elsewhere (an API
    # call, another flow's send) and asks the same contact on the same channel.
    b_event = {
        "id": "evt_b",
        "type": "sms.received",
        "data": {"from": PHONE, "body": "b", "channel_id": "ch_test"},
    }
    await h.executor.start_run("flow_b", 1, b_event)
    first, second = h.runs()
    assert first.status == "cancelled" and first.error == f"superseded by run {second.id}"
    assert second.status == "waiting"
    await h.inbound("hello", from_=PHONE)
    assert texts(h) == ["A?", "B?", "B got hello"]
    # The superseded run's timer is stale now.
    await h.advance_time(7200)
    assert texts(h) == ["A?", "B?", "B got hello"]


async def test_waits_on_different_channels_do_not_supersede() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE, channel_id="ch_1")
    await h.inbound("ask", from_=PHONE, channel_id="ch_2")
    assert [r.status for r in h.runs()] == ["waiting", "waiting"]
    await h.inbound("on two", from_=PHONE, channel_id="ch_2")
    assert [r.status for r in h.runs()] == ["waiting", "completed"]


async def test_wait_for_reply_started_over_http_asks_the_given_number() -> None:
    h = FlowHarness()
    fid, _ = h.publish(
        flow(
            node("hook", "trigger.http"),
            node("ask", "sms.wait_for_reply", to="{{ trigger.phone }}", text="Confirm? Y/N"),
            node("thanks", "sms.reply", text="Thanks"),
            edges=[edge("hook", "ask"), edge("ask", "thanks", "reply")],
        )
    )
    run = await h.http(fid, {"phone": PHONE})
    assert run is not None and run.status == "waiting" and run.contact is None
    await h.inbound("y", from_=PHONE)
    assert texts(h) == ["Confirm? Y/N", "Thanks"]  # sms.reply answers the reply
    assert h.effects.sms[1].command.to == PHONE


# -- failures, retries, error port ----------------------------------------------------------

HOOK = "https://hooks.example.test/x"


def hook_flow(retry: dict[str, Any] | None = None, error_edge: bool = False) -> dict[str, Any]:
    nodes = [
        keyword("GO"),
        node("hook", "http.request", retry=retry, url=HOOK),
        node("ok", "sms.reply", text="ok {{ steps.hook.output.status }}"),
    ]
    edges = [edge("start", "hook"), edge("hook", "ok", "success")]
    if error_edge:
        nodes.append(node("oops", "sms.reply", text="failed with {{ steps.hook.output.status }}"))
        edges.append(edge("hook", "oops", "error"))
    return flow(*nodes, edges=edges)


async def test_retry_with_backoff_timers_then_success() -> None:
    h = FlowHarness()
    h.publish(hook_flow(retry={"attempts": 3, "backoff_s": 10, "factor": 2}))
    h.effects.respond(HOOK, status=503, times=2)
    start = h.clock.now()
    await h.inbound("go", from_=PHONE)
    run = await only_run(h)
    assert run.status == "waiting" and run.wait is not None and run.wait.kind == "retry"
    assert run.wait.until == start + timedelta(seconds=10)
    await h.advance_time(10)
    run = await only_run(h)
    assert run.wait is not None and run.wait.until == start + timedelta(seconds=30)
    await h.advance_time(20)
    run = await only_run(h)
    assert run.status == "completed" and texts(h) == ["ok 200"]
    hooks = [s for s in await h.steps(run.id) if s.node_id == "hook"]
    assert [(s.attempt, s.status) for s in hooks] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    assert {s.idempotency_key for s in hooks} == {f"{run.id}:hook"}  # one key for all attempts
    assert hooks[0].error == "HTTP 503"
    assert [c.command.idempotency_key for c in h.effects.http] == [f"{run.id}:hook"] * 3


async def test_retries_exhausted_take_the_error_port() -> None:
    h = FlowHarness()
    h.publish(hook_flow(retry={"attempts": 2, "backoff_s": 0}, error_edge=True))
    h.effects.respond(HOOK, status=500)
    await h.inbound("go", from_=PHONE)
    run = await only_run(h)
    assert run.status == "completed" and texts(h) == ["failed with 500"]
    hooks = [s for s in await h.steps(run.id) if s.node_id == "hook"]
    assert [(s.attempt, s.status, s.port) for s in hooks] == [
        (1, "failed", None),
        (2, "failed", "error"),
    ]


async def test_failure_without_error_edge_fails_the_run() -> None:
    h = FlowHarness()
    h.publish(hook_flow())
    h.effects.respond(HOOK, status=500)
    await h.inbound("go", from_=PHONE)
    run = await only_run(h)
    assert run.status == "failed" and run.error == "hook: HTTP 500"
    assert len(h.effects.http) == 1  # default policy: one attempt


async def test_non_retryable_errors_are_not_retried() -> None:
    h = FlowHarness()
    h.publish(hook_flow(retry={"attempts": 5, "backoff_s": 1}, error_edge=True))
    h.effects.respond(HOOK, status=404)
    await h.inbound("go", from_=PHONE)
    assert len(h.effects.http) == 1 and texts(h) == ["failed with 404"]


async def test_effect_errors_are_retried_and_the_sms_sent_once() -> None:
    h = FlowHarness()
    h.publish(chain(keyword("HI"), node("r", "sms.reply", retry={"attempts": 3}, text="hello")))
    h.effects.fail_sms("gateway down", times=2)
    await h.inbound("hi", from_=PHONE)
    run = await only_run(h)
    assert run.status == "completed" and texts(h) == ["hello"]
    assert len(h.effects.sms_calls) == 3
    assert {c.idempotency_key for c in h.effects.sms_calls} == {f"{run.id}:r"}


async def test_template_errors_fail_the_step_with_the_field_and_are_not_retried() -> None:
    h = FlowHarness()
    h.publish(
        flow(
            keyword("HI"),
            node("r", "sms.reply", retry={"attempts": 3}, text="{{ 1 / 0 }}"),
            node("fallback", "sms.reply", text="sorry"),
            edges=[edge("start", "r"), edge("r", "fallback", "error")],
        )
    )
    await h.inbound("hi", from_=PHONE)
    run = await only_run(h)
    failed = [s for s in await h.steps(run.id) if s.node_id == "r"]
    assert len(failed) == 1 and failed[0].error is not None
    assert "config.text" in failed[0].error and "ZeroDivisionError" in failed[0].error
    assert texts(h) == ["sorry"] and run.outputs["r"]["error"] == failed[0].error


async def test_sms_reply_without_an_inbound_message_fails_clearly() -> None:
    h = FlowHarness()
    fid, _ = h.publish(chain(node("hook", "trigger.http"), node("r", "sms.reply", text="hi")))
    run = await h.http(fid, {"anything": 1})
    assert run is not None and run.status == "failed"
    assert run.error is not None and "sms.send" in run.error


# -- limits -------------------------------------------------------------------------------


async def test_step_limit_stops_loops() -> None:
    h = FlowHarness(step_limit=50)
    h.publish(
        flow(
            keyword("LOOP"),
            node("count", "data.set", vars={"n": "{{ (vars.n or 0) + 1 }}"}),
            node("again", "logic.condition", value="{{ vars.n }}", operator="lt", operand="100000"),
            edges=[edge("start", "count"), edge("count", "again"), edge("again", "count", "true")],
        )
    )
    await h.inbound("loop", from_=PHONE)
    run = await only_run(h)
    assert run.status == "failed" and run.error is not None and "step limit of 50" in run.error
    assert run.step_count == 50 and len(await h.steps(run.id)) == 50
    assert run.vars["n"] == 25
    visits = [s.idempotency_key for s in await h.steps(run.id) if s.node_id == "count"]
    assert visits[:3] == [f"{run.id}:count", f"{run.id}:count:2", f"{run.id}:count:3"]


async def test_loop_breaker_suppression_is_recorded() -> None:
    h = FlowHarness(loop_limit=2)
    h.publish(chain(keyword("HI"), node("r", "sms.reply", text="hello")))
    for _ in range(3):
        await h.inbound("hi", from_=PHONE)
    outputs = [r.outputs["r"] for r in h.runs()]
    assert [o["suppressed"] for o in outputs] == [False, False, True]
    assert outputs[2]["reason"] == "loop_breaker"
    assert all(r.status == "completed" for r in h.runs())


# -- cancel and replay ----------------------------------------------------------------------


async def test_cancel_a_waiting_run() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE)
    run = await only_run(h)
    cancelled = await h.executor.cancel(run.id, reason="by operator")
    assert cancelled.status == "cancelled" and cancelled.error == "by operator"
    assert cancelled.wait is None and cancelled.finished_at is not None
    steps = await h.steps(run.id)
    assert steps[-1].status == "cancelled"
    assert await h.store.find_waiting_run(PHONE, "ch_test") is None
    await h.advance_time(3600)  # its timer is stale
    await h.inbound("yes", from_=PHONE)  # goes to the triggers, not the cancelled run
    assert texts(h) == ["Yes or no?"]
    assert (await h.executor.cancel(run.id)).status == "cancelled"  # idempotent


async def test_replay_from_failed_step_does_not_resend_earlier_sms() -> None:
    h = FlowHarness()
    h.publish(
        flow(
            keyword("GO"),
            node("one", "sms.reply", text="one"),
            node("hook", "http.request", url=HOOK),
            node("two", "sms.reply", text="two {{ steps.one.output.message_id }}"),
            edges=[edge("start", "one"), edge("one", "hook"), edge("hook", "two", "success")],
        )
    )
    h.effects.respond(HOOK, status=500, times=1)
    await h.inbound("go", from_=PHONE)
    run = await only_run(h)
    assert run.status == "failed" and texts(h) == ["one"]
    replayed = await h.executor.replay(run.id, "from_failed")
    assert replayed.id == run.id and replayed.status == "completed"
    assert texts(h) == ["one", "two msg_out_1"]  # earlier output kept
    assert [c.text for c in h.effects.sms_calls].count("one") == 1  # not even re-issued
    steps = await h.steps(run.id)
    assert [(s.node_id, s.status) for s in steps] == [
        ("start", "succeeded"),
        ("one", "succeeded"),
        ("hook", "failed"),
        ("hook", "succeeded"),
        ("two", "succeeded"),
    ]
    assert steps[2].idempotency_key == steps[3].idempotency_key


async def test_replay_from_start_is_a_new_run_with_the_same_trigger() -> None:
    h = FlowHarness()
    h.publish(chain(keyword("GO"), node("one", "sms.reply", text="one")))
    await h.inbound("go", from_=PHONE)
    original = await only_run(h)
    again = await h.executor.replay(original.id, "from_start")
    assert again.id != original.id and again.replay_of == original.id
    assert again.trigger == original.trigger and again.status == "completed"
    assert texts(h) == ["one", "one"]
    keys = {s.command.idempotency_key for s in h.effects.sms}
    assert keys == {f"{original.id}:one", f"{again.id}:one"}


async def test_replay_refusals() -> None:
    h = FlowHarness(step_limit=3)
    h.publish(chain(keyword("GO"), node("one", "sms.reply", text="one")))
    await h.inbound("go", from_=PHONE)
    run = await only_run(h)
    with pytest.raises(ReplayError, match="completed"):
        await h.executor.replay(run.id, "from_failed")
    h.publish(
        flow(
            keyword("LOOP"),
            node("a", "data.set", vars={"x": "1"}),
            node("b", "data.set", vars={"x": "2"}),
            edges=[edge("start", "a"), edge("a", "b"), edge("b", "a")],
            name="loop",
        )
    )
    await h.inbound("loop", from_=PHONE)
    looping = h.runs()[-1]
    assert looping.status == "failed"
    with pytest.raises(ReplayError, match="from_start"):
        await h.executor.replay(looping.id, "from_failed")


# -- versions -------------------------------------------------------------------------------


def versioned(text: str) -> dict[str, Any]:
    return flow(
        keyword("ASK"),
        node("ask", "sms.wait_for_reply", text="?"),
        node("done", "sms.reply", text=text),
        edges=[edge("start", "ask"), edge("ask", "done", "reply")],
        name="v",
    )


async def test_runs_stay_on_their_version_and_new_runs_use_the_new_one() -> None:
    h = FlowHarness()
    fid, v1 = h.publish(versioned("from v1"), "v")
    await h.inbound("ask", from_=PHONE, channel_id="ch_1")
    _, v2 = h.publish(versioned("from v2"), "v")
    assert (v1, v2) == (1, 2)
    await h.inbound("ask", from_="+15550002222", channel_id="ch_1")
    old, new = h.runs()
    assert (old.flow_version, new.flow_version) == (1, 2)
    await h.inbound("ok", from_=PHONE, channel_id="ch_1")
    await h.inbound("ok", from_="+15550002222", channel_id="ch_1")
    assert texts(h) == ["?", "?", "from v1", "from v2"]
    # At engine level the executor reads each run's pinned version through FlowSource.
    assert (await h.flows.get_definition(fid, 1)) != (await h.flows.get_definition(fid, 2))


# -- concurrency ------------------------------------------------------------------------------


class SlowEffects(FakeEffects):
    """Yields inside send_sms so two workers interleave on the same step."""

    async def send_sms(self, command: SmsCommand) -> SmsOutcome:
        await asyncio.sleep(0)
        return await super().send_sms(command)


async def test_two_workers_advancing_one_run() -> None:
    h = FlowHarness()
    h.effects = SlowEffects(h.clock, log=h.log)
    h.executor.effects = h.effects
    fid, version = h.publish(
        chain(keyword("HI"), node("a", "sms.reply", text="a"), node("b", "sms.reply", text="b"))
    )
    event = {"id": "e1", "type": "sms.received", "data": {"from": PHONE, "body": "hi"}}
    run = await h.executor.start_run(fid, version, event, advance=False)
    results = await asyncio.gather(h.executor.advance(run.id), h.executor.advance(run.id))
    final = await h.store.get_run(run.id)
    assert final is not None and final.status == "completed"
    assert {r.id for r in results} == {run.id}
    assert texts(h) == ["a", "b"]  # the pipeline deduped the racing sends by key
    keys = defaultdict(set)
    for command in h.effects.sms_calls:
        keys[command.text].add(command.idempotency_key)
    assert all(len(k) == 1 for k in keys.values())
    assert [s.seq for s in await h.steps(run.id)] == [0, 1, 2]


async def test_store_refuses_a_stale_save() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE)
    run = await only_run(h)
    stale = await h.store.get_run(run.id)
    assert stale is not None
    await h.executor.cancel(run.id)
    with pytest.raises(StaleRunError):
        await h.store.save_run(stale)


async def test_run_and_step_records_round_trip_through_dicts() -> None:
    h = FlowHarness()
    h.publish(ASK_FLOW)
    await h.inbound("ask", from_=PHONE)
    run = await only_run(h)
    assert Run.from_dict(run.to_dict()) == run
    for step in await h.steps(run.id):
        assert Step.from_dict(step.to_dict()) == step
    import json

    json.dumps(run.to_dict())  # JSON-ready


async def test_contact_passed_by_the_hub_is_visible_to_templates() -> None:
    h = FlowHarness()
    fid, version = h.publish(
        chain(keyword("HI"), node("r", "sms.reply", text="Hi {{ contact.fields.name }}"))
    )
    event = {"id": "e1", "type": "sms.received", "data": {"from": PHONE, "body": "hi"}}
    await h.executor.start_run(
        fid, version, event, contact=ContactView(phone=PHONE, fields={"name": "Ann"})
    )
    assert texts(h) == ["Hi Ann"]


# -- crash and resume at every point ----------------------------------------------------------


class SimulatedCrash(BaseException):
    """Not an Exception: nothing in the engine may swallow it, like a SIGKILL."""


class Faults:
    """Counts fault points (before and after every store write, effect and timer request)
    and crashes once at the chosen one."""

    def __init__(self, crash_at: int | None) -> None:
        self.crash_at = crash_at
        self.points: list[str] = []

    def point(self, name: str) -> None:
        self.points.append(name)
        if len(self.points) - 1 == self.crash_at:
            raise SimulatedCrash(name)


class CrashingStore(InMemoryRunStore):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    async def create_run(self, run: Run, steps: Any) -> None:
        self.faults.point("before create_run")
        await super().create_run(run, steps)
        self.faults.point("after create_run")

    async def save_run(self, run: Run, steps: Any = ()) -> None:
        self.faults.point("before save_run")
        await super().save_run(run, steps)
        self.faults.point("after save_run")


class CrashingEffects(FakeEffects):
    def __init__(self, faults: Faults, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.faults = faults

    async def send_sms(self, command: SmsCommand) -> SmsOutcome:
        self.faults.point(f"before send_sms {command.text}")
        outcome = await super().send_sms(command)
        self.faults.point(f"after send_sms {command.text}")
        return outcome

    async def http_request(self, command: Any) -> Any:
        self.faults.point("before http_request")
        outcome = await super().http_request(command)
        self.faults.point("after http_request")
        return outcome

    async def update_contact(self, update: Any) -> Any:
        self.faults.point("before update_contact")
        view = await super().update_contact(update)
        self.faults.point("after update_contact")
        return view


class CrashingScheduler(InMemoryScheduler):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    async def schedule(self, run_id: str, at: Any, token: str) -> None:
        self.faults.point("before schedule")
        await super().schedule(run_id, at, token)
        self.faults.point("after schedule")


CRASH_FLOW = flow(
    keyword("GO"),
    node("hello", "sms.reply", text="hello"),
    node("hook", "http.request", url=HOOK),
    node("tag", "contact.update", add_tags=["seen"]),
    node("pause", "flow.delay", seconds=60),
    node("ask", "sms.wait_for_reply", text="question?"),
    node("thanks", "sms.reply", text="thanks for {{ steps.ask.output.body }}"),
    edges=[
        edge("start", "hello"),
        edge("hello", "hook"),
        edge("hook", "tag", "success"),
        edge("tag", "pause"),
        edge("pause", "ask"),
        edge("ask", "thanks", "reply"),
    ],
    name="crash",
)


def crashing_harness(crash_at: int | None) -> tuple[FlowHarness, Faults]:
    h = FlowHarness()
    faults = Faults(crash_at)
    h.store = CrashingStore(faults)
    h.scheduler = CrashingScheduler(faults)
    h.effects = CrashingEffects(faults, h.clock, log=h.log)
    h.executor.store, h.executor.scheduler, h.executor.effects = h.store, h.scheduler, h.effects
    h.publish(CRASH_FLOW, "crash")
    return h, faults


async def as_a_job(h: FlowHarness, job: Any) -> None:
    """Run a job the way the hub's queue does: if the process dies, it restarts, sweeps
    every unfinished run (advance), and the job runs again."""
    while True:
        try:
            await job()
            return
        except SimulatedCrash:
            await recover(h)


async def recover(h: FlowHarness) -> None:
    for run in list(h.store.runs.values()):
        if not run.is_terminal:
            await h.executor.advance(run.id)


async def fire_due_timers(h: FlowHarness, seconds: float) -> None:
    """The queue's timer jobs: a timer is removed only once its job finished."""
    h.clock.advance(seconds)
    for _at, run_id, token in h.scheduler.due(h.clock.now()):
        await h.executor.fire_timer(run_id, token)
        h.scheduler.pop(run_id, token)


async def crash_scenario(crash_at: int | None) -> tuple[FlowHarness, Faults]:
    h, faults = crashing_harness(crash_at)
    go = {
        "id": "evt_go",
        "type": "sms.received",
        "data": {"message_id": "m1", "from": PHONE, "body": "go", "channel_id": "ch_test"},
    }
    answer = {
        "id": "evt_answer",
        "type": "sms.received",
        "data": {"message_id": "m2", "from": PHONE, "body": "yes", "channel_id": "ch_test"},
    }
    await as_a_job(h, lambda: h.dispatch(go))
    await as_a_job(h, lambda: fire_due_timers(h, 60))
    await as_a_job(h, lambda: h.dispatch(answer))
    return h, faults


def crash_outcome(h: FlowHarness) -> tuple[Run | None, list[str]]:
    """The one completed run a crash scenario must leave (None if it did not), and what is
    wrong: not exactly one completed run, an SMS text issued under two keys."""
    runs = h.runs()
    if len(runs) != 1 or runs[0].status != "completed":
        return None, [f"runs {[(r.status, r.error) for r in runs]}"]
    keys_by_text: dict[str, set[str]] = defaultdict(set)
    for command in h.effects.sms_calls:
        keys_by_text[command.text].add(command.idempotency_key)
    if any(len(keys) != 1 for keys in keys_by_text.values()):
        return runs[0], [f"an SMS was issued under two keys {dict(keys_by_text)}"]
    return runs[0], []


async def crash_everywhere(
    scenario: Callable[[int | None], Awaitable[tuple[FlowHarness, Faults]]],
    check: Callable[[FlowHarness, Run, Faults], Awaitable[list[str]]],
) -> list[str]:
    """Run ``scenario`` crashing once at each of its fault points in turn; the problems
    found (:func:`crash_outcome`, then ``check`` on the run it left), each with its point."""
    _, clean = await scenario(None)
    failures: list[str] = []
    for crash_at in range(len(clean.points)):
        h, faults = await scenario(crash_at)
        where = f"crash {crash_at} ({clean.points[crash_at]})"
        run, problems = crash_outcome(h)
        if run is not None and not problems:
            problems = await check(h, run, faults)
        failures += [f"{where}: {problem}" for problem in problems]
    return failures


async def test_crash_at_any_point_resumes_and_each_effect_happens_once() -> None:
    _, clean = await crash_scenario(None)
    assert len(clean.points) > 20

    async def check(h: FlowHarness, run: Run, faults: Faults) -> list[str]:
        problems: list[str] = []
        if texts(h) != ["hello", "question?", "thanks for yes"]:
            problems.append(f"sent {texts(h)}")
        if len({c.command.idempotency_key for c in h.effects.http}) != 1:
            problems.append(f"http keys {[c.command.idempotency_key for c in h.effects.http]}")
        steps = [s.node_id for s in await h.steps(run.id)]
        if steps != ["start", "hello", "hook", "tag", "pause", "ask", "thanks"]:
            problems.append(f"steps {steps}")
        if faults.crash_at is not None and len(faults.points) <= faults.crash_at:
            problems.append("the crash point was never reached")
        return problems

    failures = await crash_everywhere(crash_scenario, check)
    assert not failures, "\n".join(failures)


async def test_a_stale_timer_on_a_running_run_finishes_the_walk() -> None:
    h = FlowHarness()
    fid, version = h.publish(chain(keyword("HI"), node("r", "sms.reply", text="hello")))
    event = {"id": "e1", "type": "sms.received", "data": {"from": PHONE, "body": "hi"}}
    run = await h.executor.start_run(fid, version, event, advance=False)
    after = await h.executor.fire_timer(run.id, "wait:0")  # e.g. a timer job re-run
    assert after.status == "completed" and texts(h) == ["hello"]


async def test_a_redelivered_reply_resumes_a_run_left_mid_flight() -> None:
    h, faults = crashing_harness(None)
    await h.dispatch(
        {
            "id": "evt_go",
            "type": "sms.received",
            "data": {"from": PHONE, "body": "go", "channel_id": "ch_test"},
        }
    )
    await fire_due_timers(h, 60)
    run = h.runs()[0]
    assert run.status == "waiting"
    answer = {
        "id": "evt_answer",
        "type": "sms.received",
        "data": {"from": PHONE, "body": "yes", "channel_id": "ch_test"},
    }
    faults.crash_at = len(faults.points) + 1  # right after the reply is saved
    with pytest.raises(SimulatedCrash):
        await h.executor.deliver_reply(run.id, answer)
    assert h.runs()[0].status == "running"
    assert await h.executor.deliver_reply(run.id, answer) is True  # the job runs again
    assert h.runs()[0].status == "completed"
    assert texts(h) == ["hello", "question?", "thanks for yes"]
