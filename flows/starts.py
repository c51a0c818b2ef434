"""The values of ``Effects.start_flow`` (the ``flow.start`` node): what to start, for whom,
and what was started; re-exported by :mod:`flows.ports`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FLOW_STARTED", "StartFlowCommand", "StartFlowOutcome"]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:26]


#: The ``type`` of the trigger of a run another flow's ``flow.start`` node started.
FLOW_STARTED = "flow.started"


@dataclass(frozen=True, kw_only=True)
class StartFlowCommand:
    """Start another flow's published version (``flow.start``): for one contact
    (``phone``), for every member of a group (``group_id``: one run each, paced like a
    broadcast), or for nobody (neither set).

    Same key = same start: a repeat must start nothing new and return the first outcome
    (the hub derives the run id, or the broadcast id, from the key). An unknown,
    unpublished or paused flow and an unknown group are ``EffectError(retryable=False)``.
    Each run gets a :data:`FLOW_STARTED` trigger whose ``data`` is :meth:`trigger_data`
    plus ``phone`` / ``contact_id`` (and ``broadcast_id`` for a group)."""

    flow_id: str
    phone: str | None = None
    group_id: str | None = None
    #: Handed to the child as ``trigger.data.params``.
    params: Mapping[str, Any] = field(default_factory=dict)
    #: How many ``flow.start`` hops led to the child (1 = started by a run that was not
    #: itself started by one); the node refuses chains deeper than its limit.
    depth: int = 1
    idempotency_key: str = ""
    run_id: str = ""
    #: The parent run's flow and node.
    parent_flow_id: str = ""
    node_id: str = ""

    def child_run_id(self, member: str = "") -> str:
        """The run this start makes (for ``member``, a contact id, in a group start): the
        same on every repeat of the key, so a retried step starts nothing twice."""
        return "run_" + _digest("flow.start", self.idempotency_key, member)

    def child_broadcast_id(self) -> str:
        """The broadcast a group start makes (the same on every repeat of the key)."""
        return "bc_" + _digest("flow.start", self.idempotency_key)

    def trigger_data(self) -> dict[str, Any]:
        """The part of the child's ``trigger.data`` every run of this start shares."""
        return {
            "flow_id": self.flow_id,
            "parent_run_id": self.run_id,
            "parent_flow_id": self.parent_flow_id,
            "parent_node_id": self.node_id,
            "depth": self.depth,
            "params": dict(self.params),
        }


@dataclass(frozen=True, kw_only=True)
class StartFlowOutcome:
    """What a :class:`StartFlowCommand` started: one run, or a broadcast for a group."""

    run_id: str | None = None
    #: The child run's status once it reached its first wait or its end (one contact).
    status: str | None = None
    broadcast_id: str | None = None
