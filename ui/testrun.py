"""The flow editor's test run: the real engine on a throwaway in-memory harness.

Nothing leaves the harness: SMS and HTTP requests are recorded by the fakes of
:mod:`flows.memory` (HTTP answers 200). Secrets are the hub's names with a masked fake
value (``********``): a name the hub has not is the step's error as in a real run, and no
value is ever read, kept in the test run's row or shown.

So that the tester can reply to a waiting flow or let its timer run out through *any*
API process, no harness is kept between requests:
the ``ui_test_runs`` row holds the tested draft, the harness's start time and every input
so far, and each request replays them on a fresh harness (the engine is deterministic:
fake clock, numbered run ids), adds its own input and saves the longer list. Rows unused
for :data:`SESSION_TTL_S` are dropped when the next test run starts.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from flows import SECRET_MASK, ContactUpdate, Executor, Run, validate_flow
from flows.testing import FlowHarness
from hub.context import Hub
from hub.models import EditorTestRun, Flow, FlowSecret, FlowVersion, Group, utcnow

#: How long a test run is kept after its last use, and the most inputs it may take.
SESSION_TTL_S = 900.0
MAX_INPUTS = 200
#: The flow id the tested draft gets inside its harness.
TEST_FLOW_ID = "draft"
#: What a test run starts with: an inbound SMS, an HTTP call, the schedule's next tick, or
#: a failed run of another flow (``body`` overrides the sample's fields).
MODES = ("sms", "http", "schedule", "run_failed", "device")
#: Longest wait one "let time pass" may skip (30 days, the longest a node waits).
MAX_ADVANCE_S = 30 * 86_400.0


class TestRunError(ValueError):
    """Bad test-run input; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _harness(doc: dict[str, Any]) -> FlowHarness:
    """A fresh harness with the draft published, numbering its runs (so a replay gives
    every run the id it had)."""
    harness = FlowHarness(start=datetime.fromisoformat(doc["start"]), channel_id=doc["channel"])
    numbers = itertools.count(1)
    harness.executor = Executor(
        store=harness.store,
        flows=harness.flows,
        effects=harness.effects,
        scheduler=harness.scheduler,
        clock=harness.clock,
        new_run_id=lambda: f"run_test_{next(numbers)}",
        secrets=harness.effects.secret_tokens,
    )
    harness.publish(doc["document"], flow_id=TEST_FLOW_ID)
    harness.effects.secrets = dict.fromkeys(doc.get("secrets", []), SECRET_MASK)
    # What flow.start and the group nodes may use: the hub's groups (no members: the
    # test contact is new) and the published flows the draft starts, as they were when
    # the test run began.
    for group_id, name in doc.get("groups", {}).items():
        harness.effects.add_group(group_id, name)
    for flow_id, definition in doc.get("flows", {}).items():
        harness.publish(definition, flow_id=flow_id)
    return harness


async def _hub_context(hub: Hub, document: dict[str, Any]) -> dict[str, Any]:
    """The groups (id -> name), the published versions of the flows the draft's
    ``flow.start`` nodes name (literally, not by template) and the secrets' names."""
    wanted = {
        str(node.get("config", {}).get("flow_id", "")).strip()
        for node in document.get("nodes", [])
        if isinstance(node, dict) and node.get("type") == "flow.start"
    }
    wanted = {flow_id for flow_id in wanted if flow_id and "{" not in flow_id}
    async with hub.db.read() as session:
        groups = (await session.execute(sa.select(col(Group.id), col(Group.name)))).all()
        flows: dict[str, Any] = {}
        for flow_id in sorted(wanted):
            flow = await session.get(Flow, flow_id)
            if flow is None or flow.deleted_at is not None or flow.published_version is None:
                continue
            found = await session.execute(
                sa.select(col(FlowVersion.definition)).where(
                    col(FlowVersion.flow_id) == flow_id,
                    col(FlowVersion.version) == flow.published_version,
                )
            )
            flows[flow_id] = found.scalar_one()
        names = (await session.execute(sa.select(col(FlowSecret.name)))).scalars().all()
    secret_names = sorted(str(name) for name in names)
    return {"groups": {str(g): str(n) for g, n in groups}, "flows": flows, "secrets": secret_names}


async def _apply(harness: FlowHarness, doc: dict[str, Any], step: dict[str, Any]) -> None:
    """Feed one recorded input to the harness."""
    if "sms" in step:
        await harness.inbound(step["sms"], from_=doc["contact"], channel_id=doc["channel_id"])
    elif "http" in step:
        await harness.http(TEST_FLOW_ID, step["http"])
    elif "tick" in step:
        await _tick(harness, doc["contact"])
    elif "failure" in step:
        await harness.run_failure(doc["contact"], **step["failure"])
    elif "device" in step:
        await harness.device_status(**step["device"])
    else:
        await harness.advance_time(float(step["advance"]))


async def _join_trigger_groups(harness: FlowHarness, doc: dict[str, Any]) -> None:
    """A group-limited SMS trigger is tried by a member: the test contact joins the first
    group each of the draft's ``trigger.sms_received`` nodes names in ``groups``."""
    for node in doc["document"].get("nodes", []):
        if not isinstance(node, dict) or node.get("type") != "trigger.sms_received":
            continue
        groups = (node.get("config") or {}).get("groups") or []
        if groups and isinstance(groups[0], str):
            harness.effects.add_group(groups[0], harness.effects.groups.get(groups[0], ""))
            update = ContactUpdate(phone=doc["contact"], add_groups=(groups[0],))
            await harness.effects.update_contact(update)


async def _tick(harness: FlowHarness, contact: str) -> None:
    """The draft's schedule ticks; a group schedule's only member is the test contact."""
    entries = [e for e in harness.index.schedules() if e.match.flow_id == TEST_FLOW_ID]
    if not entries:
        raise TestRunError("the flow has no trigger.schedule", "mode")
    group = entries[0].config.group_id
    if group is not None:
        harness.effects.add_group(group, harness.effects.groups.get(group, ""))
        await harness.effects.update_contact(ContactUpdate(phone=contact, add_groups=(group,)))
    await harness.tick(TEST_FLOW_ID, entries[0].match.node_id)


def _failure(document: dict[str, Any], body: dict[str, Any] | None) -> dict[str, Any]:
    """The sample failed run a run_failed test starts with: of the first flow the draft's
    trigger names (else a sample flow), overridden by the tester's ``body``."""
    watched = [
        flow_id
        for node in document.get("nodes", [])
        if isinstance(node, dict) and node.get("type") == "trigger.run_failed"
        for flow_id in (node.get("config") or {}).get("flows") or []
    ]
    return {"flow_id": watched[0] if watched else "flw_sample", **(body or {})}


async def _replayed(doc: dict[str, Any]) -> FlowHarness:
    harness = _harness(doc)
    await _join_trigger_groups(harness, doc)
    for step in doc["inputs"]:
        await _apply(harness, doc, step)
    return harness


async def _load(hub: Hub, sid: str) -> dict[str, Any]:
    async with hub.db.read() as session:
        row = await session.get(EditorTestRun, sid[:40])
    if row is None or utcnow() - row.used_at > timedelta(seconds=SESSION_TTL_S):
        raise TestRunError("this test run has expired; start a new one")
    return dict(row.doc)


async def _save(hub: Hub, sid: str, doc: dict[str, Any], *, new: bool = False) -> None:
    now = utcnow()
    async with hub.db.write() as session:
        if new:
            cutoff = now - timedelta(seconds=SESSION_TTL_S)
            await session.execute(
                sa.delete(EditorTestRun).where(col(EditorTestRun.used_at) < cutoff)
            )
            session.add(EditorTestRun(id=sid, doc=doc, used_at=now))
        else:
            await session.execute(
                sa.update(EditorTestRun)
                .where(col(EditorTestRun.id) == sid)
                .values(doc=doc, used_at=now)
            )


async def _step(
    hub: Hub, sid: str, doc: dict[str, Any], harness: FlowHarness, step: dict[str, Any]
) -> dict[str, Any]:
    """Apply a new input, record it, and report."""
    if len(doc["inputs"]) >= MAX_INPUTS:
        raise TestRunError("this test run has had enough inputs; start a new one")
    await _apply(harness, doc, step)
    doc["inputs"].append(step)
    await _save(hub, sid, doc)
    return await report(sid, harness)


async def start(
    hub: Hub,
    document: dict[str, Any],
    *,
    mode: str,
    text: str = "",
    sender: str = "+15550001234",
    channel_id: str = "ch_test",
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish ``document`` in a new harness and feed it one inbound SMS, HTTP call,
    schedule tick or failed run (``mode``)."""
    problems = validate_flow(document)
    if problems:
        return {"session": None, "problems": [p.to_dict() for p in problems], "runs": []}
    if mode not in MODES:
        raise TestRunError(f"mode must be one of {', '.join(MODES)}", "mode")
    sender = sender.strip() or "+15550001234"
    if mode == "sms" and not text.strip():
        raise TestRunError("type the SMS the contact sends", "text")
    doc: dict[str, Any] = {
        "document": document,
        "start": datetime.now(UTC).isoformat(),
        "channel": channel_id or "ch_test",
        "channel_id": channel_id or None,
        "contact": sender,
        "inputs": [_first_input(mode, document, text, body)],
        **(await _hub_context(hub, document)),
    }
    harness = await _replayed(doc)
    sid = secrets.token_urlsafe(12)
    await _save(hub, sid, doc, new=True)
    return await report(sid, harness)


def _first_input(
    mode: str, document: dict[str, Any], text: str, body: dict[str, Any] | None
) -> dict[str, Any]:
    if mode == "sms":
        return {"sms": text}
    if mode == "schedule":
        return {"tick": True}
    if mode == "run_failed":
        return {"failure": _failure(document, body)}
    if mode == "device":
        status = (body or {}).get("status", "offline")
        if status not in ("offline", "online"):
            raise TestRunError("the device's status is offline or online", "device")
        return {"device": body or {}}
    return {"http": body or {}}


async def reply(hub: Hub, sid: str, text: str) -> dict[str, Any]:
    """The contact sends another SMS (continues a run waiting for a reply)."""
    doc = await _load(hub, sid)
    if not text.strip():
        raise TestRunError("type the reply", "text")
    return await _step(hub, sid, doc, await _replayed(doc), {"sms": text})


async def advance(hub: Hub, sid: str, seconds: float | None = None) -> dict[str, Any]:
    """Let time pass: ``seconds``, or until the next timer (a delay or reply timeout) fires."""
    doc = await _load(hub, sid)
    harness = await _replayed(doc)
    if seconds is None:
        due = harness.scheduler.next_at()
        if due is None:
            raise TestRunError("nothing is waiting for time to pass")
        seconds = max(0.0, (due - harness.clock.now()).total_seconds()) + 0.001
    if not 0 <= seconds <= MAX_ADVANCE_S:
        raise TestRunError("seconds must be between 0 and 30 days", "seconds")
    return await _step(hub, sid, doc, harness, {"advance": seconds})


async def report(sid: str, harness: FlowHarness) -> dict[str, Any]:
    """Everything the harness saw: runs with their steps, SMS, HTTP calls, transcript."""
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
        # "draft", or the flow a flow.start node started
        "flow_id": run.flow_id,
        "status": run.status,
        "error": run.error,
        "vars": run.vars,
        "waiting": run.wait.to_dict() if run.wait else None,
        "steps": [s.to_dict() for s in steps],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
