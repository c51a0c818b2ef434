"""The flow editor's test run: the real engine on a throwaway in-memory harness.

Nothing leaves the process: SMS and HTTP requests are recorded by the fakes of
:mod:`flows.memory` (HTTP answers 200), and the harness lives in this process's memory
for a few minutes so the tester can reply to a waiting flow or let its timer run out.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flows import Run, validate_flow
from flows.testing import FlowHarness

#: Harnesses kept per process, and for how long after their last use.
MAX_SESSIONS = 50
SESSION_TTL_S = 900.0
#: The flow id the tested draft gets inside its harness.
TEST_FLOW_ID = "draft"
#: Longest wait one "let time pass" may skip (30 days, the longest a node waits).
MAX_ADVANCE_S = 30 * 86_400.0


class TestRunError(ValueError):
    """Bad test-run input; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class _Session:
    harness: FlowHarness
    contact: str
    channel_id: str
    used: float


_sessions: OrderedDict[str, _Session] = OrderedDict()


def _evict() -> None:
    now = time.monotonic()
    for key in [k for k, s in _sessions.items() if now - s.used > SESSION_TTL_S]:
        _sessions.pop(key, None)
    while len(_sessions) > MAX_SESSIONS:
        _sessions.popitem(last=False)


def _session(sid: str) -> _Session:
    _evict()
    found = _sessions.get(sid)
    if found is None:
        raise TestRunError("this test run has expired; start a new one")
    found.used = time.monotonic()
    _sessions.move_to_end(sid)
    return found


async def start(
    document: dict[str, Any],
    *,
    mode: str,
    text: str = "",
    sender: str = "+15550001234",
    channel_id: str = "ch_test",
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish ``document`` in a new harness and feed it one inbound SMS or HTTP call."""
    problems = validate_flow(document)
    if problems:
        return {"session": None, "problems": [p.to_dict() for p in problems], "runs": []}
    if mode not in ("sms", "http"):
        raise TestRunError("mode must be sms or http", "mode")
    sender = sender.strip() or "+15550001234"
    if mode == "sms" and not text.strip():
        raise TestRunError("type the SMS the contact sends", "text")
    harness = FlowHarness(start=datetime.now(UTC), channel_id=channel_id or "ch_test")
    harness.publish(document, flow_id=TEST_FLOW_ID)
    if mode == "sms":
        await harness.inbound(text, from_=sender, channel_id=channel_id or None)
    else:
        await harness.http(TEST_FLOW_ID, body or {})
    sid = secrets.token_urlsafe(12)
    _sessions[sid] = _Session(harness, sender, channel_id, time.monotonic())
    _evict()
    return await report(sid)


async def reply(sid: str, text: str) -> dict[str, Any]:
    """The contact sends another SMS (continues a run waiting for a reply)."""
    found = _session(sid)
    if not text.strip():
        raise TestRunError("type the reply", "text")
    await found.harness.inbound(text, from_=found.contact, channel_id=found.channel_id)
    return await report(sid)


async def advance(sid: str, seconds: float | None = None) -> dict[str, Any]:
    """Let time pass: ``seconds``, or until the next timer (a delay or reply timeout) fires."""
    found = _session(sid)
    harness = found.harness
    if seconds is None:
        due = harness.scheduler.next_at()
        if due is None:
            raise TestRunError("nothing is waiting for time to pass")
        seconds = max(0.0, (due - harness.clock.now()).total_seconds()) + 0.001
    if not 0 <= seconds <= MAX_ADVANCE_S:
        raise TestRunError("seconds must be between 0 and 30 days", "seconds")
    await harness.advance_time(seconds)
    return await report(sid)


async def report(sid: str) -> dict[str, Any]:
    """Everything the harness saw: runs with their steps, SMS, HTTP calls, transcript."""
    harness = _sessions[sid].harness
    runs = [await _run_view(harness, run) for run in harness.runs()]
    return {
        "session": sid,
        "problems": [],
        "matched": bool(runs),
        "runs": runs,
        "sms": [
            {
                "to": s.command.to,
                "text": s.command.text,
                "status": s.outcome.status,
                "reason": s.outcome.reason,
                "node_id": s.command.node_id,
            }
            for s in harness.effects.sms
        ],
        "http": [
            {
                "method": c.command.method,
                "url": c.command.url,
                "status": c.outcome.status,
                "json": c.command.json,
            }
            for c in harness.effects.http
        ],
        "transcript": list(harness.log),
        "next_timer": _iso(harness.scheduler.next_at()),
        "now": harness.clock.now().isoformat(),
    }


async def _run_view(harness: FlowHarness, run: Run) -> dict[str, Any]:
    steps = await harness.steps(run.id)
    return {
        "id": run.id,
        "status": run.status,
        "error": run.error,
        "vars": run.vars,
        "waiting": run.wait.to_dict() if run.wait else None,
        "steps": [s.to_dict() for s in steps],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
