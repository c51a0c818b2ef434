"""The dashboard: today's traffic, channel health, recent failed runs."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from hub.services import flows as flow_service
from hub.services import runs as run_service
from ui import readmodels
from ui.auth import hub_of, require_user
from ui.pages import render


class DashboardController(Controller):
    path = "/"
    guards = [require_user]
    include_in_schema = False

    @get("/")
    async def dashboard(self, request: Request[Any, Any, Any]) -> Template:
        hub = hub_of(request)
        failed_runs, _ = await run_service.list_runs(hub, limit=6, cursor=None, status="failed")
        return render(
            request,
            "dashboard.html",
            counts=await readmodels.today_counts(hub),
            health=await readmodels.channel_health(hub),
            failed_runs=failed_runs,
            recent=await readmodels.recent_messages(hub, 8),
            flow_names=await readmodels.flow_names(hub),
            channel_names=await readmodels.channel_names(hub),
            flows=await flow_service.list_flows(hub),
        )
