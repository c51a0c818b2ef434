"""NUL characters (PostgreSQL text cannot hold them) never cause a 500 or lose a message."""

from __future__ import annotations

import httpx

from hub.context import Hub
from hub.models import Message
from tests.conftest import ChannelFactory, drain
from tests.helpers import SimPhone, count


async def test_api_input_with_nul_is_422(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    await make_channel("simulator")
    resp = await client.post(
        "/api/v1/send", json={"to": "+15550001234", "message": "a\x00b"}, headers=api_headers
    )
    assert resp.status_code == 422, resp.text
    assert "NUL" in resp.json()["error"]["message"] or "NUL" in str(resp.json()["error"]["details"])
    resp = await client.post(
        "/api/v1/channels", json={"connector": "simulator", "name": "x\x00"}, headers=api_headers
    )
    assert resp.status_code == 422


async def test_inbound_sms_with_nul_is_stored_without_it(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory
) -> None:
    channel = await make_channel("simulator", webhook_secret="nul-secret-123", config={})
    phone = SimPhone(client, channel.id, "nul-secret-123", "+15550100000")
    await phone.says("+15550001234", "hi\x00there", device_id="ph\x00one")
    await drain(hub)
    assert await count(hub, Message, Message.body == "hi\ufffdthere") == 1


async def test_nul_in_api_query_or_flow_is_a_4xx(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    resp = await client.get("/api/v1/messages?contact=%2B1555%00", headers=api_headers)
    assert resp.status_code == 400
    flow = {"name": "n\x00", "nodes": [], "edges": []}
    resp = await client.post("/api/v1/flows?draft=true", json=flow, headers=api_headers)
    assert resp.status_code == 422


async def test_overlong_gateway_ids_are_cut_not_fatal(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory
) -> None:
    channel = await make_channel("simulator", webhook_secret="long-secret-123", config={})
    phone = SimPhone(client, channel.id, "long-secret-123", "+15550100000")
    await phone.says("+15550001234", "hi", device_id="d" * 500, message_id="m" * 500)
    await phone.post(
        "sms.delivered", from_number="+15550100000", message_id="x" * 500, error="e" * 5000
    )
    await drain(hub)
    assert await count(hub, Message) == 1


async def test_flow_hook_with_a_huge_phone_is_not_a_500(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    await make_channel("simulator")
    flow = {
        "name": "ask",
        "nodes": [
            {"id": "start", "type": "trigger.http", "config": {}},
            {
                "id": "ask",
                "type": "sms.wait_for_reply",
                "config": {"to": "{{ trigger.phone }}", "text": "Y?"},
            },
        ],
        "edges": [{"from": "start", "to": "ask"}],
    }
    created = await client.post("/api/v1/flows/import?publish=true", json=flow, headers=api_headers)
    url = created.json()["http_trigger_url"].removeprefix("http://testserver.local")
    resp = await client.post(url, json={"phone": "9" * 300})
    assert resp.status_code == 202, resp.text
    await drain(hub)
    runs = (await client.get("/api/v1/runs", headers=api_headers)).json()["items"]
    assert runs[0]["status"] == "failed"  # not a number: the step fails, the run says why
