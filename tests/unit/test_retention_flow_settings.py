"""A flow's ``settings``: its stored step log without step data, or with named keys redacted."""

from __future__ import annotations

from typing import Any

import pytest

from flows.model import dump_flow, export_flow, parse_flow
from flows.testing import FlowHarness
from flows.validation import INVALID_FLOW, validate_flow

PHONE = "+15550001234"


def ask_flow(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """ASK → wait for the reply → answer with it (a template reading the waiting step)."""
    doc: dict[str, Any] = {
        "name": "ask",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.sms_received",
                "config": {"match": "first_word", "keywords": ["ASK"]},
            },
            {"id": "ask", "type": "sms.wait_for_reply", "config": {"text": "Your name?"}},
            {
                "id": "got",
                "type": "sms.reply",
                "config": {"text": "Hi {{ steps.ask.output.body }}"},
            },
        ],
        "edges": [
            {"from": "start", "to": "ask"},
            {"from": "ask", "port": "reply", "to": "got"},
        ],
    }
    if settings is not None:
        doc["settings"] = settings
    return doc


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"store_step_data": "no"}, "settings.store_step_data"),
        ({"store_step_data": 0}, "settings.store_step_data"),
        ({"redact": "body"}, "settings.redact"),
        ({"redact": [""]}, "settings.redact.0"),
        ({"redact": [7]}, "settings.redact.0"),
        ({"redact": ["x" * 65]}, "settings.redact.0"),
        ({"redact": [f"k{i}" for i in range(51)]}, "settings.redact"),
        ({"keep": False}, "settings.keep"),
        ("off", "settings"),
    ],
)
def test_a_bad_setting_is_a_problem_naming_its_field(settings: Any, field: str) -> None:
    problems = validate_flow(ask_flow(settings))
    assert [(p.code, p.field) for p in problems] == [(INVALID_FLOW, field)], problems


def test_good_settings_validate_and_round_trip_through_the_canonical_export() -> None:
    settings = {"store_step_data": False, "redact": ["body", "from"]}
    assert validate_flow(ask_flow(settings)) == []
    flow = parse_flow(ask_flow(settings))
    assert dump_flow(flow)["settings"] == settings
    assert parse_flow(export_flow(flow)).settings == flow.settings
    # The defaults are left out of the export (documents without settings stay as they were).
    assert "settings" not in dump_flow(parse_flow(ask_flow()))
    assert "settings" not in dump_flow(parse_flow(ask_flow({"store_step_data": True})))


async def run_ask(settings: dict[str, Any] | None) -> tuple[FlowHarness, str]:
    h = FlowHarness()
    h.publish(ask_flow(settings))
    await h.inbound("ask", from_=PHONE)
    [run] = h.runs()
    assert run.status == "waiting"
    return h, run.id


async def test_store_step_data_false_stores_finished_steps_without_data() -> None:
    h, run_id = await run_ask({"store_step_data": False})
    start, ask = await h.steps(run_id)
    assert (start.input, start.output, start.redacted) == (None, None, True)
    # The waiting step keeps its data: the reply that resumes the run reads it.
    assert ask.status == "waiting" and ask.output is not None and not ask.redacted
    await h.inbound("Ann", from_=PHONE)
    [run] = h.runs()
    assert run.status == "completed"
    assert [sms.command.text for sms in h.effects.sms] == ["Your name?", "Hi Ann"]
    steps = await h.steps(run_id)
    assert [(s.node_id, s.status) for s in steps] == [
        ("start", "succeeded"),
        ("ask", "succeeded"),
        ("got", "succeeded"),
    ]
    assert all(s.input is None and s.output is None and s.redacted for s in steps)
    assert all(s.to_dict()["redacted"] is True for s in steps)


async def test_redact_replaces_the_named_keys_at_any_depth() -> None:
    h, run_id = await run_ask({"redact": ["body", "text"]})
    await h.inbound("Ann", from_=PHONE)
    [run] = h.runs()
    assert run.status == "completed"
    start, ask, got = await h.steps(run_id)
    assert ask.output is not None and ask.output["body"] == "[redacted]"
    assert ask.output["sent"]["text"] == "[redacted]"  # nested
    assert ask.output["from"] == PHONE  # not named: kept
    assert got.input == {"text": "[redacted]"} and got.redacted
    assert "Ann" not in str([s.to_dict() for s in (start, ask, got)])
    # The run itself still holds what templates read (only the step log is redacted).
    assert run.outputs["ask"]["body"] == "Ann"


async def test_without_settings_steps_keep_their_data() -> None:
    h, run_id = await run_ask(None)
    await h.inbound("Ann", from_=PHONE)
    steps = await h.steps(run_id)
    assert steps[1].output is not None and steps[1].output["body"] == "Ann"
    assert not any(s.redacted for s in steps)
    assert all("redacted" not in s.to_dict() for s in steps)
