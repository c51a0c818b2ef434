"""Dispatch: public events (and HTTP calls) into flow runs, and the jobs that carry runs on.

The way in: :func:`flows_sink` sees every event batch inside the transaction that wrote
it and queues a ``flow_dispatch`` job only for events a published trigger matches or a
waiting run wants (an event nobody wants costs no job); STOP queues the cancellation of
the contact's waiting runs instead, and compliance keywords never reach flows. The
``flow_dispatch`` job then hands the event to the engine (``flows.dispatch_event``).
Timers, resumes and the recovery sweep are jobs here too. A run that ends emits
``flow.run.completed`` / ``flow.run.failed`` in its last save (``hub.services.flow_store``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from connectors.base import constant_time_equals
from flows import ContactView, Run, dispatch_event, start_http_run
from flows.nodes.trigger_run_failed import RUN_FAILED_EVENT
from hub.context import Hub
from hub.errors import ApiError, NotFound
from hub.models import Flow, utcnow
from hub.queue.base import enqueue_job
from hub.services.flow_contacts import contact_view_of
from hub.services.flows import http_token
from hub.services.keywords import classify, is_compliance_reply
from hub.store import Unit, as_json, fetch_all, fetch_value, placeholders

log = logging.getLogger("smshub.flows")

#: Job: hand one event to the engine (continue a waiting run, or start matching flows).
FLOW_DISPATCH = "flow_dispatch"
#: Job: a run's timer is due (delay end, reply timeout, retry backoff).
FLOW_TIMER = "flow_timer"
#: Job: carry a run on (after a replay, or one a crash interrupted).
FLOW_ADVANCE = "flow_advance"
#: Job: STOP cancels the runs waiting for that contact's reply.
FLOW_CANCEL_WAITING = "flow_cancel_waiting"
#: Periodic job: recovery of runs a crash left running or waiting past their end.
FLOW_SWEEP = "flow_sweep"


def flows_sink(hub: Hub, payloads: list[dict[str, Any]]) -> Unit[None]:
    """Sink: queue flow work for the SMS events a flow could want (compliance keywords never
    reach flows; an event no trigger matches and no run waits for costs no job), and for
    the hub events a published trigger wants (``flow.run.failed``, ``device.*``). Group
    filters are left out here (the contact is not loaded): the dispatch job applies them."""
    index = hub.flows.cached_index()
    keywords = hub.settings.keywords
    waiting, blocked = yield from _phones_waited_on(
        {
            str(p["data"]["from"])
            for p in payloads
            if p.get("type") == "sms.received" and (p.get("data") or {}).get("from")
        },
    )
    lease = hub.queue.lease()
    for payload in payloads:
        type_ = payload.get("type", "")
        if not type_.startswith("sms.") and not index.wants(type_):
            continue
        event_id = payload["id"]
        data = payload.get("data") or {}
        if type_ == "sms.received":
            if data.get("from") in blocked:
                continue  # a blocked contact's SMS is stored, but reaches no flow
            if classify(data.get("body"), keywords) == "stop":
                yield from enqueue_job(
                    FLOW_CANCEL_WAITING,
                    {"phone": data.get("from")},
                    key=f"stop-runs:{event_id}",
                    lease=lease,
                )
                continue
            if is_compliance_reply(data.get("body"), keywords):
                continue
        wanted = bool(index.match(payload))
        if not wanted and type_ == "sms.received":
            wanted = data.get("from") in waiting
        if wanted:
            yield from enqueue_job(
                FLOW_DISPATCH, {"event_id": event_id}, key=f"flows:{event_id}", lease=lease
            )


def _phones_waited_on(phones: set[str]) -> Unit[tuple[set[str], set[str]]]:
    """Which of these numbers some run waits for a reply from (on any channel), and which
    are blocked contacts: one statement for the batch."""
    if not phones:
        return set(), set()
    ordered = sorted(phones)
    marks = placeholders(len(ordered))
    found = yield from fetch_all(
        f"SELECT wait_phone, 0 FROM runs WHERE status = 'waiting' AND wait_phone IN ({marks}) "
        f"UNION ALL SELECT phone, 1 FROM contacts WHERE blocked AND phone IN ({marks})",
        [*ordered, *ordered],
    )
    waiting = {str(row[0]) for row in found if not row[1]}
    return waiting, {str(row[0]) for row in found if row[1]}


def _event_and_contact(event_id: str) -> Unit[tuple[dict[str, Any], ContactView | None] | None]:
    """Unit: an event's payload and the contact it is about (as flows see contacts)."""
    raw = yield from fetch_value("SELECT payload FROM events WHERE id = ?", (event_id,))
    if raw is None:
        return None
    payload: dict[str, Any] = as_json(raw)
    data = payload.get("data") or {}
    if payload.get("type") == RUN_FAILED_EVENT:
        yield from _name_flow(data)
        phone = (data.get("contact") or {}).get("phone")
    elif payload.get("type") == "sms.received":
        phone = data.get("from")
    else:
        phone = data.get("to")
    if not phone:
        return payload, None
    view = yield from contact_view_of(str(phone))
    return payload, view or ContactView(phone=str(phone))


def _name_flow(data: dict[str, Any]) -> Unit[None]:
    """Unit: a failed run's event gets its flow's name (``trigger.data.flow_name``)."""
    name = yield from fetch_value("SELECT name FROM flows WHERE id = ?", (data.get("flow_id"),))
    data["flow_name"] = str(name) if name is not None else None


async def flow_dispatch(hub: Hub, event_id: str) -> None:
    """Job: continue the contact's waiting run with an inbound SMS, or start matching flows."""
    found = await hub.store.read(_event_and_contact(event_id))
    if found is None:
        return
    payload, contact = found
    flows = hub.flows
    # A run that ends announces itself in its last save (hub.services.flow_store).
    await dispatch_event(
        payload, executor=flows.executor, index=await flows.index(), contact=contact
    )


async def flow_timer(hub: Hub, run_id: str, token: str) -> None:
    """Job: a flow timer is due (delay end, reply timeout, retry backoff)."""
    await hub.flows.executor.fire_timer(run_id, token)


async def flow_advance(hub: Hub, run_id: str) -> None:
    """Job: carry a run on (after a replay, or to resume one a crash interrupted)."""
    await hub.flows.executor.advance(run_id)


async def flow_cancel_waiting(hub: Hub, phone: str | None) -> None:
    """Job: on STOP, runs waiting for this contact's reply are cancelled (they could only nag)."""
    if not phone:
        return
    found = await hub.store.read(
        fetch_all("SELECT id FROM runs WHERE wait_phone = ? AND status = 'waiting'", (phone,))
    )
    run_ids = [str(row[0]) for row in found]
    executor = hub.flows.executor
    for run_id in run_ids:
        await executor.cancel(run_id, "contact opted out (STOP)")


#: A run "running" untouched this long lost its worker (crash); the sweep carries it on.
STALE_RUNNING_S = 60.0
#: A wait this far past its end lost its timer job; the sweep re-arms it.
OVERDUE_WAIT_S = 30.0
#: Runs one sweep looks at (the next sweep takes the rest).
SWEEP_BATCH = 200


async def flow_sweep(hub: Hub) -> None:
    """Periodic job: queue an advance for runs a crash left running or waiting past their end."""
    await hub.store.write(_sweep(hub))


def _sweep(hub: Hub) -> Unit[None]:
    now = utcnow()
    stale = yield from fetch_all(
        "SELECT id FROM runs WHERE (status = 'running' AND updated_at < ?) "
        "OR (status = 'waiting' AND wait_until < ?) LIMIT ?",
        (
            now - timedelta(seconds=STALE_RUNNING_S),
            now - timedelta(seconds=OVERDUE_WAIT_S),
            SWEEP_BATCH,
        ),
    )
    lease = hub.queue.lease()
    for (run_id,) in stale:
        yield from enqueue_job(
            FLOW_ADVANCE, {"run_id": run_id}, key=f"advance:{run_id}", lease=lease
        )


async def start_from_http(
    hub: Hub, flow_id: str, token: str, body: dict[str, Any], request_id: str | None
) -> Run:
    """trigger.http: start a run with the request body as ``trigger``."""
    async with hub.db.read() as session:
        flow = await session.get(Flow, flow_id)
    # Same answer for a wrong token and a missing flow: the URL is the secret.
    if (
        flow is None
        or flow.deleted_at is not None
        or not constant_time_equals(token, http_token(hub, flow))
    ):
        raise NotFound("no flow at this URL", code="flow_hook_not_found")
    flows = hub.flows
    run = await start_http_run(
        flow_id, body, executor=flows.executor, index=await flows.index(), request_id=request_id
    )
    if run is None:
        raise HookNotPublished(
            "this flow has no published HTTP trigger (publish a version with trigger.http)"
        )
    return run


class HookNotPublished(ApiError):
    status_code = 409
    code = "not_published"
