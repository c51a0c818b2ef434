"""Secrets in flows, in the engine: ``{{ secrets.NAME }}`` renders to a per-run placeholder,
the Effects send the value, runs and outputs never hold it, publish refuses misuse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flows import (
    HttpCommand,
    HttpOutcome,
    PublishedFlow,
    SecretTokens,
    TriggerIndex,
    UnknownSecretError,
    validate_flow,
)
from flows.secrets import SECRET_MASK, mask_outcome, secret_problems
from flows.testing import FlowConversation

TOKEN = "zt-3f9a0c1d2e4b5a69"


def zap_flow(**config: Any) -> dict[str, Any]:
    """An SMS keyword flow posting to an API with the secret; error port to a reply."""
    return {
        "name": "Zap",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
            {
                "id": "zap",
                "type": "http.request",
                "config": {
                    "url": "https://api.example.com/v1/hook",
                    "headers": {"Authorization": "Bearer {{ secrets.ZAP_TOKEN }}"},
                    "body": {"text": "{{ trigger.data.body }}", "key": "{{ secrets.ZAP_TOKEN }}"},
                    **config,
                },
            },
            {"id": "oops", "type": "sms.reply", "config": {"text": "{{ steps.zap.output.error }}"}},
        ],
        "edges": [
            {"from": "start", "to": "zap"},
            {"from": "zap", "port": "error", "to": "oops"},
        ],
    }


def everything(convo: FlowConversation) -> str:
    """All a run keeps (run record, steps, the transcript) as one text."""
    harness = convo.harness
    parts = [convo.transcript]
    for run in harness.runs():
        parts.append(json.dumps(run.to_dict(), default=str))
        steps = harness.store.steps.get(run.id, {}).values()
        parts += [json.dumps(step.to_dict(), default=str) for step in steps]
    return "\n".join(parts)


async def test_the_request_carries_the_value_the_run_only_a_placeholder() -> None:
    convo = FlowConversation(zap_flow(), secrets={"ZAP_TOKEN": TOKEN})
    convo.harness.effects.respond(body={"echo": f"Bearer {TOKEN}"})
    await convo.says("hello")
    call = convo.expect_http(headers={"authorization": f"Bearer {TOKEN}"})
    assert call.command.json == {"text": "hello", "key": TOKEN}
    run = convo.expect_run("completed")
    kept = everything(convo)
    assert TOKEN not in kept
    assert "[[secrets.ZAP_TOKEN:" in kept  # the step's input says which secret
    assert run.outputs["zap"]["json"] == {"echo": f"Bearer {SECRET_MASK}"}


async def test_the_value_current_at_the_step_is_sent() -> None:
    convo = FlowConversation(zap_flow(), secrets={"ZAP_TOKEN": "old-value-1"})
    await convo.says("one")
    convo.expect_http(headers={"Authorization": "Bearer old-value-1"})
    convo.set_secret("ZAP_TOKEN", "new-value-2")
    await convo.says("two")
    convo.expect_http(headers={"Authorization": "Bearer new-value-2"})


async def test_an_unknown_secret_takes_the_error_port_naming_it() -> None:
    convo = FlowConversation(zap_flow())
    await convo.says("hello")
    convo.expect_reply(r"secret 'ZAP_TOKEN' is not set")
    convo.expect_no_http()
    run = convo.run
    assert run is not None
    step = next(s for s in convo.harness.store.steps[run.id].values() if s.node_id == "zap")
    assert step.status == "failed" and step.attempt == 1  # not retried


async def test_a_retry_after_a_change_sends_the_new_value() -> None:
    flow = zap_flow()
    flow["nodes"][1]["retry"] = {"attempts": 2, "backoff_s": 60}
    convo = FlowConversation(flow, secrets={"ZAP_TOKEN": "first-value"})
    convo.harness.effects.respond(status=503, times=1)
    await convo.says("hello")
    convo.set_secret("ZAP_TOKEN", "rotated-value")
    await convo.wait(minutes=2)
    sent = [c.command.headers["Authorization"] for c in convo.harness.effects.http]
    assert sent == ["Bearer first-value", "Bearer rotated-value"]
    convo.expect_run("completed")


async def test_placeholder_text_from_a_message_is_not_a_secret() -> None:
    """An SMS cannot smuggle a secret into a request: a placeholder is good in its own run
    only, and its tag is an HMAC under the Effects' key."""
    convo = FlowConversation(zap_flow(), secrets={"ZAP_TOKEN": TOKEN, "OTHER": "db-pass"})
    forged = "[[secrets.OTHER:0123456789abcdef]]"
    await convo.says(forged)
    call = convo.expect_http()
    assert call.command.json["text"] == forged
    # A real placeholder of another run does not resolve here either.
    other_run = convo.harness.effects.secret_tokens.placeholder("run_elsewhere", "OTHER")
    await convo.says(other_run)
    assert convo.expect_http().command.json["text"] == other_run


async def test_sms_text_does_not_see_secrets() -> None:
    flow = zap_flow()
    flow["nodes"][2]["config"]["text"] = "token={{ secrets.ZAP_TOKEN }}"
    problems = validate_flow(flow)
    assert [(p.node_id, p.field, p.code) for p in problems] == [
        ("oops", "config.text", "secret_reference")
    ]
    # Run anyway (as if published unchecked): there ``secrets`` is not defined, it
    # renders empty; the value never reaches an SMS.
    convo = FlowConversation(secrets={"ZAP_TOKEN": TOKEN})
    version = convo.harness.flows.publish("zap", flow)
    convo.harness.index = TriggerIndex.build([PublishedFlow("zap", version, flow)])
    convo.harness.effects.respond(status=500)
    await convo.says("hello")
    convo.expect_reply(r"^token=$")


@pytest.mark.parametrize(
    ("template", "allowed", "problem"),
    [
        # plain uses, alone in their {{ }}
        ("Bearer {{ secrets.ZAP_TOKEN }}", True, None),
        ("{{ secrets.A }}:{{ secrets.B_2 }}", True, None),
        # no secrets at all
        ("{{ trigger.data.body | upper }}", False, None),
        # a field that does not allow them
        ("{{ secrets.ZAP_TOKEN }}", False, "only in http.request"),
        # a filter or an operator would see the placeholder
        ("{{ secrets.ZAP_TOKEN | b64encode }}", True, "on its own"),
        ("{{ 'Basic ' ~ secrets.ZAP_TOKEN }}", True, "on its own"),
        ("{% if secrets.ZAP_TOKEN %}x{% endif %}", True, "on its own"),
        ("{{ secrets['ZAP_TOKEN'] }}", True, "on its own"),
        ("{{ secrets }}", True, "on its own"),
        # a name that cannot be a secret's
        ("{{ secrets.zap_token }}", True, "secret name 'zap_token'"),
    ],
)
def test_secret_problems(template: str, allowed: bool, problem: str | None) -> None:
    found = secret_problems(template, allowed=allowed)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_resolve_and_mask() -> None:
    tokens = SecretTokens(b"key")
    mark = tokens.placeholder("run_1", "API_KEY")
    command = HttpCommand(
        url=f"https://x.example/?k={mark}",
        method="POST",
        headers={"X-Key": mark},
        json={"nested": [mark, {"deeper": f"a{mark}b"}]},
        run_id="run_1",
    )
    assert tokens.names(command) == {"API_KEY"}
    value = 'p@ss/"w"rd'
    sent, used = tokens.resolve(command, {"API_KEY": value})
    assert sent.url == f"https://x.example/?k={value}"
    assert sent.headers == {"X-Key": value}
    assert sent.json == {"nested": [value, {"deeper": f"a{value}b"}]}
    assert used == [value]
    with pytest.raises(UnknownSecretError, match="API_KEY"):
        tokens.resolve(command, {})
    answer = HttpOutcome(
        status=200,
        body=json.dumps({"raw": value, "url": "https://x.example/?k=p%40ss%2F%22w%22rd"}),
        headers={"X-Echo": value},
        error=None,
    )
    masked = mask_outcome(answer, used)
    assert value not in masked.body and "p%40ss" not in masked.body
    assert json.loads(masked.body)["raw"] == SECRET_MASK
    assert masked.headers == {"X-Echo": SECRET_MASK}
