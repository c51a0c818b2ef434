"""Secrets for flows through the real hub (issue 13, item 4): ``/api/v1/secrets`` stores a
value encrypted and never shows it; a flow's ``http.request`` sends it, in a header, the
query and the body, to a real local sink; the flow's export, the run's steps, the logs of
the whole run (DEBUG), every table of the database and ``GET /api/v1/secrets`` never hold
it; a new value is what the next run sends; a name without a secret takes the error port
with a message naming it; publish refuses secrets where they cannot be used."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import FlowSecret, metadata
from tests.conftest import ChannelFactory, drain
from tests.e2e.helpers import Web
from tests.fakes.sink import Reply, Sink
from tests.helpers import SimPhone

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ANN = "+15550001111"
TOKEN = "zt_live_7Hq2mV9xK4pL0sRw"


@pytest.fixture
async def phone(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


def zap_flow(url: str) -> dict[str, Any]:
    """ZAP keyword → http.request with the secret in a header, the query and the body;
    its error port → a reply with the error."""
    return {
        "name": "Zap with a token",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["ZAP"]}},
            {
                "id": "zap",
                "type": "http.request",
                "config": {
                    "url": url + "?key={{ secrets.ZAP_TOKEN }}",
                    "headers": {"Authorization": "Bearer {{ secrets.ZAP_TOKEN }}"},
                    "body": {"text": "{{ trigger.data.body }}", "token": "{{ secrets.ZAP_TOKEN }}"},
                },
            },
            {"id": "oops", "type": "sms.reply", "config": {"text": "{{ steps.zap.output.error }}"}},
        ],
        "edges": [
            {"from": "start", "to": "zap"},
            {"from": "zap", "port": "error", "to": "oops"},
        ],
    }


async def set_secret(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, value: str
) -> None:
    resp = await client.put(f"/api/v1/secrets/{name}", json={"value": value}, headers=headers)
    if resp.status_code == 404:
        resp = await client.post(
            "/api/v1/secrets", json={"name": name, "value": value}, headers=headers
        )
    assert resp.status_code in (200, 201), resp.text


async def publish(client: httpx.AsyncClient, headers: dict[str, str], flow: dict[str, Any]) -> str:
    resp = await client.post("/api/v1/flows/import?publish=true", json=flow, headers=headers)
    assert resp.status_code == 201, resp.text
    flow_id: str = resp.json()["id"]
    return flow_id


async def latest_run(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    listed = await client.get("/api/v1/runs", headers=headers)
    run_id = listed.json()["items"][0]["id"]
    resp = await client.get(f"/api/v1/runs/{run_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    run: dict[str, Any] = resp.json()
    return run


async def database_text(hub: Hub) -> str:
    """Every row of every table, as text (the encrypted secrets table included)."""
    parts: list[str] = []
    async with hub.db.read() as session:
        for table in metadata.sorted_tables:
            rows = await session.execute(sa.select(table))
            parts += [repr(tuple(row)) for row in rows.all()]
    return "\n".join(parts)


async def test_secrets_api_never_shows_a_value(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    body = {"name": "ZAP_TOKEN", "value": TOKEN}
    created = await client.post("/api/v1/secrets", json=body, headers=api_headers)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["name"] == "ZAP_TOKEN" and shown["value"] == "********"
    assert shown["usage"] == "{{ secrets.ZAP_TOKEN }}"
    again = await client.post("/api/v1/secrets", json=body, headers=api_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "secret_exists"
    for bad in ("zap_token", "1ZAP", "ZAP-TOKEN", "A" * 65):
        resp = await client.post(
            "/api/v1/secrets", json={"name": bad, "value": "x"}, headers=api_headers
        )
        assert resp.status_code == 422, (bad, resp.text)
    empty = await client.post(
        "/api/v1/secrets", json={"name": "EMPTY", "value": ""}, headers=api_headers
    )
    assert (
        empty.status_code in (400, 422)
        and "EMPTY" not in (await client.get("/api/v1/secrets", headers=api_headers)).text
    )
    listed = await client.get("/api/v1/secrets", headers=api_headers)
    assert [s["name"] for s in listed.json()["items"]] == ["ZAP_TOKEN"]
    one = await client.get("/api/v1/secrets/ZAP_TOKEN", headers=api_headers)
    assert one.status_code == 200 and one.json()["value"] == "********"
    put = await client.put(
        "/api/v1/secrets/ZAP_TOKEN", json={"value": "second-value"}, headers=api_headers
    )
    patched = await client.patch(
        "/api/v1/secrets/ZAP_TOKEN", json={"value": "third-value"}, headers=api_headers
    )
    assert put.status_code == 200 and patched.status_code == 200
    assert patched.json()["updated_at"] >= shown["updated_at"]
    for resp in (created, listed, one, put, patched):
        for value in (TOKEN, "second-value", "third-value"):
            assert value not in resp.text
    async with hub.db.read() as session:
        [row] = (await session.execute(sa.select(FlowSecret))).scalars().all()
    assert "third-value" not in row.value_enc and hub.box.decrypt(row.value_enc) == "third-value"
    missing = await client.put("/api/v1/secrets/NOPE", json={"value": "x"}, headers=api_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "secret_not_found"
    gone = await client.delete("/api/v1/secrets/ZAP_TOKEN", headers=api_headers)
    assert gone.status_code == 204
    assert (await client.get("/api/v1/secrets/ZAP_TOKEN", headers=api_headers)).status_code == 404
    assert (
        await client.delete("/api/v1/secrets/ZAP_TOKEN", headers=api_headers)
    ).status_code == 404
    assert (await client.get("/api/v1/secrets")).status_code == 401


async def test_a_flow_sends_the_secret_and_nothing_keeps_it(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    phone: SimPhone,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await set_secret(client, api_headers, "ZAP_TOKEN", TOKEN)
    # The API echoes the token back, in its body and a header: the step must mask both.
    echo = json.dumps({"seen": f"Bearer {TOKEN}", "key": TOKEN}).encode()
    async with Sink("/zap") as sink:
        sink.always(Reply(200, body=echo, headers={"X-Echo": TOKEN}))
        flow_id = await publish(client, api_headers, zap_flow(sink.url))
        with caplog.at_level(logging.DEBUG):
            await phone.says(ANN, "ZAP hello")
            await drain(hub)
            await sink.wait_for(1)
            run = await latest_run(client, api_headers)
        [request] = sink.requests
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.query == f"key={TOKEN}"
    assert request.json() == {"text": "ZAP hello", "token": TOKEN}
    assert run["run"]["status"] == "completed"
    zap = next(s for s in run["steps"] if s["node_id"] == "zap")
    assert zap["input"]["headers"]["Authorization"].startswith("Bearer [[secrets.ZAP_TOKEN:")
    assert zap["output"]["json"] == {"seen": "Bearer ********", "key": "********"}
    answered = {k.lower(): v for k, v in zap["output"]["headers"].items()}
    assert answered["x-echo"] == "********"
    exported = await client.get(f"/api/v1/flows/{flow_id}/export?version=1", headers=api_headers)
    listed = await client.get("/api/v1/secrets", headers=api_headers)
    assert exported.status_code == 200 and "{{ secrets.ZAP_TOKEN }}" in exported.text
    assert TOKEN not in exported.text
    assert TOKEN not in json.dumps(run)
    assert TOKEN not in listed.text
    assert caplog.records and TOKEN not in caplog.text
    assert TOKEN not in "\n".join(repr(r.__dict__) for r in caplog.records)
    assert TOKEN not in await database_text(hub)


async def test_each_run_sends_the_value_current_at_its_step(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    await set_secret(client, api_headers, "ZAP_TOKEN", "first-token-value")
    async with Sink("/zap") as sink:
        await publish(client, api_headers, zap_flow(sink.url))
        await phone.says(ANN, "ZAP one")
        await drain(hub)
        await set_secret(client, api_headers, "ZAP_TOKEN", "second-token-value")
        await phone.says(ANN, "ZAP two")
        await drain(hub)
        await sink.wait_for(2)
    sent = [r.headers["authorization"] for r in sink.requests]
    assert sent == ["Bearer first-token-value", "Bearer second-token-value"]


async def test_a_missing_secret_takes_the_error_port_naming_it(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    async with Sink("/zap") as sink:
        await publish(client, api_headers, zap_flow(sink.url))
        await phone.says(ANN, "ZAP hello")
        await drain(hub)
        assert sink.requests == []  # nothing was sent with a hole in it
    run = await latest_run(client, api_headers)
    zap = next(s for s in run["steps"] if s["node_id"] == "zap")
    assert zap["status"] == "failed" and zap["port"] == "error" and zap["attempt"] == 1
    assert "secret 'ZAP_TOKEN' is not set" in zap["error"]
    assert run["run"]["status"] == "completed"  # the error port replied
    reply = next(s for s in run["steps"] if s["node_id"] == "oops")
    assert "ZAP_TOKEN" in reply["input"]["text"]


async def test_publish_refuses_secrets_outside_http_request(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    flow = zap_flow("https://example.com/hook")
    flow["nodes"][2]["config"]["text"] = "your token: {{ secrets.ZAP_TOKEN }}"
    flow["nodes"][1]["config"]["headers"]["X-Bad"] = "{{ secrets.ZAP_TOKEN | upper }}"
    resp = await client.post("/api/v1/flows/import?publish=true", json=flow, headers=api_headers)
    assert resp.status_code == 422, resp.text
    problems = {(d["node_id"], d["field"], d["code"]) for d in resp.json()["error"]["details"]}
    assert problems == {
        ("oops", "config.text", "secret_reference"),
        ("zap", "config.headers.X-Bad", "secret_reference"),
    }


async def test_the_editor_test_run_uses_a_masked_fake_and_knows_the_names(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], web: Web
) -> None:
    """Nothing leaves a test run, so it never reads a value: the hub's names with
    ``********``; a name the hub has not fails the step as a real run would."""
    await set_secret(client, api_headers, "ZAP_TOKEN", TOKEN)
    draft = zap_flow("https://example.com/hook")
    flow_id = (await client.post("/api/v1/flows", json=draft, headers=api_headers)).json()["id"]
    form = {"document": draft, "mode": "sms", "text": "ZAP hi", "from": ANN}
    resp = await web.post_json(f"/flows/{flow_id}/test-run", form)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    [call] = result["http"]
    assert call["json"] == {"text": "ZAP hi", "token": "********"}
    assert call["url"] == "https://example.com/hook?key=********"
    assert TOKEN not in resp.text
    draft["nodes"][1]["config"]["headers"]["X-Other"] = "{{ secrets.NOT_THERE }}"
    resp = await web.post_json(f"/flows/{flow_id}/test-run", {**form, "document": draft})
    [run] = resp.json()["runs"]
    zap = next(s for s in run["steps"] if s["node_id"] == "zap")
    assert zap["status"] == "failed" and "secret 'NOT_THERE' is not set" in zap["error"]
    assert TOKEN not in await database_text(hub)


async def test_two_creates_of_one_name_at_once_make_one_secret(hub: Hub) -> None:
    """The unique name decides (on PostgreSQL both may pass the check): one row, a 409."""
    from hub.errors import Conflict
    from hub.services import secrets

    results = await asyncio.gather(
        *(secrets.create_secret(hub, "RACE_TOKEN", f"value-{i}") for i in range(4)),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, FlowSecret)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(made) == 1 and len(refused) == 3, results
    assert all(r.code == "secret_exists" for r in refused)
    assert [s.name for s in await secrets.list_secrets(hub)] == ["RACE_TOKEN"]
