"""``POST /api/v1/flows/{id}/start``: the published flow for one contact (created when new),
as a ``flow.start`` node starts it; one run per idempotency key; 404 / 409 / 422 saying why."""

from __future__ import annotations

import httpx

from hub.context import Hub
from tests.conftest import drain
from tests.helpers import SimPhone
from tests.integration.test_flow_nodes_hub import child_flow, publish, sim, texts_to

__all__ = ["sim"]  # the fixture, imported for the tests below

NEW_CONTACT = "+15554440001"


async def test_start_runs_the_published_flow_for_a_new_contact_once_per_key(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    flow_id = await publish(client, api_headers, child_flow())
    body = {"phone": NEW_CONTACT, "params": {"code": 42}, "idempotency_key": "zap-1"}
    first = await client.post(f"/api/v1/flows/{flow_id}/start", json=body, headers=api_headers)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "completed"
    again = await client.post(f"/api/v1/flows/{flow_id}/start", json=body, headers=api_headers)
    assert again.json()["run_id"] == first.json()["run_id"]  # the same key: the same run
    await drain(hub)
    assert await texts_to(hub) == [(NEW_CONTACT, "flow.started by  code 42 depth 1")]
    contact = await client.get(f"/api/v1/contacts/{NEW_CONTACT}", headers=api_headers)
    assert contact.status_code == 200  # created on the way

    run = await client.get(f"/api/v1/runs/{first.json()['run_id']}", headers=api_headers)
    trigger = run.json()["run"]["trigger"]
    assert trigger["type"] == "flow.started" and trigger["data"]["phone"] == NEW_CONTACT
    assert trigger["data"]["params"] == {"code": 42}

    # Without a key, each call is a new start.
    plain = {"phone": NEW_CONTACT}
    runs = [
        (await client.post(f"/api/v1/flows/{flow_id}/start", json=plain, headers=api_headers))
        for _ in range(2)
    ]
    assert [r.status_code for r in runs] == [202, 202]
    assert runs[0].json()["run_id"] != runs[1].json()["run_id"]


async def test_start_refuses_what_cannot_start_with_a_reason(
    client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    async def start(flow_id: str, body: object) -> httpx.Response:
        return await client.post(f"/api/v1/flows/{flow_id}/start", json=body, headers=api_headers)

    unknown = await start("flow_nope", {"phone": NEW_CONTACT})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "flow_not_found"

    draft = await client.post("/api/v1/flows", json=child_flow(), headers=api_headers)
    unpublished = await start(draft.json()["id"], {"phone": NEW_CONTACT})
    assert unpublished.status_code == 409
    assert unpublished.json()["error"]["code"] == "not_published"

    flow_id = await publish(client, api_headers, child_flow())
    paused = await client.post(
        f"/api/v1/flows/{flow_id}/enabled", json={"enabled": False}, headers=api_headers
    )
    assert paused.status_code == 200, paused.text
    refused = await start(flow_id, {"phone": NEW_CONTACT})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "flow_paused"
    await client.post(
        f"/api/v1/flows/{flow_id}/enabled", json={"enabled": True}, headers=api_headers
    )

    bad_phone = await start(flow_id, {"phone": "not a number"})
    assert bad_phone.status_code == 422 and bad_phone.json()["error"]["code"] == "invalid_phone"
    assert bad_phone.json()["error"]["details"][0]["field"] == "phone"
    missing = await start(flow_id, {"params": {}})
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == "phone"
    not_object = await start(flow_id, {"phone": NEW_CONTACT, "params": [1]})
    assert not_object.status_code == 422
