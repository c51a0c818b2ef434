"""Odd input never causes a 500 or loses a message: NUL characters (PostgreSQL text cannot
hold them), numbers past what the integer columns hold, times past year 1 or 9999."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from connectors.simulator import event_body, sign_request
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


@pytest.mark.parametrize(
    "path",
    [
        "/versions/99999999999999999999",  # past 2^63: SQLite cannot bind it (was a 500)
        "/export?version=99999999999999999999",  # the same as a query parameter (was a 500)
        "/versions/2147483648",  # past 2^31: PostgreSQL's integer refuses it (was a 500)
        "/export?version=2147483648",
        "/versions/0",  # versions start at 1
        "/export?version=-1",
    ],
)
async def test_out_of_range_version_is_a_422_naming_it(
    client: httpx.AsyncClient, api_headers: dict[str, str], path: str
) -> None:
    flow = {"name": "n", "nodes": [], "edges": []}
    created = await client.post("/api/v1/flows?draft=true", json=flow, headers=api_headers)
    resp = await client.get(f"/api/v1/flows/{created.json()['id']}{path}", headers=api_headers)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert "parameter 'version'" in error["message"]
    assert [d["field"] for d in error["details"]] == ["version"]


async def test_the_largest_version_is_looked_up(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    flow = {"name": "n", "nodes": [], "edges": []}
    created = await client.post("/api/v1/flows?draft=true", json=flow, headers=api_headers)
    resp = await client.get(
        f"/api/v1/flows/{created.json()['id']}/versions/2147483647", headers=api_headers
    )
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "version_not_found"


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_replay_since_out_of_range_in_utc_is_a_422(
    client: httpx.AsyncClient, api_headers: dict[str, str], since: str
) -> None:
    endpoint = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
    created = await client.post("/api/v1/endpoints", json=endpoint, headers=api_headers)
    resp = await client.post(
        f"/api/v1/endpoints/{created.json()['id']}/replay",
        json={"since": since},
        headers=api_headers,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["field"] == "since"


async def test_runs_cursor_out_of_range_in_utc_is_a_422(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    resp = await client.get(
        "/api/v1/runs", params={"cursor": "0001-01-01T00:00:00+01:00"}, headers=api_headers
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "bad_cursor"


async def test_inbound_sms_with_a_huge_sim_slot_is_stored_without_it(
    hub: Hub, client: httpx.AsyncClient, make_channel: ChannelFactory
) -> None:
    """A SIM slot past any integer column is forgotten; the SMS itself is kept."""
    channel = await make_channel("simulator", webhook_secret="slot-secret-123", config={})
    body = event_body(
        "sms.received",
        event_id="sim-huge-slot",
        from_number="+15550001234",
        to_number="+15550100000",
        text="hi",
        device_id="phone",
        sim_slot=10**20,
    )
    headers = {
        "content-type": "application/json",
        **sign_request("slot-secret-123", body, datetime.now(UTC)),
    }
    resp = await client.post(f"/webhooks/{channel.id}", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    async with hub.db.read() as session:
        message = (await session.execute(sa.select(Message))).scalar_one()
    assert (message.body, message.sim_slot) == ("hi", None)
