"""flows.testing: the conversation helper's expectations and simulations."""

from __future__ import annotations

import pytest

from flows import InvalidFlowError
from flows.testing import FlowConversation, load_flow_file

CONTACT = "+15550001234"
ECHO = {
    "name": "Echo",
    "nodes": [
        {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
        {
            "id": "echo",
            "type": "sms.reply",
            "config": {"text": "You said: {{ trigger.data.body }}"},
        },
    ],
    "edges": [{"from": "start", "to": "echo"}],
}


async def test_failed_expectations_show_the_transcript() -> None:
    convo = FlowConversation(ECHO, contact=CONTACT)
    await convo.says("hi")
    with pytest.raises(AssertionError) as info:
        convo.expect_reply("bye")
    message = str(info.value)
    assert "expected a reply matching 'bye'" in message
    assert "You said: hi" in message
    assert f"{CONTACT} says: hi" in message and "transcript:" in message


async def test_expect_no_reply_and_expect_http_failures() -> None:
    convo = FlowConversation(ECHO, contact=CONTACT)
    await convo.says("hi")
    with pytest.raises(AssertionError, match="expected no reply"):
        convo.expect_no_reply()
    with pytest.raises(AssertionError, match="expected an HTTP request"):
        convo.expect_http(url="https://nowhere.test")
    with pytest.raises(AssertionError, match="sent nothing more"):
        convo.expect_reply("anything")
    with pytest.raises(AssertionError, match="expected the run to be waiting"):
        convo.expect_run("waiting")


async def test_expectations_consume_replies_in_order() -> None:
    convo = FlowConversation(ECHO, contact=CONTACT)
    await convo.says("one")
    await convo.says("two")
    convo.expect_reply("one")
    convo.expect_reply("two")
    convo.expect_no_reply()


async def test_opt_out_and_loop_breaker_simulation() -> None:
    convo = FlowConversation(ECHO, contact=CONTACT, loop_limit=2, loop_window_s=600)
    for word in ("a", "b", "c"):
        await convo.says(word)
    convo.expect_reply("a")
    convo.expect_reply("b")
    convo.expect_suppressed("loop_breaker")
    await convo.wait(minutes=11)  # the window has passed
    await convo.says("d")
    convo.expect_reply("d")
    convo.opt_out()
    await convo.says("e")
    convo.expect_suppressed("opted_out")
    convo.opt_in()
    await convo.says("f")
    convo.expect_reply("f")


async def test_wait_units_and_transcript() -> None:
    convo = FlowConversation(ECHO, contact=CONTACT)
    start = convo.harness.clock.now()
    await convo.wait(minutes=1, hours=1, days=1, seconds=1)
    assert (convo.harness.clock.now() - start).total_seconds() == 86_400 + 3600 + 60 + 1
    assert "pass" in convo.transcript
    assert convo.run is None and convo.vars == {}


def test_invalid_flows_are_refused_with_their_problems(tmp_path: object) -> None:
    with pytest.raises(InvalidFlowError):
        FlowConversation({"name": "x", "nodes": [{"id": "a", "type": "sms.reply"}]})
    assert load_flow_file(ECHO)["name"] == "Echo"
