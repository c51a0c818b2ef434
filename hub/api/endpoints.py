"""REST API for outbound webhooks: ``/endpoints``, ``/deliveries`` and REST Hooks ``/hooks``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, JSONBody, QueryParameter

from hub.api.deps import ApiController, Limit
from hub.context import Hub
from hub.delivery import deliveries as delivery_service
from hub.delivery import endpoints as endpoint_service
from hub.delivery.models import Delivery, DeliveryAttempt, Endpoint
from hub.delivery.presets import PRESETS
from hub.delivery.schemas import (
    AttemptOut,
    DeliveryOut,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    HookIn,
    HookOut,
    ReplayIn,
    ReplayOut,
    RotateIn,
    TestIn,
    format_of,
)
from hub.schemas import Page, view
from hub.services.queries import read_one

#: What our ids (``ep_…``, ``dlv_…``, ``evt_…``) and event types are made of.
ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"

Cursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page.", max_length=40, pattern=ID_PATTERN
    ),
]
Id = Annotated[str | None, QueryParameter(max_length=40, pattern=ID_PATTERN)]


def endpoint_out(hub: Hub, row: Endpoint, *, with_secret: bool) -> EndpointOut:
    """API view of an endpoint: header values masked, the secret only when asked."""
    return view(
        EndpointOut,
        row,
        format=format_of(row.preset),
        headers=dict.fromkeys(endpoint_service.extra_headers(hub, row), endpoint_service.MASK),
        secret=hub.box.decrypt(row.secret_enc) if with_secret else None,
        previous_secret_expires_at=row.previous_secret_until if row.previous_secret_enc else None,
    )


def delivery_out(row: Delivery, attempts: list[DeliveryAttempt] | None = None) -> DeliveryOut:
    """API view of a delivery (with its attempts on its own page)."""
    shown = [view(AttemptOut, a) for a in attempts] if attempts is not None else None
    return view(DeliveryOut, row, attempt_count=row.attempts, attempts=shown)


class EndpointController(ApiController):
    path = "/endpoints"
    tags = ["webhooks"]

    @post("/", status_code=201, summary="Create a webhook endpoint")
    async def create(self, hub: NamedDependency[Hub], data: JSONBody[EndpointIn]) -> EndpointOut:
        """Returns the endpoint with its ``whsec_`` signing secret."""
        row = await endpoint_service.create_endpoint(hub, **data.model_dump())
        return endpoint_out(hub, row, with_secret=True)

    @get("/", summary="List webhook endpoints, newest first")
    async def list_endpoints(
        self, hub: NamedDependency[Hub], limit: Limit = 50, cursor: Cursor = None
    ) -> Page[EndpointOut]:
        rows, next_cursor = await endpoint_service.list_endpoints(hub, limit=limit, cursor=cursor)
        return Page[EndpointOut](
            items=[endpoint_out(hub, r, with_secret=False) for r in rows], next_cursor=next_cursor
        )

    @get("/{endpoint_id:str}", summary="One endpoint, with its signing secret")
    async def get_endpoint(
        self, hub: NamedDependency[Hub], endpoint_id: FromPath[str]
    ) -> EndpointOut:
        row = await read_one(hub, endpoint_service.get_endpoint_row, endpoint_id)
        return endpoint_out(hub, row, with_secret=True)

    @patch("/{endpoint_id:str}", summary="Change an endpoint (enable again after a disable)")
    async def update(
        self, hub: NamedDependency[Hub], endpoint_id: FromPath[str], data: JSONBody[EndpointPatch]
    ) -> EndpointOut:
        row = await endpoint_service.update_endpoint(
            hub, endpoint_id, data.changes(), body_format=data.format
        )
        return endpoint_out(hub, row, with_secret=False)

    @delete("/{endpoint_id:str}", status_code=204, summary="Delete an endpoint (history kept)")
    async def remove(self, hub: NamedDependency[Hub], endpoint_id: FromPath[str]) -> None:
        """Queued deliveries to it are cancelled; an endpoint deleted already is a 404."""
        await endpoint_service.delete_endpoint(hub, endpoint_id, gone_ok=False)

    @post("/{endpoint_id:str}/test", status_code=200, summary="Send a sample event now")
    async def test(
        self,
        hub: NamedDependency[Hub],
        endpoint_id: FromPath[str],
        data: Annotated[TestIn | None, Body()] = None,
    ) -> DeliveryOut:
        """One attempt, inline; the answer shows what the endpoint replied."""
        row = await delivery_service.send_test(hub, endpoint_id, data.event_type if data else None)
        detail = await delivery_service.get_delivery(hub, row.id)
        return delivery_out(*detail)

    @post("/{endpoint_id:str}/rotate-secret", status_code=200, summary="Rotate the secret")
    async def rotate(
        self,
        hub: NamedDependency[Hub],
        endpoint_id: FromPath[str],
        data: Annotated[RotateIn | None, Body()] = None,
    ) -> EndpointOut:
        """A new secret; the old one keeps signing during the overlap (both signatures sent)."""
        row = await endpoint_service.rotate_secret(
            hub, endpoint_id, data.overlap_s if data else None
        )
        return endpoint_out(hub, row, with_secret=True)

    @post("/{endpoint_id:str}/replay", status_code=202, summary="Re-send failed deliveries")
    async def replay(
        self, hub: NamedDependency[Hub], endpoint_id: FromPath[str], data: JSONBody[ReplayIn]
    ) -> ReplayOut:
        """Every failed delivery created since ``since`` gets one new attempt."""
        count = await delivery_service.replay_failed(hub, endpoint_id, data.since)
        return ReplayOut(replayed=count)


class DeliveryController(ApiController):
    path = "/deliveries"
    tags = ["webhooks"]

    @get("/", summary="List deliveries, newest first (status=failed: the dead letters)")
    async def list_deliveries(
        self,
        hub: NamedDependency[Hub],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[
            str | None, QueryParameter(pattern="^(pending|succeeded|failed|cancelled)$")
        ] = None,
        endpoint_id: Id = None,
        event_id: Id = None,
        event_type: Annotated[str | None, QueryParameter(max_length=32, pattern=ID_PATTERN)] = None,
    ) -> Page[DeliveryOut]:
        rows, next_cursor = await delivery_service.list_deliveries(
            hub,
            limit=limit,
            cursor=cursor,
            status=status,
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_type=event_type,
        )
        return Page[DeliveryOut](items=[delivery_out(r) for r in rows], next_cursor=next_cursor)

    @get("/{delivery_id:str}", summary="One delivery with its attempts")
    async def get_delivery(
        self, hub: NamedDependency[Hub], delivery_id: FromPath[str]
    ) -> DeliveryOut:
        return delivery_out(*await delivery_service.get_delivery(hub, delivery_id))

    @post("/{delivery_id:str}/retry", status_code=202, summary="Send a delivery once more")
    async def retry(self, hub: NamedDependency[Hub], delivery_id: FromPath[str]) -> DeliveryOut:
        """Queues one new attempt; a delivery that is already pending is left as it is."""
        return delivery_out(await delivery_service.retry_delivery(hub, delivery_id))


class HookController(ApiController):
    path = "/hooks"
    tags = ["webhooks"]

    @post("/", status_code=201, summary="Subscribe a REST Hook (Zapier, Make, n8n)")
    async def subscribe(self, hub: NamedDependency[Hub], data: JSONBody[HookIn]) -> HookOut:
        """An endpoint under the hood; the preset is inferred from the target URL. The answer
        holds the ``whsec_`` secret so the subscriber can verify what it receives."""
        row = await endpoint_service.subscribe_hook(hub, data.target_url, data.event)
        return HookOut(
            id=row.id,
            target_url=row.url,
            event=data.event,
            preset=row.preset,
            secret=hub.box.decrypt(row.secret_enc),
        )

    @delete("/{hook_id:str}", status_code=204, summary="Unsubscribe a REST Hook")
    async def unsubscribe(self, hub: NamedDependency[Hub], hook_id: FromPath[str]) -> None:
        """Nothing more is sent to it, including deliveries already queued."""
        await endpoint_service.delete_endpoint(hub, hook_id, kind="hook")

    @get("/sample/{event:str}", summary="Recent payloads of an event type (for field mapping)")
    async def sample(
        self,
        hub: NamedDependency[Hub],
        event: FromPath[str],
        preset: Annotated[str, QueryParameter(pattern=f"^({'|'.join(PRESETS)})$")] = "generic",
    ) -> Response[list[Any]]:
        """A JSON list, newest first; a made-up example when there is none yet."""
        return Response(await delivery_service.hook_samples(hub, event, preset))


route_handlers = [EndpointController, DeliveryController, HookController]
