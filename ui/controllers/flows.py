"""Flows: the list, the Drawflow editor page, and the editor's test-run endpoint.

The editor itself saves, validates and publishes through the JSON API (``/api/v1/flows``,
signed in by the session cookie plus the CSRF header); only the test run, which has no
API counterpart, is served here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from flows.examples import example_names, load_example
from hub.context import Hub
from hub.errors import ApiError
from hub.services import channels as channel_service
from hub.services import flows as flow_service
from ui import readmodels, testrun
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, json_error, read_form, render, see_other

EXAMPLE_TITLES = {
    "join_keyword": "JOIN keyword auto-reply",
    "appointment_confirmation": "Appointment confirmation (Y/N with reminders)",
    "survey": "Two-question survey",
    "resend_failed_other_sim": "Resend failed SMS on the other SIM",
    "forward_to_zapier": "Forward every SMS to Zapier",
}


def _examples() -> list[tuple[str, str]]:
    return [(name, EXAMPLE_TITLES.get(name, name.replace("_", " "))) for name in example_names()]


class FlowsController(Controller):
    path = "/flows"
    guards = [require_user]
    include_in_schema = False

    @get("/")
    async def list_flows(self, request: Request[Any, Any, Any]) -> Template:
        return await self._list(request, FormErrors(), {})

    async def _list(
        self,
        request: Request[Any, Any, Any],
        errors: FormErrors,
        values: dict[str, str],
        status_code: int = 200,
    ) -> Template:
        hub = hub_of(request)
        return render(
            request,
            "flows/list.html",
            status_code=status_code,
            flows=await flow_service.list_flows(hub),
            run_counts=await readmodels.run_counts_by_flow(hub),
            examples=_examples(),
            errors=errors,
            values=values,
        )

    @post("/", status_code=303)
    async def create(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """A new flow: empty, or a copy of an example."""
        hub = hub_of(request)
        form = await read_form(request)
        errors = FormErrors()
        name = errors.required(form, "name", "give the flow a name")
        example = form.get("example", "").strip()
        if example and example not in example_names():
            errors.add("example", "pick one of the listed examples")
        if errors:
            return await self._list(request, errors, form, status_code=422)
        document: dict[str, Any] = load_example(example) if example else {"nodes": [], "edges": []}
        document["name"] = name
        view = await flow_service.create_flow(hub, document, allow_problems=True)
        return see_other(f"/flows/{view.flow.id}")

    @get("/{flow_id:str}")
    async def editor(self, request: Request[Any, Any, Any], flow_id: FromPath[str]) -> Template:
        """The visual editor of one flow."""
        hub = hub_of(request)
        view = await flow_service.load_flow_view(hub, flow_id)
        flow = view.flow
        channels = await channel_service.list_channels(hub)
        return render(
            request,
            "flows/editor.html",
            flow=flow,
            editor_data={
                "id": flow.id,
                "name": flow.name,
                "draft": flow.draft,
                "problems": [p.to_dict() for p in view.problems],
                "published_version": flow.published_version,
                "latest_version": flow.latest_version,
                "enabled": flow.enabled,
                "http_trigger_url": flow_service.http_trigger_url(hub, flow),
                "channels": [
                    {"id": c.id, "name": c.name, "connector": c.connector} for c in channels
                ],
            },
        )

    @post("/{flow_id:str}/enabled", status_code=303)
    async def set_enabled(
        self, request: Request[Any, Any, Any], flow_id: FromPath[str]
    ) -> Response[Any]:
        """Pause or resume a flow."""
        form = await read_form(request)
        enabled = form.get("enabled") == "true"
        await flow_service.set_enabled(hub_of(request), flow_id, enabled)
        back = f"/flows/{flow_id}"
        return see_other(back if form.get("back") == back else "/flows")

    @post("/{flow_id:str}/delete", status_code=303)
    async def delete(
        self, request: Request[Any, Any, Any], flow_id: FromPath[str]
    ) -> Response[Any]:
        """Delete a flow (its runs and versions stay in the history)."""
        await flow_service.delete_flow(hub_of(request), flow_id)
        return see_other("/flows")

    # --- test runs (JSON) ---------------------------------------------------------------

    @post("/{flow_id:str}/test-run", status_code=200)
    async def test_run(
        self, request: Request[Any, Any, Any], flow_id: FromPath[str]
    ) -> Response[Any]:
        """Run the editor's current document on an in-memory engine; nothing is sent."""
        try:
            await flow_service.load_flow_view(hub_of(request), flow_id)
        except ApiError as exc:
            return json_error(exc.status_code, exc.code, exc.message)
        hub = hub_of(request)
        return await _answer(request, lambda payload: _start(hub, payload))

    @post("/test-runs/{sid:str}/reply", status_code=200)
    async def test_reply(
        self, request: Request[Any, Any, Any], sid: FromPath[str]
    ) -> Response[Any]:
        """The tested contact answers."""
        hub = hub_of(request)
        return await _answer(
            request,
            lambda payload: testrun.reply(hub, sid, str(payload.get("text") or "")[:1600]),
        )

    @post("/test-runs/{sid:str}/advance", status_code=200)
    async def test_advance(
        self, request: Request[Any, Any, Any], sid: FromPath[str]
    ) -> Response[Any]:
        """Let time pass in the test (to the next timer by default)."""
        hub = hub_of(request)
        return await _answer(request, lambda payload: _advance(hub, sid, payload))


#: One test-run request: from the posted JSON object, the step's result to await, or the
#: error to answer with when the object does not say what to do.
_Work = Callable[[dict[str, Any]], Awaitable[Any] | Response[Any]]


def _start(hub: Hub, payload: dict[str, Any]) -> Awaitable[Any] | Response[Any]:
    document = payload.get("document")
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        return json_error(422, "invalid_flow", "document must be a flow object with a name")
    body = payload.get("body")
    if body is not None and not isinstance(body, dict):
        return json_error(422, "validation_error", "body must be a JSON object", "body")
    return testrun.start(
        hub,
        document,
        mode=str(payload.get("mode") or "sms"),
        text=str(payload.get("text") or "")[:1600],
        sender=str(payload.get("from") or "")[:32],
        channel_id=str(payload.get("channel_id") or "ch_test")[:40],
        body=body,
    )


def _advance(hub: Hub, sid: str, payload: dict[str, Any]) -> Awaitable[Any] | Response[Any]:
    raw = payload.get("seconds")
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int | float)):
        return json_error(422, "validation_error", "seconds must be a number", "seconds")
    # Compared before float(): a huge integer cannot be converted (NaN fails this too).
    if raw is not None and not 0 <= raw <= testrun.MAX_ADVANCE_S:
        return json_error(
            422, "validation_error", "seconds must be between 0 and 30 days", "seconds"
        )
    return testrun.advance(hub, sid, float(raw) if raw is not None else None)


async def _json_object(request: Request[Any, Any, Any]) -> dict[str, Any] | Response[Any]:
    try:
        payload = await request.json()
    except Exception:
        return json_error(400, "malformed_body", "request body is not JSON")
    if not isinstance(payload, dict):
        return json_error(400, "malformed_body", "request body must be a JSON object")
    return payload


async def _answer(request: Request[Any, Any, Any], work: _Work) -> Response[Any]:
    payload = await _json_object(request)
    if isinstance(payload, Response):
        return payload
    started = work(payload)
    if isinstance(started, Response):
        return started
    try:
        result = await started
    except testrun.TestRunError as exc:
        return json_error(422, "validation_error", str(exc), exc.field)
    except ApiError as exc:
        return json_error(exc.status_code, exc.code, exc.message, exc.details)
    return Response(result, media_type="application/json")
