"""Webhooks: endpoints (create, edit, secret, test, replay), the delivery log, retries.

Built on the delivery subsystem's services (``hub.delivery``); the forms are checked with
the same request models as the ``/api/v1/endpoints`` API.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from pydantic import ValidationError
from sqlmodel import col

from hub.delivery import deliveries as delivery_service
from hub.delivery import endpoints as endpoint_service
from hub.delivery.models import Delivery, Endpoint
from hub.delivery.presets import PRESETS
from hub.delivery.schemas import EndpointIn, EndpointPatch
from hub.errors import ApiError
from hub.event_data import EVENT_TYPES
from hub.models import Event, utcnow
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, read_form, read_form_lists, render, see_other

PAGE_SIZE = 50
DELIVERY_STATUSES = ("pending", "succeeded", "failed", "cancelled")
#: "Replay failed deliveries since …" choices: label -> seconds.
REPLAY_WINDOWS = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
ENDPOINT_FIELDS = ("url", "description", "event_types", "preset", "headers", "rate_limit_per_s")


def _parse_headers(text: str, errors: FormErrors) -> dict[str, str]:
    """``Name: value`` per line."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            errors.add("headers", f"line {number}: write it as 'Name: value'")
            continue
        headers[name.strip()] = value.strip()
    return headers


def _endpoint_values(
    lists: dict[str, list[str]], form: dict[str, str], errors: FormErrors
) -> dict[str, Any]:
    """The endpoint fields of a posted form, as the API's request models take them."""
    types = [t for t in lists.get("event_types", []) if t]
    rate = form.get("rate_limit_per_s", "").strip()
    values: dict[str, Any] = {
        "url": form.get("url", "").strip(),
        "description": form.get("description", "").strip(),
        "event_types": ["*"] if "*" in types else types,
        "preset": form.get("preset") or "generic",
        "headers": _parse_headers(form.get("headers", ""), errors),
        "rate_limit_per_s": rate or None,
    }
    if not values["event_types"]:
        errors.add("event_types", "pick at least one event type (or all)")
    return values


def _validated(model: type[EndpointIn | EndpointPatch], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _FormInvalid(FormErrors.from_validation(exc)) from exc


class _FormInvalid(Exception):
    def __init__(self, errors: FormErrors) -> None:
        super().__init__("invalid form")
        self.errors = errors


async def _event_payload(request: Request[Any, Any, Any], delivery: Delivery) -> Any:
    if delivery.payload is not None:
        return delivery.payload
    async with hub_of(request).db.read() as session:
        event = await session.get(Event, delivery.event_id)
    return event.payload if event is not None else None


async def _endpoint_names(request: Request[Any, Any, Any]) -> dict[str, str]:
    async with hub_of(request).db.read() as session:
        rows = await session.execute(sa.select(col(Endpoint.id), col(Endpoint.url)))
        return {eid: url for eid, url in rows.all()}


class WebhooksController(Controller):
    path = "/outbound"
    guards = [require_user]
    include_in_schema = False

    async def _list(
        self,
        request: Request[Any, Any, Any],
        *,
        status_code: int = 200,
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
    ) -> Template:
        hub = hub_of(request)
        rows, _ = await endpoint_service.list_endpoints(hub, limit=200, cursor=None)
        recent, _ = await delivery_service.list_deliveries(hub, limit=8, cursor=None)
        failed, _ = await delivery_service.list_deliveries(
            hub, limit=200, cursor=None, status="failed"
        )
        return render(
            request,
            "webhooks/list.html",
            status_code=status_code,
            endpoints=rows,
            recent=recent,
            failed_by_endpoint={
                ep.id: sum(1 for d in failed if d.endpoint_id == ep.id) for ep in rows
            },
            endpoint_urls=await _endpoint_names(request),
            event_types=EVENT_TYPES,
            presets=PRESETS,
            errors=errors or FormErrors(),
            values=values or {"event_types": ["*"], "preset": "generic"},
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        return await self._list(request)

    @post("/", status_code=303)
    async def create(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """A new endpoint; its signing secret is generated (shown on its page)."""
        form = await read_form(request)
        lists = await read_form_lists(request)
        errors = FormErrors()
        values = _endpoint_values(lists, form, errors)
        try:
            data = _validated(EndpointIn, values)
            if errors:
                raise _FormInvalid(errors)
            row = await endpoint_service.create_endpoint(
                hub_of(request), **data.model_dump(exclude={"secret"})
            )
        except _FormInvalid as exc:
            errors.merge(exc.errors)  # the form's own messages first: they say more
            return await self._list(
                request,
                status_code=422,
                errors=errors.shown_on(ENDPOINT_FIELDS),
                values={**form, "event_types": lists.get("event_types", [])},
            )
        except ApiError as exc:
            return await self._list(
                request,
                status_code=exc.status_code,
                errors=FormErrors.from_api_error(exc).shown_on(ENDPOINT_FIELDS),
                values={**form, "event_types": lists.get("event_types", [])},
            )
        return see_other(f"/outbound/{row.id}?created=1")

    @get("/deliveries")
    async def deliveries(
        self,
        request: Request[Any, Any, Any],
        status: FromQuery[str | None] = None,
        endpoint: FromQuery[str | None] = None,
        event_type: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """The delivery log, newest first (status=failed is the dead-letter list)."""
        hub = hub_of(request)
        errors: dict[str, str] = {}
        if status and status not in DELIVERY_STATUSES:
            errors["status"] = "pick one of the listed statuses"
            status = None
        if event_type and event_type not in EVENT_TYPES:
            errors["event_type"] = "pick one of the listed event types"
            event_type = None
        rows, next_cursor = await delivery_service.list_deliveries(
            hub,
            limit=PAGE_SIZE,
            cursor=(cursor or "")[:40] or None,
            status=status or None,
            endpoint_id=(endpoint or "")[:40] or None,
            event_type=event_type or None,
        )
        return render(
            request,
            "webhooks/deliveries.html",
            status_code=422 if errors else 200,
            deliveries=rows,
            next_cursor=next_cursor,
            filters={
                "status": status or "",
                "endpoint": endpoint or "",
                "event_type": event_type or "",
            },
            errors=errors,
            statuses=DELIVERY_STATUSES,
            event_types=EVENT_TYPES,
            endpoint_urls=await _endpoint_names(request),
        )

    @get("/deliveries/{delivery_id:str}")
    async def delivery(
        self, request: Request[Any, Any, Any], delivery_id: FromPath[str]
    ) -> Template:
        """One delivery: every attempt with its answer, and the payload."""
        row, attempts = await delivery_service.get_delivery(hub_of(request), delivery_id)
        return render(
            request,
            "webhooks/delivery.html",
            delivery=row,
            attempts=attempts,
            payload=await _event_payload(request, row),
            endpoint_urls=await _endpoint_names(request),
        )

    @post("/deliveries/{delivery_id:str}/retry", status_code=303)
    async def retry(
        self, request: Request[Any, Any, Any], delivery_id: FromPath[str]
    ) -> Response[Any]:
        """Send a finished delivery once more."""
        await delivery_service.retry_delivery(hub_of(request), delivery_id)
        return see_other(f"/outbound/deliveries/{delivery_id}")

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        endpoint_id: str,
        *,
        status_code: int = 200,
        **extra: Any,
    ) -> Template:
        hub = hub_of(request)
        async with hub.db.read() as session:
            row = await endpoint_service.get_endpoint_row(session, endpoint_id)
        headers = endpoint_service.extra_headers(hub, row)
        rows, _ = await delivery_service.list_deliveries(
            hub, limit=20, cursor=None, endpoint_id=row.id
        )
        context: dict[str, Any] = {
            "endpoint": row,
            "secret": endpoint_service.current_secrets(hub, row)[0],
            "header_names": sorted(headers),
            "deliveries": rows,
            "endpoint_urls": {row.id: row.url},
            "event_types": EVENT_TYPES,
            "presets": PRESETS,
            "windows": REPLAY_WINDOWS,
            "edit_errors": FormErrors(),
            "edit_values": {
                "url": row.url,
                "description": row.description,
                "event_types": row.event_types,
                "preset": row.preset,
                "rate_limit_per_s": str(row.rate_limit_per_s or ""),
                "headers": "",
            },
            "test_result": None,
            "test_errors": FormErrors(),
            "replay_errors": FormErrors(),
            "replayed": None,
            "created": False,
        }
        context.update(extra)
        return render(request, "webhooks/endpoint.html", status_code=status_code, **context)

    @get("/{endpoint_id:str}")
    async def endpoint(
        self,
        request: Request[Any, Any, Any],
        endpoint_id: FromPath[str],
        created: FromQuery[str | None] = None,
    ) -> Template:
        return await self._detail(request, endpoint_id, created=bool(created))

    @post("/{endpoint_id:str}/edit", status_code=303)
    async def edit(
        self, request: Request[Any, Any, Any], endpoint_id: FromPath[str]
    ) -> Response[Any]:
        """Change URL, events, preset, description, rate limit; new headers replace the old
        ones only when given."""
        form = await read_form(request)
        lists = await read_form_lists(request)
        errors = FormErrors()
        values = _endpoint_values(lists, form, errors)
        if not form.get("headers", "").strip():
            values.pop("headers")
        try:
            data = _validated(EndpointPatch, values)
            if errors:
                raise _FormInvalid(errors)
            await endpoint_service.update_endpoint(
                hub_of(request), endpoint_id, data.model_dump(exclude_unset=True)
            )
        except _FormInvalid as exc:
            errors.merge(exc.errors)  # the form's own messages first: they say more
            return await self._detail(
                request,
                endpoint_id,
                status_code=422,
                edit_errors=errors.shown_on(ENDPOINT_FIELDS),
                edit_values={**form, "event_types": lists.get("event_types", [])},
            )
        except ApiError as exc:
            if exc.status_code == 404:
                raise
            return await self._detail(
                request,
                endpoint_id,
                status_code=exc.status_code,
                edit_errors=FormErrors.from_api_error(exc).shown_on(ENDPOINT_FIELDS),
                edit_values={**form, "event_types": lists.get("event_types", [])},
            )
        return see_other(f"/outbound/{endpoint_id}")

    @post("/{endpoint_id:str}/enabled", status_code=303)
    async def set_enabled(
        self, request: Request[Any, Any, Any], endpoint_id: FromPath[str]
    ) -> Response[Any]:
        """Pause or resume deliveries (resuming clears the failure record)."""
        form = await read_form(request)
        await endpoint_service.update_endpoint(
            hub_of(request), endpoint_id, {"enabled": form.get("enabled") == "true"}
        )
        return see_other(f"/outbound/{endpoint_id}")

    @post("/{endpoint_id:str}/rotate", status_code=303)
    async def rotate(
        self, request: Request[Any, Any, Any], endpoint_id: FromPath[str]
    ) -> Response[Any]:
        """A new signing secret; the old one keeps signing for the overlap period."""
        await endpoint_service.rotate_secret(hub_of(request), endpoint_id, None)
        return see_other(f"/outbound/{endpoint_id}")

    @post("/{endpoint_id:str}/test", status_code=200)
    async def test(self, request: Request[Any, Any, Any], endpoint_id: FromPath[str]) -> Template:
        """Send a sample event now and show what came back."""
        form = await read_form(request)
        event_type = form.get("event_type") or None
        if event_type is not None and event_type not in EVENT_TYPES:
            errors = FormErrors()
            errors.add("event_type", "pick one of the listed event types")
            return await self._detail(request, endpoint_id, status_code=422, test_errors=errors)
        try:
            delivery = await delivery_service.send_test(hub_of(request), endpoint_id, event_type)
        except ApiError as exc:
            if exc.status_code == 404:
                raise
            errors = FormErrors.from_api_error(exc).shown_on(("event_type",))
            return await self._detail(
                request, endpoint_id, status_code=exc.status_code, test_errors=errors
            )
        _row, attempts = await delivery_service.get_delivery(hub_of(request), delivery.id)
        return await self._detail(
            request, endpoint_id, test_result={"delivery": delivery, "attempts": attempts}
        )

    @post("/{endpoint_id:str}/replay", status_code=200)
    async def replay(self, request: Request[Any, Any, Any], endpoint_id: FromPath[str]) -> Template:
        """Send the failed deliveries of a time window once more."""
        form = await read_form(request)
        window = form.get("since", "24h")
        if window not in REPLAY_WINDOWS:
            errors = FormErrors()
            errors.add("since", "pick one of the listed periods")
            return await self._detail(request, endpoint_id, status_code=422, replay_errors=errors)
        since = utcnow() - timedelta(seconds=REPLAY_WINDOWS[window])
        try:
            count = await delivery_service.replay_failed(hub_of(request), endpoint_id, since)
        except ApiError as exc:
            if exc.status_code == 404:
                raise
            errors = FormErrors()
            errors.add("since", exc.message)
            return await self._detail(
                request, endpoint_id, status_code=exc.status_code, replay_errors=errors
            )
        return await self._detail(request, endpoint_id, replayed=count)

    @post("/{endpoint_id:str}/delete", status_code=303)
    async def delete(
        self, request: Request[Any, Any, Any], endpoint_id: FromPath[str]
    ) -> Response[Any]:
        """Delete an endpoint (its delivery log stays; queued deliveries are cancelled)."""
        await endpoint_service.delete_endpoint(hub_of(request), endpoint_id)
        return see_other("/outbound")
