"""Runs: the filtered list, one run drawn on its flow graph, replay and cancel."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from flows import TERMINAL_STATUSES
from hub.errors import ApiError, NotFound
from hub.phone import InvalidNumber, to_e164
from hub.services import flows as flow_service
from hub.services import runs as run_service
from ui import readmodels
from ui.auth import hub_of, require_user
from ui.pages import read_form, render, see_other

RUN_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
PAGE_SIZE = 50


class RunsController(Controller):
    path = "/runs"
    guards = [require_user]
    include_in_schema = False

    @get("/")
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        flow: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        contact: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        hub = hub_of(request)
        errors: dict[str, str] = {}
        flow = (flow or "").strip()[:40] or None
        status = (status or "").strip() or None
        if status and status not in RUN_STATUSES:
            errors["status"] = "pick one of the listed statuses"
            status = None
        phone = None
        if contact and contact.strip():
            try:
                phone = to_e164(contact.strip()[:32], hub.settings.default_region)
            except InvalidNumber as exc:
                errors["contact"] = str(exc)
        rows: list[Any] = []
        next_cursor = None
        if not errors:
            try:
                rows, next_cursor = await run_service.list_runs(
                    hub,
                    limit=PAGE_SIZE,
                    cursor=(cursor or "")[:64] or None,
                    flow_id=flow,
                    status=status,
                    contact=phone,
                )
            except ApiError as exc:
                errors["cursor"] = exc.message
        filters = {"flow": flow or "", "status": status or "", "contact": contact or ""}
        return render(
            request,
            "runs/list.html",
            status_code=422 if errors else 200,
            runs=rows,
            next_cursor=next_cursor,
            filters=filters,
            errors=errors,
            statuses=RUN_STATUSES,
            flows=await flow_service.list_flows(hub),
            flow_names=await readmodels.flow_names(hub),
        )

    @get("/{run_id:str}")
    async def detail(self, request: Request[Any, Any, Any], run_id: FromPath[str]) -> Template:
        """A run on its flow graph, with every step."""
        hub = hub_of(request)
        run, steps = await run_service.get_run(hub, run_id)
        try:
            version = await flow_service.get_version(hub, run.flow_id, run.flow_version)
            definition: dict[str, Any] | None = version.definition
        except NotFound:
            definition = None
        names = await readmodels.flow_names(hub)
        return render(
            request,
            "runs/detail.html",
            run=run,
            steps=steps,
            flow_name=names.get(run.flow_id, run.flow_id),
            can_cancel=run.status not in TERMINAL_STATUSES,
            can_replay_failed=run.status == "failed",
            run_data={
                "run": run.to_dict(),
                "steps": [s.to_dict() for s in steps],
                "definition": definition,
            },
        )

    @post("/{run_id:str}/replay", status_code=303)
    async def replay(self, request: Request[Any, Any, Any], run_id: FromPath[str]) -> Response[Any]:
        """Replay from the failed step (same run) or from the start (a new run)."""
        form = await read_form(request)
        mode = form.get("mode", "from_failed")
        if mode not in ("from_failed", "from_start"):
            mode = "from_failed"
        run = await run_service.replay_run(hub_of(request), run_id, mode)
        return see_other(f"/runs/{run.id}")

    @post("/{run_id:str}/cancel", status_code=303)
    async def cancel(self, request: Request[Any, Any, Any], run_id: FromPath[str]) -> Response[Any]:
        """Cancel a run that has not ended."""
        await run_service.cancel_run(hub_of(request), run_id)
        return see_other(f"/runs/{run_id}")
