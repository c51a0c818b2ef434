"""logic.condition's router tests (RapidPro's has_* tests): numbers, ranges, dates, email
addresses, phone numbers, words — each true/false and what it outputs as ``match``."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from flows.nodes import logic_condition
from flows.testing import FlowConversation

TODAY = date(2026, 12, 1)

# (operator, operand, value, extra config, expected match; None = the test is false)
ROUTER_TESTS: list[tuple[str, Any, str, dict[str, Any], Any]] = [
    # has_number: the first number in the text, int or float.
    ("has_number", "", "I am 25 years old", {}, 25),
    ("has_number", "", "about 1,5 kg", {}, 1.5),  # a decimal comma
    ("has_number", "", "1,000 people", {}, 1000),  # thousands
    ("has_number", "", "-3 degrees", {}, -3),
    ("has_number", "", "none at all", {}, None),
    ("has_number", "", "v2 is not a number", {}, None),  # inside a word
    # between: the first number, inclusive bounds, 'low,high' or a list.
    ("between", "18,65", "I'm 30", {}, 30),
    ("between", "18,65", "65", {}, 65),
    ("between", ["18", "65"], "17", {}, None),
    ("between", "1.5, 2.5", "2.25", {}, 2.25),
    ("between", "1,10", "no number", {}, None),
    # has_date: ISO always; numeric dates by date_order; month names; year defaults.
    ("has_date", "", "2026-12-25 please", {}, "2026-12-25"),
    ("has_date", "", "on 1/12/2026", {}, "2026-12-01"),
    ("has_date", "", "on 1/12/2026", {"date_order": "month_first"}, "2026-01-12"),
    ("has_date", "", "1.12.26", {}, "2026-12-01"),
    ("has_date", "", "5 March", {}, "2026-03-05"),
    ("has_date", "", "March 5th, 2027", {}, "2027-03-05"),
    ("has_date", "", "le 1er mars", {}, "2026-03-01"),
    ("has_date", "", "el 5 de marzo de 2027", {}, "2027-03-05"),
    ("has_date", "", "31/02/2026", {}, None),  # no 31 February
    ("has_date", "", "5 out of 10", {}, None),  # not a Portuguese "out(ubro)"
    ("has_date", "", "tomorrow maybe", {}, None),
    # date_before / date_after / date_equals: against a date, today or a date-time.
    ("date_before", "2026-12-24", "25/12/2026", {}, None),
    ("date_before", "2026-12-26", "25/12/2026", {}, "2026-12-25"),
    ("date_after", "today", "2026-12-02", {}, "2026-12-02"),
    ("date_after", "today", "2026-11-30", {}, None),
    ("date_equals", "2026-12-01T09:30:00+00:00", "1 December", {}, "2026-12-01"),
    ("date_equals", "12/1/2026", "2026-12-01", {"date_order": "month_first"}, "2026-12-01"),
    ("date_before", "2027-01-01", "no date here", {}, None),
    # has_email: the address as written.
    ("has_email", "", "mail Ann.B+x@Example.co.uk now", {}, "Ann.B+x@Example.co.uk"),
    ("has_email", "", "ann at example dot com", {}, None),
    ("has_email", "", "ann@localhost", {}, None),
    # has_phone: E.164; national numbers only with a region.
    ("has_phone", "", "call +44 20 7946 0958 pls", {}, "+442079460958"),
    ("has_phone", "", "call 020 7946 0958", {}, None),
    ("has_phone", "", "call 020 7946 0958", {"region": "gb"}, "+442079460958"),
    ("has_phone", "", "(415) 555-2671", {"region": "US"}, "+14155552671"),
    ("has_phone", "", "my pin is 1234", {"region": "US"}, None),
    # has_any_word / has_all_words: whole words, case-folded, in the operand's order.
    ("has_any_word", "yes, yeah", "Yeah sure", {}, ["yeah"]),
    ("has_any_word", ["yes", "ok"], "yesterday", {}, None),  # not a whole word
    ("has_all_words", "red,blue", "blue and RED", {}, ["red", "blue"]),
    ("has_all_words", "red,blue", "just red", {}, None),
    ("has_any_word", "Yes", "yes", {"case_sensitive": True}, None),
    # The older comparisons output what matched too.
    ("matches", r"\d{4}", "code 1234 ok", {}, "1234"),
    ("equals", "yes", " YES ", {}, "YES"),
    ("gt", "5", "10", {}, 10),
    ("gt", "5", "4", {}, None),
]


@pytest.mark.parametrize(("operator", "operand", "value", "extra", "expected"), ROUTER_TESTS)
def test_router_tests(
    operator: str, operand: Any, value: str, extra: dict[str, Any], expected: Any
) -> None:
    config = logic_condition.Config.model_validate(
        {"value": value, "operator": operator, "operand": operand, **extra}
    )
    result, match = logic_condition.outcome(config, TODAY)
    assert (result, match) == (expected is not None, expected)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        # A range needs two numbers, low first.
        ({"operator": "between", "operand": "5"}, "two numbers"),
        ({"operator": "between", "operand": "10,1"}, "above high"),
        # A date comparison needs a date.
        ({"operator": "date_before", "operand": "someday"}, "not a date"),
        # A region phonenumbers does not know.
        ({"operator": "has_phone", "region": "XX"}, "region code"),
    ],
)
def test_config_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        logic_condition.Config.model_validate({"value": "x", **config})


async def test_template_operands_are_checked_once_rendered() -> None:
    """A template operand passes validation; a bad rendered value fails the step."""
    flow = {
        "name": "age check",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
            {
                "id": "check",
                "type": "logic.condition",
                "config": {
                    "value": "I am 30",
                    "operator": "between",
                    "operand": "{{ trigger.data.body }}",
                },
            },
            {
                "id": "yes",
                "type": "sms.reply",
                "config": {"text": "In range {{ steps.check.output.match }}"},
            },
        ],
        "edges": [{"from": "start", "to": "check"}, {"from": "check", "port": "true", "to": "yes"}],
    }
    convo = FlowConversation(flow)
    await convo.says("18,65")
    convo.expect_reply("^In range 30$")
    await convo.says("oops")
    run = convo.expect_run("failed")
    assert "two numbers" in (run.error or "")


async def test_date_against_the_run_start() -> None:
    """``{{ run.started_at }}`` is the deterministic "now" (the same on a replay)."""
    flow = {
        "name": "booking",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["book"]}},
            {
                "id": "check",
                "type": "logic.condition",
                "config": {
                    "value": "{{ trigger.data.body }}",
                    "operator": "date_after",
                    "operand": "{{ run.started_at }}",
                },
            },
            {
                "id": "ok",
                "type": "sms.reply",
                "config": {"text": "Booked for {{ steps.check.output.match }}"},
            },
            {"id": "past", "type": "sms.reply", "config": {"text": "That date has passed"}},
        ],
        "edges": [
            {"from": "start", "to": "check"},
            {"from": "check", "port": "true", "to": "ok"},
            {"from": "check", "port": "false", "to": "past"},
        ],
    }
    convo = FlowConversation(flow)  # the fake clock starts on 2026-11-26
    await convo.says("book 3/12/2026")
    convo.expect_reply(r"^Booked for 2026-12-03$")
    await convo.says("book 2026-11-01")
    convo.expect_reply("has passed")


async def test_phone_number_in_a_reply_feeds_a_send() -> None:
    """The conversation test: the number found is what a later node sends to."""
    flow = {
        "name": "refer a friend",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["refer"]}},
            {
                "id": "check",
                "type": "logic.condition",
                "config": {
                    "value": "{{ trigger.data.body }}",
                    "operator": "has_phone",
                    "region": "US",
                },
            },
            {
                "id": "invite",
                "type": "sms.send",
                "config": {"to": "{{ steps.check.output.match }}", "text": "You're invited!"},
            },
            {"id": "no", "type": "sms.reply", "config": {"text": "Send REFER and a number"}},
        ],
        "edges": [
            {"from": "start", "to": "check"},
            {"from": "check", "port": "true", "to": "invite"},
            {"from": "check", "port": "false", "to": "no"},
        ],
    }
    convo = FlowConversation(flow)
    await convo.says("refer (415) 555-2671")
    convo.expect_sms(to="+14155552671", pattern="invited")
    await convo.says("refer nobody")
    convo.expect_reply("Send REFER")
