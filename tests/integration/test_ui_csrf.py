"""Without a session, or with a missing or wrong CSRF token, no unsafe route changes
anything: every POST / PUT / PATCH / DELETE route of the app is tried, found by walking the
app's routes (so a route added later is covered too), and the whole database is compared
before and after."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from litestar import Litestar

from hub.app import create_app
from hub.context import Hub
from hub.delivery.deliveries import list_deliveries
from hub.delivery.endpoints import create_endpoint
from hub.services.apikeys import create_api_key
from hub.services.bootstrap import join_example
from hub.services.flows import import_flow
from hub.services.runs import list_runs
from hub.services.users import create_user
from tests.conftest import drain
from tests.e2e.helpers import db_snapshot, page_csrf, set_up_admin, sign_in
from tests.helpers import SimPhone

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: Routes that need no sign-in: gateway ingress, flow trigger hooks, health.
PUBLIC = ("/webhooks", "/hooks/flows", "/healthz", "/readyz", "/metrics", "/static", "/schema")
#: The sign-in and setup forms come before any session (their own token is tested in
#: test_ui_auth.py).
PRE_SESSION = {"/login", "/setup"}
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def unsafe_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path template) of every unsafe, non-public route."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        methods = getattr(route, "methods", set())
        for method in sorted(set(methods) & UNSAFE):
            path = route.path
            if path.startswith(PUBLIC) or path in PRE_SESSION:
                continue
            found.add((method, path))
    return sorted(found)


@pytest.fixture
async def world(hub: Hub, make_channel: Any, client: httpx.AsyncClient) -> dict[str, str]:
    """A channel, a published flow with a run, a contact, an API key: ids to fill paths."""
    channel = await make_channel(
        "simulator", config={"phone_number": "+15550100000"}, webhook_secret="s" * 24
    )
    view, _ = await import_flow(hub, join_example(channel.id), publish_it=True)
    endpoint = await create_endpoint(hub, url="http://127.0.0.1:9/hook", event_types=["*"])
    await SimPhone(client, channel.id, "s" * 24, "+15550100000").says("+15550001234", "JOIN")
    await drain(hub)
    runs, _ = await list_runs(hub, limit=1, cursor=None)
    deliveries, _ = await list_deliveries(hub, limit=1, cursor=None)
    key, _plain = await create_api_key(hub, "victim")
    contact = (await client.get("/api/v1/contacts/+15550001234", headers=await _key(hub))).json()
    return {
        "flow_id": view.flow.id,
        "run_id": runs[0].id,
        "channel_id": channel.id,
        "contact_id": contact["id"],
        "key_id": key.id,
        "connector": "simulator",
        "version": "1",
        "endpoint_id": endpoint.id,
        "delivery_id": deliveries[0].id,
    }


async def _key(hub: Hub) -> dict[str, str]:
    _row, plain = await create_api_key(hub, "reader")
    return {"Authorization": f"Bearer {plain}"}


def fill(path: str, ids: dict[str, str]) -> str:
    """A concrete URL: real ids where the world has them, a dummy elsewhere."""
    return _PARAM.sub(lambda m: ids.get(m.group(1), "zz_unknown"), path)


BODY_FORM = {"name": "changed", "message": "hello", "text": "hi", "from": "+15550009999"}


async def test_the_route_walk_finds_the_ui_and_api_routes(hub: Hub) -> None:
    routes = unsafe_routes(create_app(hub=hub, workers=False))
    paths = {path for _method, path in routes}
    for expected in (
        "/logout",
        "/flows/{flow_id:str}/delete",
        "/runs/{run_id:str}/replay",
        "/conversations/{contact_id:str}/{channel_id:str}/send",
        "/channels/new/{connector:str}",
        "/settings/api-keys/{key_id:str}/revoke",
        "/api/v1/send",
        "/api/v1/flows/{flow_id:str}",
        "/outbound",
        "/outbound/{endpoint_id:str}/edit",
        "/outbound/deliveries/{delivery_id:str}/retry",
    ):
        assert expected in paths, expected
    assert len(routes) > 30


async def test_nothing_changes_without_a_session(
    hub: Hub, client: httpx.AsyncClient, world: dict[str, str]
) -> None:
    app = create_app(hub=hub, workers=False)
    before = await db_snapshot(hub)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as anon:
        for method, path in unsafe_routes(app):
            url = fill(path, world)
            for kwargs in ({"data": BODY_FORM}, {"json": {"name": "x"}}):
                resp = await anon.request(method, url, **kwargs)  # type: ignore[arg-type]
                assert resp.status_code in (401, 403) or (
                    resp.status_code == 303 and resp.headers["location"].startswith("/setup")
                ), f"{method} {url}: {resp.status_code} {resp.text[:200]}"
    assert await db_snapshot(hub) == before


async def test_nothing_changes_with_a_missing_or_wrong_csrf_token(
    hub: Hub, client: httpx.AsyncClient, world: dict[str, str]
) -> None:
    app = create_app(hub=hub, workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as web:
        csrf = await set_up_admin(web)
        before = await db_snapshot(hub)
        attempts = [
            {"data": BODY_FORM},  # no token at all
            {"data": {**BODY_FORM, "_csrf": "forged"}},  # a wrong form token
            {"data": {**BODY_FORM, "_csrf": csrf[:-1]}},  # almost right
            {"json": {"name": "x"}, "headers": {"X-CSRF-Token": "forged"}},  # wrong header
            {"json": {"name": "x"}},  # JSON, no header
        ]
        for method, path in unsafe_routes(app):
            url = fill(path, world)
            for kwargs in attempts:
                resp = await web.request(method, url, **kwargs)  # type: ignore[arg-type]
                assert resp.status_code == 403, f"{method} {url}: {resp.status_code}"
        assert await db_snapshot(hub) == before
        # The session itself is intact: the right token still works.
        ok = await web.post(
            f"/flows/{world['flow_id']}/enabled", data={"_csrf": csrf, "enabled": "false"}
        )
        assert ok.status_code == 303
        assert await db_snapshot(hub) != before


async def test_a_token_from_another_session_does_not_pass(
    hub: Hub, client: httpx.AsyncClient, world: dict[str, str]
) -> None:
    app = create_app(hub=hub, workers=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as alice,
        httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as mallory,
    ):
        alice_token = await set_up_admin(alice)
        await create_user(hub, "mallory@example.com", "mallory password")
        assert (
            await sign_in(mallory, "mallory@example.com", "mallory password")
        ).status_code == 303
        mallory_token = page_csrf((await mallory.get("/")).text)
        assert mallory_token != alice_token
        before = await db_snapshot(hub)
        resp = await alice.post(f"/flows/{world['flow_id']}/delete", data={"_csrf": mallory_token})
        assert resp.status_code == 403
        assert await db_snapshot(hub) == before
