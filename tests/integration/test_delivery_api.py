"""The endpoints and deliveries API: CRUD, secrets shown only where they should be, every
validation error a 4xx naming the field, test sends, listing and paging."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.delivery.models import Delivery
from hub.services.events import emit_in_session as emit
from tests.conftest import drain
from tests.fakes.sink import Sink, wait_until
from tests.helpers import count


async def settle(hub: Hub) -> None:
    """Drain until no delivery is pending (the endpoint gate defers some a little)."""

    async def none_pending() -> bool:
        await drain(hub)
        return await count(hub, Delivery, Delivery.status == "pending") == 0  # type: ignore[arg-type]

    await wait_until(none_pending, timeout=15)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


async def create(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/endpoints", json=body, headers=auth)


async def test_endpoint_crud_and_where_the_secret_shows(
    client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    resp = await create(
        client,
        api_headers,
        url=sink.url,
        event_types=["sms.received", "sms.failed", "sms.received"],
        description="CRM",
        rate_limit_per_s=5,
    )
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert made["secret"].startswith("whsec_")
    assert made["event_types"] == ["sms.received", "sms.failed"]  # duplicates dropped
    assert made["kind"] == "api" and made["preset"] == "generic" and made["enabled"] is True
    ep = made["id"]

    listed = (await client.get("/api/v1/endpoints", headers=api_headers)).json()
    assert [e["id"] for e in listed["items"]] == [ep]
    assert listed["items"][0]["secret"] is None  # never in lists
    own = (await client.get(f"/api/v1/endpoints/{ep}", headers=api_headers)).json()
    assert own["secret"] == made["secret"]  # on its own page

    patched = await client.patch(
        f"/api/v1/endpoints/{ep}",
        json={"event_types": ["*"], "description": "all", "rate_limit_per_s": None},
        headers=api_headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["event_types"] == ["*"] and patched.json()["rate_limit_per_s"] is None

    assert (await client.delete(f"/api/v1/endpoints/{ep}", headers=api_headers)).status_code == 204
    gone = await client.get(f"/api/v1/endpoints/{ep}", headers=api_headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "endpoint_not_found"
    again = await client.delete(f"/api/v1/endpoints/{ep}", headers=api_headers)
    assert again.status_code == 404


async def test_a_supplied_secret_is_kept(
    client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    resp = await create(client, api_headers, url=sink.url, secret=secret)
    assert resp.status_code == 201 and resp.json()["secret"] == secret


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"event_types": ["sms.nope"]}, "event_types", "unknown event type"),  # not a type
        ({"event_types": []}, "event_types", ""),  # nothing to receive
        ({"preset": "zapier"}, "url", "Zapier Catch Hook"),  # not a Zapier URL
        ({"preset": "make"}, "url", "Make custom webhook"),  # not a Make URL
        ({"preset": "n8n"}, "url", "n8n Webhook node"),  # no /webhook/ path
        ({"preset": "ifttt"}, "preset", ""),  # not a preset
        ({"headers": {"webhook-signature": "x"}}, "headers", "set by the hub"),  # reserved
        ({"headers": {"Bad Name": "x"}}, "headers", "not a valid header name"),  # not a token
        ({"headers": {"X-A": "a\r\nB: c"}}, "headers", "line breaks"),  # header injection
        ({"secret": "not-a-whsec-secret"}, "secret", "whsec_"),  # not whsec
        ({"rate_limit_per_s": 0}, "rate_limit_per_s", ""),  # below 1
        ({"url": "ftp://example.com/"}, "url", "https://"),  # not http
        ({"url": "https://u:p@example.com/"}, "url", "password"),  # credentials
        ({"colour": "blue"}, "colour", ""),  # unknown field: typos do not pass silently
    ],
)
async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    sink: Sink,
    body: dict[str, Any],
    field: str,
    words: str,
) -> None:
    resp = await create(client, api_headers, **{"url": sink.url, **body})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    fields = [d["field"] for d in error["details"]]
    assert any(field in f for f in fields), error
    assert words in " ".join(d["message"] for d in error["details"])


async def test_test_send_shows_what_the_endpoint_answered(
    client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    ep = (await create(client, api_headers, url=sink.url, event_types=["sms.failed"])).json()
    sink.script(500)
    failed = await client.post(f"/api/v1/endpoints/{ep['id']}/test", headers=api_headers)
    assert failed.status_code == 200
    body = failed.json()
    assert body["test"] is True and body["status"] == "failed"
    assert body["event_type"] == "sms.failed"  # the first subscribed type
    assert body["attempts"][0]["status_code"] == 500
    assert sink.requests[0].json()["data"]["status"] == "failed"  # a realistic sample

    ok = await client.post(
        f"/api/v1/endpoints/{ep['id']}/test",
        json={"event_type": "flow.run.completed"},
        headers=api_headers,
    )
    assert ok.json()["status"] == "succeeded"
    assert sink.requests[1].json()["type"] == "flow.run.completed"
    bad = await client.post(
        f"/api/v1/endpoints/{ep['id']}/test", json={"event_type": "nope"}, headers=api_headers
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "event_type"
    # A failing test does not count against the endpoint's health.
    shown = (await client.get(f"/api/v1/endpoints/{ep['id']}", headers=api_headers)).json()
    assert shown["failing_since"] is None and shown["enabled"] is True


async def test_deliveries_are_listed_filtered_and_paged(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sink: Sink
) -> None:
    first = (await create(client, api_headers, url=sink.url, event_types=["sms.sent"])).json()
    second = (await create(client, api_headers, url=sink.url)).json()
    async with hub.db.write() as session:
        for n in range(3):
            await emit(session, type="sms.sent", channel_id="c", dedupe_key=f"k{n}", data={})
        await emit(session, type="sms.received", channel_id="c", dedupe_key="r", data={})
    await settle(hub)

    everything = (await client.get("/api/v1/deliveries", headers=api_headers)).json()["items"]
    assert len(everything) == 7 and all(d["status"] == "succeeded" for d in everything)
    assert all(d["attempts"] is None for d in everything)  # attempts on the detail page
    mine = await client.get(
        "/api/v1/deliveries", params={"endpoint_id": first["id"]}, headers=api_headers
    )
    assert {d["endpoint_id"] for d in mine.json()["items"]} == {first["id"]}
    received = await client.get(
        "/api/v1/deliveries", params={"event_type": "sms.received"}, headers=api_headers
    )
    assert [d["endpoint_id"] for d in received.json()["items"]] == [second["id"]]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/deliveries", params=params, headers=api_headers)).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [d["id"] for d in everything]  # newest first, no gaps or repeats

    detail = await client.get(f"/api/v1/deliveries/{seen[0]}", headers=api_headers)
    assert detail.json()["attempts"][0]["status_code"] == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/v1/deliveries/dlv_nope", None, 404),  # unknown delivery
        ("POST", "/api/v1/deliveries/dlv_nope/retry", None, 404),  # unknown delivery
        ("GET", "/api/v1/deliveries?status=exploded", None, 422),  # not a status
        ("GET", "/api/v1/deliveries?limit=0", None, 422),  # limit below 1
        ("POST", "/api/v1/endpoints/ep_nope/test", None, 404),  # unknown endpoint
        ("POST", "/api/v1/endpoints/ep_nope/rotate-secret", None, 404),  # unknown endpoint
        ("POST", "/api/v1/endpoints/ep_nope/replay", {"since": "2026-01-01T00:00:00Z"}, 404),
        ("POST", "/api/v1/endpoints/ep_nope/replay", {"since": "yesterday"}, 422),  # bad time
        ("POST", "/api/v1/endpoints/ep_nope/rotate-secret", {"overlap_s": -1}, 422),  # negative
        ("PATCH", "/api/v1/endpoints/ep_nope", {"description": "x"}, 404),  # unknown endpoint
    ],
)
async def test_bad_requests_are_json_4xx(
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    resp = await client.request(method, path, json=body, headers=api_headers)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"]


async def test_the_api_needs_a_key(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/endpoints"),
        ("POST", "/api/v1/hooks"),
        ("GET", "/api/v1/deliveries"),
        ("GET", "/api/v1/hooks/sample/sms.received"),
    ]:
        resp = await client.request(method, path)
        assert resp.status_code == 401, (method, path)
