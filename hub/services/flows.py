"""Flows in the hub: drafts, versions, publishing, import and export.

A flow is a draft (any document with a name; problems allowed) plus immutable numbered
versions; publishing freezes the draft as the next version and points new runs at it.
The engine (``flows``) validates; dispatch of events into runs is
``hub.services.flow_dispatch``, run history ``hub.services.runs``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows import Problem, export_flow, parse_flow, validate_flow
from hub.context import Hub
from hub.errors import NotFound, Unprocessable
from hub.ids import new_id, new_token
from hub.models import Flow, FlowVersion, utcnow
from hub.schemas import has_nul
from hub.services.flow_schedules import ensure_schedules

log = logging.getLogger("smshub.flows")


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
    await _changed(hub)
    return version


async def set_enabled(hub: Hub, flow_id: str, enabled: bool) -> Flow:
    """Pause or resume a flow (paused flows start no new runs; running ones continue)."""
    async with hub.db.write() as session:
        flow = await get_flow(session, flow_id)
        flow.enabled = enabled
        flow.updated_at = utcnow()
        session.add(flow)
    await _changed(hub)
    return flow


async def _changed(hub: Hub) -> None:
    """A flow was published, paused or resumed: rebuild the trigger index (every process
    learns of it) and queue the next tick of each published schedule (a paused or
    unpublished schedule's queued tick finds itself stale and does nothing)."""
    await hub.flows.refresh()
    try:
        await ensure_schedules(hub)
    except Exception as exc:  # the change is stored; the periodic schedule_ensure heals
        log.warning("could not queue the next schedule ticks: %s", exc)


async def delete_flow(hub: Hub, flow_id: str) -> None:
    """Soft-delete: no new runs; history and running runs stay."""
    async with hub.db.write() as session:
        flow = await get_flow(session, flow_id)
        flow.deleted_at = utcnow()
        flow.updated_at = utcnow()
        session.add(flow)
    await hub.flows.refresh()


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
