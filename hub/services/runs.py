"""Run history: runs listed and filtered, one run with its steps, replay and cancel."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col

from flows import ReplayError, Run, Step
from hub.context import Hub
from hub.errors import Conflict, NotFound, Unprocessable
from hub.models import FlowRun
from hub.paging import keyset_page, parse_time


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
    return await keyset_page(
        hub.db,
        stmt,
        key=col(FlowRun.created_at),
        limit=limit,
        cursor=cursor,
        parse=parse_time,
        encode=datetime.isoformat,
        then_by=[col(FlowRun.id)],
    )


async def get_run(hub: Hub, run_id: str) -> tuple[Run, list[Step]]:
    """A run and its steps, or 404."""
    flows = hub.flows
    run = await flows.store.get_run(run_id)
    if run is None:
        raise NotFound(f"run {run_id!r} not found", code="run_not_found")
    return run, await flows.store.list_steps(run_id)


async def replay_run(hub: Hub, run_id: str, mode: str) -> Run:
    """Replay from the failed step (same run) or from the start (a new run)."""
    if mode not in ("from_failed", "from_start"):
        raise Unprocessable(
            "mode is from_failed or from_start",
            details=[{"field": "mode", "message": "use from_failed or from_start"}],
        )
    await get_run(hub, run_id)
    try:
        run = await hub.flows.executor.replay(
            run_id, "from_start" if mode == "from_start" else "from_failed"
        )
    except ReplayError as exc:
        raise Conflict(str(exc), code="cannot_replay") from exc
    return run


async def cancel_run(hub: Hub, run_id: str) -> Run:
    """Cancel a run that has not ended."""
    await get_run(hub, run_id)
    return await hub.flows.executor.cancel(run_id, "cancelled by user")
