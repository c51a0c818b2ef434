"""Channels, devices and contacts API; secrets at rest; health and OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import ApiKey, Channel

TWILIO = {
    "connector": "twilio",
    "name": "Front desk",
    "config": {
        "account_sid": "AC" + "1" * 32,
        "auth_token": "twilio-auth-token-value",
        "from_number": "+15559876543",
    },
}


async def test_create_returns_webhook_urls_and_generated_secret(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/channels",
        json={
            "connector": "smsgate",
            "name": "Shop phone",
            "config": {"username": "u", "password": "p4ss"},
        },
        headers=api_headers,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["id"].startswith("ch_")
    assert body["webhook_urls"] == {
        "default": f"http://testserver.local/webhooks/{body['id']}",
        "incoming": f"http://testserver.local/webhooks/{body['id']}/incoming",
        "status": f"http://testserver.local/webhooks/{body['id']}/status",
    }
    assert len(body["webhook_secret"]) >= 24
    assert body["config"]["password"] == "********"
    assert body["auth_mode"] == "signature"
    listed = (await client.get("/api/v1/channels", headers=api_headers)).json()
    assert [c["id"] for c in listed] == [body["id"]]
    assert listed[0]["webhook_secret"] is None  # lists never show secrets


async def test_secrets_are_encrypted_at_rest_and_keys_hashed(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/channels",
        json={**TWILIO, "webhook_secret": "my-own-webhook-secret"},
        headers=api_headers,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["webhook_secret"] == "my-own-webhook-secret"
    async with hub.db.read() as session:
        row = (await session.execute(sa.select(Channel))).scalar_one()
        keys = list((await session.execute(sa.select(ApiKey))).scalars())
    stored = " ".join(str(v) for v in row.model_dump().values())
    assert "twilio-auth-token-value" not in stored
    assert "my-own-webhook-secret" not in stored
    assert "auth_token" not in row.config
    plain_key = api_headers["Authorization"].removeprefix("Bearer ")
    assert all(plain_key not in " ".join(str(v) for v in k.model_dump().values()) for k in keys)


async def test_unsigned_config_switches_to_url_token(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    vonage = {"api_key": "k", "api_secret": "s", "signature_method": "none"}
    resp = await client.post(
        "/api/v1/channels",
        json={"connector": "vonage", "name": "V", "config": vonage},
        headers=api_headers,
    )
    assert resp.status_code == 201
    body = resp.json()
    assert body["auth_mode"] == "token"
    assert "?token=" in body["webhook_urls"]["default"]
    forced = await client.post(
        "/api/v1/channels",
        json={"connector": "vonage", "name": "V", "config": vonage, "auth_mode": "signature"},
        headers=api_headers,
    )
    assert forced.status_code == 422
    assert forced.json()["error"]["details"][0]["field"] == "auth_mode"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"connector": "carrier-pigeon", "name": "x"}, "connector"),  # unknown connector
        (
            {"connector": "twilio", "name": "x", "config": {"account_sid": "nope"}},
            "account_sid",
        ),  # bad config
        ({"connector": "simulator", "name": ""}, "name"),  # empty name
        (
            {"connector": "simulator", "name": "x", "auth_mode": "psychic"},
            "auth_mode",
        ),  # no such mode
        (
            {"connector": "simulator", "name": "x", "phone_number": "call me"},
            "phone_number",
        ),  # not a number
    ],
)
async def test_create_rejects_bad_input_naming_the_field(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    payload: dict[str, Any],
    field: str,
) -> None:
    resp = await client.post("/api/v1/channels", json=payload, headers=api_headers)
    assert resp.status_code == 422, resp.text
    details = resp.json()["error"]["details"]
    assert any(field in d["field"] for d in details), details
    assert (await client.get("/api/v1/channels", headers=api_headers)).json() == []


async def test_patch_merges_config_and_keeps_secrets(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    created = (await client.post("/api/v1/channels", json=TWILIO, headers=api_headers)).json()
    resp = await client.patch(
        f"/api/v1/channels/{created['id']}",
        json={"name": "Reception", "config": {"from_number": "+15550009999"}},
        headers=api_headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "Reception"
    runtime = await hub.channels.get(created["id"])
    assert runtime is not None
    assert runtime.config.from_number == "+15550009999"  # type: ignore[attr-defined]
    assert runtime.config.auth_token == "twilio-auth-token-value"  # type: ignore[attr-defined]
    bad = await client.patch(
        f"/api/v1/channels/{created['id']}",
        json={"config": {"account_sid": "bad"}},
        headers=api_headers,
    )
    assert bad.status_code == 422
    assert (
        await client.patch("/api/v1/channels/ch_nope", json={}, headers=api_headers)
    ).status_code == 404


async def test_delete_hides_channel(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    created = (await client.post("/api/v1/channels", json=TWILIO, headers=api_headers)).json()
    assert (
        await client.delete(f"/api/v1/channels/{created['id']}", headers=api_headers)
    ).status_code == 204
    assert (
        await client.get(f"/api/v1/channels/{created['id']}", headers=api_headers)
    ).status_code == 404
    assert (await client.get("/api/v1/channels", headers=api_headers)).json() == []


async def test_every_api_route_needs_a_key(client: httpx.AsyncClient) -> None:
    for path in ["/api/v1/channels", "/api/v1/devices", "/api/v1/contacts", "/api/v1/messages"]:
        resp = await client.get(path)
        assert resp.status_code == 401, path
        assert resp.json()["error"]["code"] == "missing_api_key"


async def test_contacts_list_and_lookup(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    from hub.services.contacts import get_or_create_contact

    async with hub.db.write() as session:
        await get_or_create_contact(session, "+15550001111")
        await get_or_create_contact(session, "+15550002222")
    page = (await client.get("/api/v1/contacts?q=2222", headers=api_headers)).json()
    assert [c["phone"] for c in page["items"]] == ["+15550002222"]
    one = await client.get("/api/v1/contacts/+15550001111", headers=api_headers)
    assert one.status_code == 200 and one.json()["opted_out"] is False
    assert (await client.get("/api/v1/contacts/ct_nope", headers=api_headers)).status_code == 404


async def test_health_ready_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/send" in schema["paths"]
    assert "/webhooks/{channel_id}" in schema["paths"]


async def test_metrics_count_webhooks_and_jobs(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    from tests.helpers import SimPhone

    channel = (
        await client.post(
            "/api/v1/channels",
            json={"connector": "simulator", "name": "sim", "webhook_secret": "metrics-secret"},
            headers=api_headers,
        )
    ).json()
    await SimPhone(client, channel["id"], "metrics-secret", "+15550100000").says(
        "+15550001234", "hi"
    )
    text = (await client.get("/metrics")).text
    assert 'smshub_webhooks_total{connector="simulator",status="200"}' in text
    assert 'smshub_gateway_events_total{outcome="stored",type="sms.received"}' in text


async def test_patch_contact_and_device(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    from tests.helpers import SimPhone

    channel = (
        await client.post(
            "/api/v1/channels",
            json={"connector": "simulator", "name": "sim", "webhook_secret": "patch-secret"},
            headers=api_headers,
        )
    ).json()
    await SimPhone(client, channel["id"], "patch-secret", "+15550100000").says(
        "+15550001234", "hi", device_id="phone-9"
    )
    resp = await client.patch(
        "/api/v1/contacts/+15550001234",
        json={
            "name": "Ann",
            "tags": ["vip", "vip", "clinic"],
            "fields": {"city": "Oslo"},
            "opted_out": True,
        },
        headers=api_headers,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == "Ann" and body["tags"] == ["vip", "clinic"] and body["opted_out"] is True
    assert body["fields"] == {"city": "Oslo"}
    blocked = await client.post(
        "/api/v1/send", json={"to": "+15550001234", "message": "x"}, headers=api_headers
    )
    assert blocked.status_code == 409
    bad = await client.patch(
        "/api/v1/contacts/+15550001234", json={"tags": [""]}, headers=api_headers
    )
    assert bad.status_code == 422
    [device] = (await client.get("/api/v1/devices", headers=api_headers)).json()
    resp = await client.patch(
        f"/api/v1/devices/{device['id']}",
        json={"name": "Front desk", "rate_limit_per_min": 10},
        headers=api_headers,
    )
    assert resp.status_code == 200 and resp.json()["rate_limit_per_min"] == 10
    too_fast = await client.patch(
        f"/api/v1/devices/{device['id']}", json={"rate_limit_per_min": 0}, headers=api_headers
    )
    assert too_fast.status_code == 422
    assert (
        await client.patch("/api/v1/devices/dev_nope", json={}, headers=api_headers)
    ).status_code == 404
