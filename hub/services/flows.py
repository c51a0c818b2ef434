"""Flows in the hub: drafts, versions, the trigger index, dispatch jobs, runs.

The engine (``flows``) does the work; this module stores flows, wires the engine's ports
to the database and queue, and turns public events into engine calls through jobs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import constant_time_equals
from flows import (
    ContactView,
    Executor,
    Problem,
    PublishedFlow,
    Run,
    Step,
    TriggerIndex,
    dispatch_event,
    export_flow,
    parse_flow,
    start_http_run,
    validate_flow,
)
from hub.context import Hub
from hub.errors import ApiError, Conflict, NotFound, Unprocessable
from hub.ids import new_id, new_token
from hub.models import Contact, Event, Flow, FlowRun, FlowVersion, utcnow
from hub.queue.base import enqueue
from hub.queue.jobs import job, periodic
from hub.schemas import has_nul
from hub.services.events import emit, event_sink
from hub.services.flow_effects import HubEffects, contact_view
from hub.services.flow_store import HubClock, QueueScheduler, SqlFlowSource, SqlRunStore, run_of
from hub.services.keywords import classify, is_compliance_reply

log = logging.getLogger("smshub.flows")

#: Seconds a process trusts its trigger index before checking for newly published flows.
INDEX_TTL_S = 2.0


class FlowsRuntime:
    """One process's engine: the executor on the hub's ports, and the trigger index."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store = SqlRunStore(hub)
        self.executor = Executor(
            store=self.store,
            flows=SqlFlowSource(hub),
            effects=HubEffects(hub),
            scheduler=QueueScheduler(hub),
            clock=HubClock(hub),
            step_limit=hub.settings.flow_step_limit,
            new_run_id=lambda: new_id("run"),
        )
        self._index: TriggerIndex | None = None
        self._index_stamp: tuple[Any, ...] | None = None
        self._index_checked = 0.0

    def invalidate(self) -> None:
        """Rebuild the index on next use (a flow was published, paused or deleted here)."""
        self._index = None

    async def index(self) -> TriggerIndex:
        """The trigger index of every enabled flow's published version."""
        now = time.monotonic()
        if self._index is not None and now - self._index_checked < INDEX_TTL_S:
            return self._index
        self._index_checked = now
        async with self.hub.db.read() as session:
            stamp = tuple(
                (
                    await session.execute(sa.select(sa.func.count(), sa.func.max(Flow.updated_at)))
                ).one()
            )
            if self._index is not None and stamp == self._index_stamp:
                return self._index
            rows = await session.execute(
                sa.select(
                    col(FlowVersion.flow_id), col(FlowVersion.version), col(FlowVersion.definition)
                )
                .join(Flow, col(Flow.id) == col(FlowVersion.flow_id))
                .where(
                    col(Flow.published_version) == col(FlowVersion.version),
                    col(Flow.enabled).is_(True),
                    col(Flow.deleted_at).is_(None),
                )
            )
            published = [
                PublishedFlow(fid, version, definition) for fid, version, definition in rows.all()
            ]
        self._index = TriggerIndex.build(published)
        self._index_stamp = stamp
        return self._index


def runtime(hub: Hub) -> FlowsRuntime:
    """The process's flows runtime (created on first use)."""
    existing = getattr(hub, "_flows_runtime", None)
    if existing is None:
        existing = FlowsRuntime(hub)
        hub._flows_runtime = existing  # type: ignore[attr-defined]
    return existing


# --- flows and versions --------------------------------------------------------------------


def problems_error(problems: list[Problem], message: str) -> Unprocessable:
    """A 422 listing every problem with its node."""
    return Unprocessable(message, code="invalid_flow", details=[p.to_dict() for p in problems])


def _check_storable(document: Any) -> None:
    """A draft may have problems, but it must be a flow document at all."""
    if has_nul(document):
        raise Unprocessable(
            "a flow must not contain NUL (\\x00) characters",
            code="invalid_flow",
            details=[{"node_id": None, "field": None, "code": "nul", "message": "NUL character"}],
        )
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise Unprocessable(
            "a flow is a JSON object with a name, nodes and edges",
            code="invalid_flow",
            details=[
                {"node_id": None, "field": "name", "code": "invalid_flow", "message": "required"}
            ],
        )
    for key in ("nodes", "edges"):
        if not isinstance(document.get(key, []), list):
            raise Unprocessable(
                f"{key} must be a list",
                code="invalid_flow",
                details=[
                    {
                        "node_id": None,
                        "field": key,
                        "code": "invalid_flow",
                        "message": "must be a list",
                    }
                ],
            )


@dataclass
class FlowView:
    """A flow with its current problems (for the API and UI)."""

    flow: Flow
    problems: list[Problem]


async def create_flow(hub: Hub, document: dict[str, Any], *, allow_problems: bool) -> FlowView:
    """Store a new flow's draft; 422 when it has problems unless saving a draft anyway."""
    _check_storable(document)
    problems = validate_flow(document)
    if problems and not allow_problems:
        raise problems_error(problems, f"flow has {len(problems)} problem(s)")
    now = utcnow()
    flow = Flow(
        id=new_id("flw"),
        name=document["name"][:200],
        draft=document,
        http_token_enc=hub.box.encrypt(new_token(18)),
        created_at=now,
        updated_at=now,
    )
    async with hub.db.write() as session:
        session.add(flow)
    return FlowView(flow, problems)


async def get_flow(session: AsyncSession, flow_id: str) -> Flow:
    """A live flow or 404."""
    flow = await session.get(Flow, flow_id)
    if flow is None or flow.deleted_at is not None:
        raise NotFound(f"flow {flow_id!r} not found", code="flow_not_found")
    return flow


async def load_flow_view(hub: Hub, flow_id: str) -> FlowView:
    """A flow and its draft's problems."""
    async with hub.db.read() as session:
        flow = await get_flow(session, flow_id)
    return FlowView(flow, validate_flow(flow.draft))


async def list_flows(hub: Hub) -> list[Flow]:
    """Every live flow, newest first."""
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Flow).where(col(Flow.deleted_at).is_(None)).order_by(col(Flow.id).desc())
        )
        return list(rows.scalars())


async def save_draft(hub: Hub, flow_id: str, document: dict[str, Any]) -> FlowView:
    """Replace a flow's draft (problems allowed; publishing checks them)."""
    _check_storable(document)
    async with hub.db.write() as session:
        flow = await get_flow(session, flow_id)
        flow.draft = document
        flow.name = document["name"][:200]
        flow.updated_at = utcnow()
        session.add(flow)
    return FlowView(flow, validate_flow(document))


async def publish(hub: Hub, flow_id: str, note: str = "") -> FlowVersion:
    """Freeze the draft as a new version and make it the one new runs use."""
    async with hub.db.write() as session:
        flow = await get_flow(session, flow_id)
        problems = validate_flow(flow.draft)
        if problems:
            raise problems_error(
                problems, f"cannot publish: the draft has {len(problems)} problem(s)"
            )
        version = FlowVersion(
            flow_id=flow.id, version=flow.latest_version + 1, definition=flow.draft, note=note
        )
        flow.latest_version = version.version
        flow.published_version = version.version
        flow.updated_at = utcnow()
        session.add(flow)
        session.add(version)
    runtime(hub).invalidate()
    return version


async def set_enabled(hub: Hub, flow_id: str, enabled: bool) -> Flow:
    """Pause or resume a flow (paused flows start no new runs; running ones continue)."""
    async with hub.db.write() as session:
        flow = await get_flow(session, flow_id)
        flow.enabled = enabled
        flow.updated_at = utcnow()
        session.add(flow)
    runtime(hub).invalidate()
    return flow


async def delete_flow(hub: Hub, flow_id: str) -> None:
    """Soft-delete: no new runs; history and running runs stay."""
    async with hub.db.write() as session:
        flow = await get_flow(session, flow_id)
        flow.deleted_at = utcnow()
        flow.updated_at = utcnow()
        session.add(flow)
    runtime(hub).invalidate()


async def list_versions(hub: Hub, flow_id: str) -> list[FlowVersion]:
    """A flow's versions, newest first."""
    async with hub.db.read() as session:
        await get_flow(session, flow_id)
        rows = await session.execute(
            sa.select(FlowVersion)
            .where(col(FlowVersion.flow_id) == flow_id)
            .order_by(col(FlowVersion.version).desc())
        )
        return list(rows.scalars())


async def get_version(hub: Hub, flow_id: str, version: int) -> FlowVersion:
    """One version or 404."""
    async with hub.db.read() as session:
        await get_flow(session, flow_id)
        row = (
            await session.execute(
                sa.select(FlowVersion).where(
                    col(FlowVersion.flow_id) == flow_id, col(FlowVersion.version) == version
                )
            )
        ).scalar()
    if row is None:
        raise NotFound(f"flow {flow_id!r} has no version {version}", code="version_not_found")
    return row


async def export_document(hub: Hub, flow_id: str, version: int | None) -> str:
    """The canonical, diff-able JSON of the draft or of a version."""
    if version is None:
        view = await load_flow_view(hub, flow_id)
        document: dict[str, Any] = view.flow.draft
    else:
        document = (await get_version(hub, flow_id, version)).definition
    try:
        return export_flow(parse_flow(document))
    except ValueError:
        # A draft too broken to parse is exported as stored.
        import json

        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


async def import_flow(
    hub: Hub, document: dict[str, Any], *, publish_it: bool
) -> tuple[FlowView, int | None]:
    """Create a flow from an exported document, optionally publishing it."""
    view = await create_flow(hub, document, allow_problems=not publish_it)
    version = (await publish(hub, view.flow.id)).version if publish_it else None
    return view, version


def http_token(hub: Hub, flow: Flow) -> str:
    """The secret token of the flow's trigger.http URL."""
    return hub.box.decrypt(flow.http_token_enc or "")


def http_trigger_url(hub: Hub, flow: Flow) -> str:
    """The URL Zapier / Make / n8n call to start the flow."""
    return f"{hub.settings.public_url.rstrip('/')}/hooks/flows/{flow.id}/{http_token(hub, flow)}"


# --- dispatch: events into runs ------------------------------------------------------------


@event_sink
async def flows_sink(hub: Hub, session: AsyncSession, payloads: list[dict[str, Any]]) -> None:
    """Queue flow work for the SMS events a flow could want (compliance keywords never
    reach flows; an event no trigger matches and no run waits for costs no job)."""
    index = await runtime(hub).index()
    waiting = await _phones_waited_on(
        session,
        {
            str(p["data"]["from"])
            for p in payloads
            if p.get("type") == "sms.received" and (p.get("data") or {}).get("from")
        },
    )
    for payload in payloads:
        type_ = payload.get("type", "")
        if not type_.startswith("sms."):
            continue
        event_id = payload["id"]
        data = payload.get("data") or {}
        if type_ == "sms.received":
            if classify(data.get("body")) == "stop":
                await enqueue(
                    session,
                    "flow_cancel_waiting",
                    {"phone": data.get("from")},
                    key=f"stop-runs:{event_id}",
                )
                continue
            if is_compliance_reply(data.get("body")):
                continue
        wanted = bool(index.match(payload))
        if not wanted and type_ == "sms.received":
            wanted = data.get("from") in waiting
        if wanted:
            await enqueue(session, "flow_dispatch", {"event_id": event_id}, key=f"flows:{event_id}")


async def _phones_waited_on(session: AsyncSession, phones: set[str]) -> set[str]:
    """Which of these numbers some run waits for a reply from (on any channel)."""
    if not phones:
        return set()
    found = await session.execute(
        sa.select(col(FlowRun.wait_phone)).where(
            col(FlowRun.status) == "waiting", col(FlowRun.wait_phone).in_(sorted(phones))
        )
    )
    return {str(phone) for phone in found.scalars()}


async def _contact(hub: Hub, phone: str | None) -> ContactView | None:
    if not phone:
        return None
    async with hub.db.read() as session:
        row = (
            await session.execute(sa.select(Contact).where(col(Contact.phone) == phone))
        ).scalar()
    return contact_view(row) if row is not None else ContactView(phone=phone)


@job("flow_dispatch")
async def flow_dispatch(hub: Hub, event_id: str) -> None:
    """Continue the contact's waiting run with an inbound SMS, or start matching flows."""
    async with hub.db.read() as session:
        event = await session.get(Event, event_id)
    if event is None:
        return
    payload = dict(event.payload)
    data = payload.get("data") or {}
    phone = data.get("from") if payload.get("type") == "sms.received" else data.get("to")
    flows = runtime(hub)
    result = await dispatch_event(
        payload,
        executor=flows.executor,
        index=await flows.index(),
        contact=await _contact(hub, phone),
    )
    runs = list(result.started)
    if result.reply_run_id:
        reply_run = await flows.store.get_run(result.reply_run_id)
        runs += [reply_run] if reply_run else []
    await announce(hub, runs)


@job("flow_timer")
async def flow_timer(hub: Hub, run_id: str, token: str) -> None:
    """A flow timer is due (delay end, reply timeout, retry backoff)."""
    run = await runtime(hub).executor.fire_timer(run_id, token)
    await announce(hub, [run])


@job("flow_advance")
async def flow_advance(hub: Hub, run_id: str) -> None:
    """Carry a run on (after a replay, or to resume one a crash interrupted)."""
    run = await runtime(hub).executor.advance(run_id)
    await announce(hub, [run])


@job("flow_cancel_waiting")
async def flow_cancel_waiting(hub: Hub, phone: str | None) -> None:
    """STOP: runs waiting for this contact's reply are cancelled (they could only nag)."""
    if not phone:
        return
    async with hub.db.read() as session:
        ids = (
            await session.execute(
                sa.select(col(FlowRun.id)).where(
                    col(FlowRun.wait_phone) == phone,
                    col(FlowRun.status) == "waiting",
                )
            )
        ).scalars()
        run_ids = list(ids)
    executor = runtime(hub).executor
    runs = [await executor.cancel(run_id, "contact opted out (STOP)") for run_id in run_ids]
    await announce(hub, runs)


#: A run "running" untouched this long lost its worker (crash); the sweep carries it on.
STALE_RUNNING_S = 60.0
#: A wait this far past its end lost its timer job; the sweep re-arms it.
OVERDUE_WAIT_S = 30.0
#: Runs one sweep looks at (the next sweep takes the rest).
SWEEP_BATCH = 200


@periodic("flow_sweep", 60.0)
async def flow_sweep(hub: Hub) -> None:
    """Recovery: queue an advance for runs a crash left running, or waiting past their end."""
    now = utcnow()
    async with hub.db.write() as session:
        rows = await session.execute(
            sa.select(col(FlowRun.id))
            .where(
                sa.or_(
                    sa.and_(
                        col(FlowRun.status) == "running",
                        col(FlowRun.updated_at) < now - timedelta(seconds=STALE_RUNNING_S),
                    ),
                    sa.and_(
                        col(FlowRun.status) == "waiting",
                        col(FlowRun.wait_until) < now - timedelta(seconds=OVERDUE_WAIT_S),
                    ),
                )
            )
            .limit(SWEEP_BATCH)
        )
        for run_id in rows.scalars():
            await enqueue(session, "flow_advance", {"run_id": run_id}, key=f"advance:{run_id}")
    hub.queue.notify()


async def announce(hub: Hub, runs: list[Run]) -> None:
    """Emit flow.run.completed / flow.run.failed once for every run that has ended."""
    ended = [r for r in runs if r.status in ("completed", "failed")]
    if not ended:
        return
    async with hub.db.write() as session:
        for run in ended:
            await emit(
                session,
                type=f"flow.run.{run.status}",
                channel_id="hub",
                dedupe_key=f"run:{run.id}:{run.status}",
                data={
                    "run_id": run.id,
                    "flow_id": run.flow_id,
                    "flow_version": run.flow_version,
                    "status": run.status,
                    "error": run.error,
                    "contact": run.contact,
                    "vars": run.vars,
                },
            )
    hub.queue.notify()


# --- runs ----------------------------------------------------------------------------------


async def list_runs(
    hub: Hub,
    *,
    limit: int,
    cursor: str | None,
    flow_id: str | None = None,
    status: str | None = None,
    contact: str | None = None,
) -> tuple[list[FlowRun], str | None]:
    """Runs, newest first, filtered."""
    stmt = sa.select(FlowRun)
    if flow_id:
        stmt = stmt.where(col(FlowRun.flow_id) == flow_id)
    if status:
        stmt = stmt.where(col(FlowRun.status) == status)
    if contact:
        stmt = stmt.where(col(FlowRun.contact_phone) == contact.replace(" ", ""))
    if cursor:
        stmt = stmt.where(col(FlowRun.created_at) < _cursor_time(cursor))
    stmt = stmt.order_by(col(FlowRun.created_at).desc(), col(FlowRun.id).desc()).limit(limit + 1)
    async with hub.db.read() as session:
        rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].created_at.isoformat() if more and rows else None)


def _cursor_time(cursor: str) -> Any:
    from datetime import datetime

    try:
        return datetime.fromisoformat(cursor)
    except ValueError as exc:
        raise Unprocessable("cursor is not a value this API gave out", code="bad_cursor") from exc


async def get_run(hub: Hub, run_id: str) -> tuple[Run, list[Step]]:
    """A run and its steps, or 404."""
    flows = runtime(hub)
    run = await flows.store.get_run(run_id)
    if run is None:
        raise NotFound(f"run {run_id!r} not found", code="run_not_found")
    return run, await flows.store.list_steps(run_id)


async def replay_run(hub: Hub, run_id: str, mode: str) -> Run:
    """Replay from the failed step (same run) or from the start (a new run)."""
    from flows import ReplayError

    await get_run(hub, run_id)
    try:
        run = await runtime(hub).executor.replay(run_id, mode)  # type: ignore[arg-type]
    except ReplayError as exc:
        raise Conflict(str(exc), code="cannot_replay") from exc
    await announce(hub, [run])
    return run


async def cancel_run(hub: Hub, run_id: str) -> Run:
    """Cancel a run that has not ended."""
    await get_run(hub, run_id)
    return await runtime(hub).executor.cancel(run_id, "cancelled by user")


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
    flows = runtime(hub)
    run = await start_http_run(
        flow_id, body, executor=flows.executor, index=await flows.index(), request_id=request_id
    )
    if run is None:
        raise HookNotPublished(
            "this flow has no published HTTP trigger (publish a version with trigger.http)"
        )
    await announce(hub, [run])
    return run


class HookNotPublished(ApiError):
    status_code = 409
    code = "not_published"


__all__ = ["FlowsRuntime", "run_of", "runtime"]
