"""Flows, versions, runs and node types (``/api/v1``), and flow trigger hooks (``/hooks``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.types import ControllerRouterHandler
from pydantic import BaseModel, Field

from flows import Run, Step, node_types_catalog, validate_flow
from hub.api.deps import INT32_MAX, ApiController, Limit, require_api_key
from hub.context import Hub
from hub.delivery.outbound import flow_signing_secret as signing_secret_of
from hub.errors import BadRequest
from hub.models import Flow, FlowRun, FlowVersion
from hub.schemas import ErrorOut, In, Page, view
from hub.services import flow_dispatch as dispatch_service
from hub.services import flow_starts as start_service
from hub.services import flows as flow_service
from hub.services import runs as run_service

#: A published version's number, in a path or a query.
VersionPath = Annotated[
    int, PathParameter(ge=1, le=INT32_MAX, description="A published version (1, 2, …).")
]
VersionQuery = Annotated[
    int | None,
    QueryParameter(ge=1, le=INT32_MAX, description="A published version (default: the draft)."),
]


class FlowOut(BaseModel):
    id: str
    name: str
    draft: dict[str, Any]
    problems: list[dict[str, Any]] = Field(description="What stops the draft from publishing.")
    published_version: int | None
    latest_version: int
    enabled: bool
    http_trigger_url: str = Field(description="POST here to start the flow (trigger.http).")
    created_at: datetime
    updated_at: datetime


class FlowSummary(BaseModel):
    id: str
    name: str
    published_version: int | None
    latest_version: int
    enabled: bool
    updated_at: datetime


class VersionOut(BaseModel):
    flow_id: str
    version: int
    note: str
    created_at: datetime
    definition: dict[str, Any] | None = None


class PublishIn(In):
    note: str = Field(default="", max_length=500)


class EnabledIn(In):
    enabled: bool


class RunSummary(BaseModel):
    id: str
    flow_id: str
    flow_version: int
    status: str
    contact_phone: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RunOut(BaseModel):
    run: dict[str, Any]
    steps: list[dict[str, Any]]


class ReplayIn(In):
    mode: str = Field(default="from_failed", pattern="^(from_failed|from_start)$")


class HookOut(BaseModel):
    run_id: str
    status: str


class StartIn(In):
    phone: str = Field(min_length=1, max_length=32, description="The contact (created if new).")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Handed to the run as `trigger.data.params`."
    )
    idempotency_key: str | None = Field(
        default=None, max_length=200, description="Same key → the same run, nothing started again."
    )


class StartOut(BaseModel):
    run_id: str
    status: str = Field(description="The run's status at its first wait or its end.")


#: The start's own errors (the API reference lists them with the usual ones).
START_ERRORS = {
    409: ResponseSpec(
        data_container=ErrorOut,
        description="not_published / flow_paused / flow_not_startable: publish or resume it",
        generate_examples=False,
    ),
    422: ResponseSpec(
        data_container=ErrorOut,
        description="invalid_phone, or a field out of bounds",
        generate_examples=False,
    ),
}


def flow_out(hub: Hub, flow_view: flow_service.FlowView) -> FlowOut:
    """API view of a flow."""
    return view(
        FlowOut,
        flow_view.flow,
        problems=[p.to_dict() for p in flow_view.problems],
        http_trigger_url=flow_service.http_trigger_url(hub, flow_view.flow),
    )


def version_out(row: FlowVersion, *, full: bool) -> VersionOut:
    """API view of a version."""
    return view(VersionOut, row, definition=row.definition if full else None)


def run_summary(row: FlowRun) -> RunSummary:
    """List view of a run."""
    return view(RunSummary, row, error=row.doc.get("error"))


def run_out(run: Run, steps: list[Step]) -> RunOut:
    """Detail view of a run with every step."""
    return RunOut(run=run.to_dict(), steps=[s.to_dict() for s in steps])


def _summary(flow: Flow) -> FlowSummary:
    return view(FlowSummary, flow)


class FlowController(ApiController):
    path = "/flows"
    tags = ["flows"]

    @post(
        "/", status_code=201, summary="Create a flow (422 with every problem, unless ?draft=true)"
    )
    async def create(
        self,
        hub: NamedDependency[Hub],
        data: JSONBody[dict[str, Any]],
        draft: Annotated[bool, QueryParameter(description="Save even with problems.")] = False,
    ) -> FlowOut:
        view = await flow_service.create_flow(hub, data, allow_problems=draft)
        return flow_out(hub, view)

    @post("/validate", status_code=200, summary="Problems of a flow document, without saving")
    async def validate(self, data: JSONBody[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p.to_dict() for p in validate_flow(data)]

    @post("/import", status_code=201, summary="Import an exported flow")
    async def import_(
        self,
        hub: NamedDependency[Hub],
        data: JSONBody[dict[str, Any]],
        publish: Annotated[bool, QueryParameter(description="Publish it at once.")] = False,
    ) -> FlowOut:
        view, _version = await flow_service.import_flow(hub, data, publish_it=publish)
        return flow_out(hub, await flow_service.load_flow_view(hub, view.flow.id))

    @get("/", summary="List flows")
    async def list_flows(self, hub: NamedDependency[Hub]) -> list[FlowSummary]:
        return [_summary(f) for f in await flow_service.list_flows(hub)]

    @get("/{flow_id:str}", summary="A flow with its draft and problems")
    async def get_flow(self, hub: NamedDependency[Hub], flow_id: FromPath[str]) -> FlowOut:
        return flow_out(hub, await flow_service.load_flow_view(hub, flow_id))

    @put("/{flow_id:str}", summary="Save the draft (problems allowed)")
    async def save(
        self, hub: NamedDependency[Hub], flow_id: FromPath[str], data: JSONBody[dict[str, Any]]
    ) -> FlowOut:
        return flow_out(hub, await flow_service.save_draft(hub, flow_id, data))

    @delete("/{flow_id:str}", status_code=204, summary="Delete a flow (runs and history stay)")
    async def remove(self, hub: NamedDependency[Hub], flow_id: FromPath[str]) -> None:
        await flow_service.delete_flow(hub, flow_id)

    @post("/{flow_id:str}/publish", status_code=201, summary="Publish the draft as a new version")
    async def publish(
        self,
        hub: NamedDependency[Hub],
        flow_id: FromPath[str],
        data: JSONBody[PublishIn | None] = None,
    ) -> VersionOut:
        version = await flow_service.publish(hub, flow_id, data.note if data else "")
        return version_out(version, full=False)

    @post("/{flow_id:str}/enabled", status_code=200, summary="Pause or resume a flow")
    async def enable(
        self, hub: NamedDependency[Hub], flow_id: FromPath[str], data: JSONBody[EnabledIn]
    ) -> FlowSummary:
        return _summary(await flow_service.set_enabled(hub, flow_id, data.enabled))

    @post(
        "/{flow_id:str}/start",
        status_code=202,
        summary="Start the published flow for a contact",
        responses=START_ERRORS,
    )
    async def start(
        self, hub: NamedDependency[Hub], flow_id: FromPath[str], data: JSONBody[StartIn]
    ) -> StartOut:
        """As a ``flow.start`` node would: a ``flow.started`` trigger with ``params``; the run
        goes to its first wait or its end before the answer."""
        outcome = await start_service.start_from_api(
            hub, flow_id, data.phone, data.params, data.idempotency_key
        )
        return StartOut(run_id=outcome.run_id or "", status=outcome.status or "running")

    @get("/{flow_id:str}/versions", summary="Versions, newest first")
    async def versions(self, hub: NamedDependency[Hub], flow_id: FromPath[str]) -> list[VersionOut]:
        return [version_out(v, full=False) for v in await flow_service.list_versions(hub, flow_id)]

    @get("/{flow_id:str}/versions/{version:int}", summary="One version's definition")
    async def version(
        self, hub: NamedDependency[Hub], flow_id: FromPath[str], version: VersionPath
    ) -> VersionOut:
        return version_out(await flow_service.get_version(hub, flow_id, version), full=True)

    @get("/{flow_id:str}/export", summary="Canonical, diff-able JSON of the draft or a version")
    async def export(
        self,
        hub: NamedDependency[Hub],
        flow_id: FromPath[str],
        version: VersionQuery = None,
    ) -> Response[str]:
        text = await flow_service.export_document(hub, flow_id, version)
        return Response(text, media_type="application/json")


class RunController(ApiController):
    path = "/runs"
    tags = ["runs"]

    @get("/", summary="Runs, newest first")
    async def list_runs(
        self,
        hub: NamedDependency[Hub],
        limit: Limit = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=64)] = None,
        flow_id: Annotated[str | None, QueryParameter(max_length=40)] = None,
        status: Annotated[
            str | None, QueryParameter(pattern="^(running|waiting|completed|failed|cancelled)$")
        ] = None,
        contact: Annotated[str | None, QueryParameter(max_length=32)] = None,
    ) -> Page[RunSummary]:
        rows, next_cursor = await run_service.list_runs(
            hub, limit=limit, cursor=cursor, flow_id=flow_id, status=status, contact=contact
        )
        return Page[RunSummary](items=[run_summary(r) for r in rows], next_cursor=next_cursor)

    @get("/{run_id:str}", summary="A run with every step")
    async def get_run(self, hub: NamedDependency[Hub], run_id: FromPath[str]) -> RunOut:
        return run_out(*await run_service.get_run(hub, run_id))

    @post(
        "/{run_id:str}/replay", status_code=200, summary="Replay from the failed step or the start"
    )
    async def replay(
        self,
        hub: NamedDependency[Hub],
        run_id: FromPath[str],
        data: JSONBody[ReplayIn | None] = None,
    ) -> RunOut:
        run = await run_service.replay_run(hub, run_id, data.mode if data else "from_failed")
        return run_out(*await run_service.get_run(hub, run.id))

    @post("/{run_id:str}/cancel", status_code=200, summary="Cancel a run")
    async def cancel(self, hub: NamedDependency[Hub], run_id: FromPath[str]) -> RunOut:
        run = await run_service.cancel_run(hub, run_id)
        return run_out(*await run_service.get_run(hub, run.id))


class SigningSecretOut(BaseModel):
    secret: str = Field(description="Verify flow HTTP requests with it (Standard Webhooks).")


@get("/flow-signing-secret", tags=["flows"], guards=[require_api_key], summary="Flow signing key")
async def flow_signing_secret(hub: NamedDependency[Hub]) -> SigningSecretOut:
    """The secret that signs every ``http.request`` a flow makes (``webhook-*`` headers;
    ``webhook-id`` is the step's key, the same on retries and replays)."""
    return SigningSecretOut(secret=signing_secret_of(hub))


@get(
    "/node-types", tags=["flows"], guards=[require_api_key], summary="Node types with their schemas"
)
async def node_types() -> list[dict[str, Any]]:
    """Every node type: title, ports and config JSON schema (the editor's forms)."""
    return node_types_catalog()


@post("/hooks/flows/{flow_id:str}/{token:str}", status_code=202, tags=["flows"])
async def flow_hook(
    hub: NamedDependency[Hub],
    request: Request[Any, Any, Any],
    flow_id: FromPath[str],
    token: FromPath[str],
) -> HookOut:
    """Start a flow from Zapier / Make / n8n: the JSON body becomes ``trigger``."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}", code="malformed_body") from exc
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", code="malformed_body")
    run = await dispatch_service.start_from_http(
        hub, flow_id, token, body, request.headers.get("idempotency-key")
    )
    return HookOut(run_id=run.id, status=run.status)


api_handlers: list[ControllerRouterHandler] = [
    FlowController,
    RunController,
    node_types,
    flow_signing_secret,
]
public_handlers: list[ControllerRouterHandler] = [flow_hook]
