"""Run and step records: what the hub persists for every flow run (see :mod:`flows.ports`).

A :class:`Run` is the whole state of one execution, small enough for one table row with a
few JSON columns; a :class:`Step` is one attempt of one node, an append-only history row
(only the run's current step is ever updated). ``to_dict``/``from_dict`` give JSON-ready
dicts (datetimes as ISO 8601) for stores that keep records as documents.

``to_dict`` copies no more than it must, because a store serializes the dict right away:
it builds new containers for what the engine changes in place (``Run.vars``,
``outputs``, ``visits``, ``seen_events``) and shares the values the engine only ever
replaces, never changes (the trigger, contact and inbound route, a step's input and
output, and every value inside those containers). Treat the dict as read-only, or copy
what you change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "RUN_STATUSES",
    "STEP_STATUSES",
    "TERMINAL_STATUSES",
    "Run",
    "RunStatus",
    "Step",
    "StepStatus",
    "Wait",
    "WaitKind",
    "idempotency_key",
]

RunStatus = Literal["running", "waiting", "completed", "failed", "cancelled"]
StepStatus = Literal["running", "waiting", "succeeded", "failed", "cancelled"]
#: reply = sms.wait_for_reply, delay = flow.delay, retry = backoff before another attempt.
WaitKind = Literal["reply", "delay", "retry"]

RUN_STATUSES: tuple[RunStatus, ...] = ("running", "waiting", "completed", "failed", "cancelled")
STEP_STATUSES: tuple[StepStatus, ...] = ("running", "waiting", "succeeded", "failed", "cancelled")
#: A run in one of these never changes again (except a replay from the failed step).
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def idempotency_key(run_id: str, node_id: str, visit: int) -> str:
    """Key of the effects of a node's ``visit``-th activation in a run.

    The first visit is ``run:node`` (DESIGN.md); a node entered again in a loop gets
    ``run:node:2``, ``run:node:3``… Retries and replays of the same visit reuse its key,
    so the send pipeline can tell a repeat from a new message."""
    return f"{run_id}:{node_id}" if visit <= 1 else f"{run_id}:{node_id}:{visit}"


@dataclass(kw_only=True)
class Wait:
    """Why a waiting run waits and what ends the wait.

    Columns for a SQL store: ``wait_kind``, ``wait_token``, ``wait_until`` (indexed, for
    sweeps), ``wait_phone`` + ``wait_channel_id`` (indexed, for replies), the rest JSON."""

    kind: WaitKind
    #: Names the timer; a timer whose token is not the run's current one is stale.
    token: str
    #: When the timer fires (reply timeout, end of delay, next retry).
    until: datetime
    #: The step that waits (for a retry: the failed attempt).
    step_seq: int
    #: reply waits: the contact whose next SMS ends the wait.
    contact_phone: str | None = None
    #: reply waits: the channel the reply must arrive on (None = any channel).
    channel_id: str | None = None
    #: Port the step leaves by when the timer fires.
    timeout_port: str = "timeout"
    #: Port the step leaves by when the reply arrives.
    reply_port: str = "reply"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kind": self.kind,
            "token": self.token,
            "until": self.until.isoformat(),
            "step_seq": self.step_seq,
            "contact_phone": self.contact_phone,
            "channel_id": self.channel_id,
            "timeout_port": self.timeout_port,
            "reply_port": self.reply_port,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Wait:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "until": _dt(data["until"])})


@dataclass(kw_only=True)
class Run:
    """One execution of one flow version."""

    id: str
    flow_id: str
    #: The pinned version: the run executes this definition to the end.
    flow_version: int
    status: RunStatus
    #: The event that started the run (the hub's outbound event payload, or an HTTP body).
    trigger: dict[str, Any]
    trigger_node_id: str
    created_at: datetime
    updated_at: datetime
    #: ``{"phone", "opted_out", "tags", "fields"}`` or None for runs without a contact.
    contact: dict[str, Any] | None = None
    #: Latest inbound SMS of the run (trigger or reply): where ``sms.reply`` answers.
    inbound: dict[str, Any] | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    #: node id -> latest output (``steps.<id>.output`` in templates).
    outputs: dict[str, Any] = field(default_factory=dict)
    #: node id -> how many times the run entered the node (drives idempotency keys).
    visits: dict[str, int] = field(default_factory=dict)
    #: Steps created so far; the next step's ``seq``.
    step_count: int = 0
    #: The step being executed or waited on, or the last one once the run has ended.
    current_seq: int | None = None
    wait: Wait | None = None
    #: Why the run failed, or why it was cancelled.
    error: str | None = None
    finished_at: datetime | None = None
    #: Set on a run started by ``replay(..., mode="from_start")``.
    replay_of: str | None = None
    #: Ids of reply events already consumed, so a redelivered reply is not taken twice.
    seen_events: list[str] = field(default_factory=list)
    #: Compare-and-swap counter: a store saves only if the stored revision still matches.
    revision: int = 0

    @property
    def is_terminal(self) -> bool:
        """True once the run has completed, failed or been cancelled."""
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see the module docstring for what it shares with the run)."""
        return {
            "id": self.id,
            "flow_id": self.flow_id,
            "flow_version": self.flow_version,
            "status": self.status,
            "trigger": self.trigger,
            "trigger_node_id": self.trigger_node_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "contact": self.contact,
            "inbound": self.inbound,
            "vars": dict(self.vars),
            "outputs": dict(self.outputs),
            "visits": dict(self.visits),
            "step_count": self.step_count,
            "current_seq": self.current_seq,
            "wait": self.wait.to_dict() if self.wait is not None else None,
            "error": self.error,
            "finished_at": _iso(self.finished_at),
            "replay_of": self.replay_of,
            "seen_events": list(self.seen_events),
            "revision": self.revision,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for name in ("created_at", "updated_at", "finished_at"):
            values[name] = _dt(values.get(name))
        wait = values.get("wait")
        values["wait"] = Wait.from_dict(wait) if wait else None
        return cls(**values)


@dataclass(kw_only=True)
class Step:
    """One attempt of one node in a run; ``(run_id, seq)`` is unique."""

    run_id: str
    #: 0, 1, 2… in execution order; a retry is a new step with the same node and visit.
    seq: int
    node_id: str
    node_type: str
    #: 1 for the first attempt of a visit, 2 for its first retry…
    attempt: int
    #: Which activation of the node this is (1 the first time the run enters it).
    visit: int
    #: Carried by every effect of the step (see :func:`idempotency_key`).
    idempotency_key: str
    status: StepStatus
    started_at: datetime
    #: The node's config after rendering its templates.
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    #: The port the step left by (None while unfinished, and for steps that end the run).
    port: str | None = None
    error: str | None = None
    finished_at: datetime | None = None
    #: True on a stored step whose input / output the flow's ``settings`` stripped
    #: (``store_step_data: false`` or ``redact``); the key is left out when False.
    redacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (shares ``input`` and ``output``, which the engine never changes
        in place)."""
        out = {
            "run_id": self.run_id,
            "seq": self.seq,
            "node_id": self.node_id,
            "node_type": self.node_type,
            "attempt": self.attempt,
            "visit": self.visit,
            "idempotency_key": self.idempotency_key,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "input": self.input,
            "output": self.output,
            "port": self.port,
            "error": self.error,
            "finished_at": _iso(self.finished_at),
        }
        if self.redacted:
            out["redacted"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        """Inverse of :meth:`to_dict`."""
        started = _dt(data["started_at"])
        assert started is not None
        return cls(**{**data, "started_at": started, "finished_at": _dt(data.get("finished_at"))})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
