"""``flow.start`` on the hub (``Effects.start_flow``): another flow's published version,
for one contact or for every member of a group.

What holds, and where the code makes it hold:

* One contact: the run id is derived from the step's idempotency key
  (:meth:`flows.ports.StartFlowCommand.child_run_id`), and ``Executor.start_run`` with a
  known id continues the stored run instead of starting another: a retried or replayed
  step starts nothing twice. The child runs to its first wait (or its end) inside the
  parent's step, so the parent's output has the child's status.
* A group: a flow broadcast (:mod:`hub.services.broadcasts`) whose id is derived from the
  key (``ON CONFLICT (id) DO NOTHING``), with the parent run in ``broadcasts.origin``: the
  broadcast machinery resolves the members once, paces the runs in batches, skips
  blocked and opted-out contacts, and gives each run a ``flow.started`` trigger.
* An unknown, deleted, unpublished or paused flow, an unknown group or a bad number is an
  ``EffectError(retryable=False)``: the node's ``error`` port, with the reason.
"""

from __future__ import annotations

import uuid
from typing import Any

from flows import FlowNotFoundError
from flows.ports import (
    FLOW_STARTED,
    ContactView,
    EffectError,
    StartFlowCommand,
    StartFlowOutcome,
    TriggerEvent,
)
from hub.context import Hub
from hub.errors import Conflict, NotFound, Unprocessable
from hub.event_data import iso
from hub.models import Flow, utcnow
from hub.phone import InvalidNumber, to_e164
from hub.services.broadcasts import BroadcastSpec, insert_broadcast
from hub.services.contacts import contact_for
from hub.services.flow_contacts import contact_view_of
from hub.store import Unit, fetch_one

__all__ = ["start_flow", "start_from_api"]


async def start_flow(hub: Hub, command: StartFlowCommand) -> StartFlowOutcome:
    """Start the flow for the command's contact or group (a repeated key: the first start)."""
    version = await hub.store.read(_published_version(command.flow_id))
    if command.group_id is not None:
        return await _start_for_group(hub, command)
    return await _start_for_contact(hub, command, version)


async def start_from_api(
    hub: Hub, flow_id: str, phone: str, params: dict[str, Any], key: str | None
) -> StartFlowOutcome:
    """``POST /api/v1/flows/{id}/start``: the published flow for one contact, as a
    ``flow.start`` node would start it (``trigger.data.parent_*`` empty). The same ``key``
    returns the first run; without a key every call starts a new run. 404 unknown flow,
    409 not published or paused, 422 a bad number."""
    async with hub.db.read() as session:
        flow = await session.get(Flow, flow_id)
    if flow is None or flow.deleted_at is not None:
        raise NotFound(f"flow {flow_id!r} not found", code="flow_not_found")
    if flow.published_version is None:
        raise Conflict(f"flow {flow_id!r} is not published", code="not_published")
    if not flow.enabled:
        raise Conflict(f"flow {flow_id!r} is paused", code="flow_paused")
    try:
        e164 = to_e164(phone, hub.settings.default_region)
    except InvalidNumber as exc:
        raise Unprocessable(
            str(exc), code="invalid_phone", details=[{"field": "phone", "message": str(exc)}]
        ) from exc
    # Namespaced so an API key never meets a flow.start step's key (run id + node id).
    scoped = f"api:{flow_id}:{key}" if key else f"api:{uuid.uuid4().hex}"
    command = StartFlowCommand(flow_id=flow_id, phone=e164, params=params, idempotency_key=scoped)
    try:
        return await start_flow(hub, command)
    except EffectError as exc:  # paused or unpublished since the check above
        raise Conflict(str(exc), code="flow_not_startable") from exc


def _published_version(flow_id: str) -> Unit[int]:
    """Unit: the flow's published version; EffectError when it cannot be started."""
    row = yield from fetch_one(
        "SELECT published_version, enabled, deleted_at FROM flows WHERE id = ?", (flow_id,)
    )
    if row is None or row[2] is not None:
        raise EffectError(f"flow.start: unknown flow {flow_id!r}", retryable=False)
    if row[0] is None:
        raise EffectError(f"flow.start: flow {flow_id!r} is not published", retryable=False)
    if not row[1]:
        raise EffectError(f"flow.start: flow {flow_id!r} is paused", retryable=False)
    return int(row[0])


def _contact(phone: str) -> Unit[ContactView]:
    """Unit: the contact of a number (created on first sight) as flows see it."""
    yield from contact_for(phone)
    view = yield from contact_view_of(phone)
    assert view is not None
    return view


async def _start_for_contact(hub: Hub, command: StartFlowCommand, version: int) -> StartFlowOutcome:
    view: ContactView | None = None
    if command.phone is not None:
        try:
            phone = to_e164(command.phone, hub.settings.default_region)
        except InvalidNumber as exc:
            raise EffectError(f"flow.start: {exc}", retryable=False) from exc
        view = await hub.store.write(_contact(phone))
    run_id = command.child_run_id()
    trigger: TriggerEvent = {
        "id": f"{FLOW_STARTED}:{run_id}",
        "type": FLOW_STARTED,
        "timestamp": iso(utcnow()),
        "data": {
            **command.trigger_data(),
            "phone": view.phone if view else None,
            "contact_id": view.id if view else None,
        },
    }
    try:
        run = await hub.flows.executor.start_run(
            command.flow_id, version, trigger, contact=view, run_id=run_id
        )
    except (FlowNotFoundError, ValueError) as exc:  # the version vanished, no trigger node
        raise EffectError(f"flow.start: {exc}", retryable=False) from exc
    return StartFlowOutcome(run_id=run.id, status=run.status)


async def _start_for_group(hub: Hub, command: StartFlowCommand) -> StartFlowOutcome:
    group_id = command.group_id or ""
    found = await hub.store.read(fetch_one("SELECT name FROM groups WHERE id = ?", (group_id,)))
    if found is None:
        raise EffectError(f"flow.start: unknown group {group_id!r}", retryable=False)
    broadcast_id = command.child_broadcast_id()
    spec = BroadcastSpec(
        name=f"{command.flow_id} for {found[0]} (flow.start in {command.parent_flow_id})"[:200],
        flow_id=command.flow_id,
        group_ids=(group_id,),
        origin=command.trigger_data(),
    )
    now = utcnow()
    await hub.store.write(insert_broadcast(hub, broadcast_id, spec, None, now, now))
    return StartFlowOutcome(broadcast_id=broadcast_id)
