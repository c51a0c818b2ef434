"""Blocked contacts: set and filtered through the API, blocked (never unblocked) by an
import, refused by the send pipeline (409 up front, a queued message fails), their inbound
SMS stored but starting no flow, reaching no waiting run and answered nothing, and skipped
and counted by broadcasts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import BroadcastRecipient, FlowRun, Message
from tests.conftest import ChannelFactory, drain
from tests.helpers import SimPhone, count
from tests.integration.test_broadcasts import create, make_group, outbound_to, settle, status_of
from tests.integration.test_flows_hub import (
    ANN,
    appointment,
    example,
    publish,
    start_appointment,
    texts_to,
    without_http,
)

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
CSV = {"content-type": "text/csv"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"device_rate_limit_per_min": 600, "send_spacing_max_s": 0.0}


@pytest.fixture
async def phone(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


async def contact(
    client: httpx.AsyncClient, headers: dict[str, str], phone: str, **body: Any
) -> dict[str, Any]:
    resp = await client.post("/api/v1/contacts", json={"phone": phone, **body}, headers=headers)
    assert resp.status_code == 201, resp.text
    found: dict[str, Any] = resp.json()
    return found


async def block(
    client: httpx.AsyncClient, headers: dict[str, str], contact_id: str, blocked: bool = True
) -> dict[str, Any]:
    resp = await client.patch(
        f"/api/v1/contacts/{contact_id}", json={"blocked": blocked}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


async def listed(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[str]:
    resp = await client.get("/api/v1/contacts", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return sorted(c["phone"] for c in resp.json()["items"])


async def test_api_sets_clears_and_filters_blocked(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    made = await contact(client, api_headers, "+15550001001", blocked=True)
    assert made["blocked"] is True and made["blocked_at"] is not None
    other = await contact(client, api_headers, "+15550001002")
    assert other["blocked"] is False and other["blocked_at"] is None
    assert await listed(client, api_headers, blocked="true") == ["+15550001001"]
    assert await listed(client, api_headers, blocked="false") == ["+15550001002"]
    unblocked = await block(client, api_headers, made["id"], blocked=False)
    assert unblocked["blocked"] is False and unblocked["blocked_at"] is None
    assert await listed(client, api_headers, blocked="true") == []
    name_only = await client.patch(
        f"/api/v1/contacts/{other['id']}", json={"name": "Bo"}, headers=api_headers
    )
    assert name_only.json()["blocked"] is False  # a PATCH without blocked leaves it
    bad = await client.get("/api/v1/contacts", params={"blocked": "maybe"}, headers=api_headers)
    assert bad.status_code in (400, 422) and "blocked" in bad.text
    bad = await client.patch(
        f"/api/v1/contacts/{other['id']}", json={"blocked": "sometimes"}, headers=api_headers
    )
    assert bad.status_code in (400, 422) and "blocked" in bad.text
    await block(client, api_headers, other["id"])
    gone = await client.delete(f"/api/v1/contacts/{other['id']}", headers=api_headers)
    assert gone.status_code == 204
    back = await contact(client, api_headers, "+15550001002")  # created again
    assert back["id"] == other["id"] and back["blocked"] is True  # the block is kept
    schema = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    for name in ("ContactOut", "ContactIn", "ContactPatch"):
        assert schema[name]["properties"]["blocked"].get("description"), name


async def test_import_blocks_but_never_unblocks_and_export_writes_it(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    kept = await contact(client, api_headers, "+15550002001", blocked=True)
    text = "phone,name,blocked\n+15550002001,Kept,no\n+15550002002,New,yes\n+15550002003,Plain,0\n"
    resp = await client.post(
        "/api/v1/contacts/import", content=text.encode(), headers={**api_headers, **CSV}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["refused"] == []
    assert await listed(client, api_headers, blocked="true") == ["+15550002001", "+15550002002"]
    after = (await client.get(f"/api/v1/contacts/{kept['id']}", headers=api_headers)).json()
    assert after["blocked"] is True and after["name"] == "Kept"  # "no" did not unblock it
    bad = await client.post(
        "/api/v1/contacts/import",
        content=b"phone,blocked\n+15550002004,perhaps\n",
        headers={**api_headers, **CSV},
    )
    assert bad.status_code == 200 and "blocked" in bad.json()["refused"][0]["reason"]
    exported = (await client.get("/api/v1/contacts/export", headers=api_headers)).text
    lines = exported.splitlines()
    column = lines[0].split(",").index("blocked")
    by_phone = {line.split(",")[0]: line.split(",")[column] for line in lines[1:]}
    assert by_phone == {"+15550002001": "yes", "+15550002002": "yes", "+15550002003": ""}


async def test_send_to_a_blocked_contact_is_refused_and_a_queued_one_fails(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    made = await contact(client, api_headers, "+15550003001", blocked=True)
    refused = await client.post(
        "/api/v1/send", json={"to": made["phone"], "message": "hi"}, headers=api_headers
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "contact_blocked"
    await block(client, api_headers, made["id"], blocked=False)
    queued = await client.post(
        "/api/v1/send", json={"to": made["phone"], "message": "hi"}, headers=api_headers
    )
    assert queued.status_code == 202, queued.text
    await block(client, api_headers, made["id"])  # blocked before it was handed over
    await drain(hub)
    msg = (await client.get(f"/api/v1/messages/{queued.json()['id']}", headers=api_headers)).json()
    assert msg["status"] == "failed" and msg["provider_message_id"] is None
    assert msg["error"].startswith("blocked:"), msg


async def test_inbound_from_a_blocked_contact_is_stored_but_starts_no_flow(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    await publish(client, api_headers, without_http(example("join_keyword")))
    sender = "+15550004001"
    made = await contact(client, api_headers, sender, blocked=True)
    await phone.says(sender, "join News")
    await phone.says(sender, "HELP")
    await phone.says(sender, "STOP")
    await drain(hub)
    assert await count(hub, FlowRun) == 0
    assert await texts_to(hub, sender) == []  # no welcome, no HELP or STOP answer
    inbound = await count(hub, Message, col(Message.direction) == "inbound")
    assert inbound == 3  # the history is kept
    after = (await client.get(f"/api/v1/contacts/{made['id']}", headers=api_headers)).json()
    assert after["opted_out"] is True  # STOP is still honoured, silently
    # The same SMS from a contact who is not blocked starts the flow.
    await phone.says("+15550004002", "join News")
    await drain(hub)
    assert await count(hub, FlowRun) == 1
    assert await texts_to(hub, "+15550004002") != []


async def test_a_blocked_contact_reaches_no_waiting_run(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow = await publish(client, api_headers, appointment())
    started = await start_appointment(client, api_headers, flow)
    await drain(hub)
    assert started["status"] == "waiting"
    ann = (await client.get(f"/api/v1/contacts/{ANN}", headers=api_headers)).json()
    await block(client, api_headers, ann["id"])
    await phone.says(ANN, "y")
    await drain(hub)
    resp = await client.get("/api/v1/runs", headers=api_headers)
    [run] = resp.json()["items"]
    assert run["status"] == "waiting"  # the answer did not reach it
    assert len(await texts_to(hub, ANN)) == 1  # the question only, no confirmation


async def test_broadcast_skips_and_counts_blocked_members(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    members = [f"+1555000500{i}" for i in range(8)]
    group = await make_group(client, api_headers, "club", members)
    blocked = members[:3]
    for number in blocked:
        found = (await client.get(f"/api/v1/contacts/{number}", headers=api_headers)).json()
        await block(client, api_headers, found["id"])
    created = await create(client, api_headers, text="Hello club", group_ids=[group])
    await settle(hub)
    assert sorted(await outbound_to(hub)) == sorted(members[3:])
    done = await status_of(client, api_headers, created["id"])
    assert done["status"] == "completed"
    counts = done["counts"]
    assert counts["recipients"] == 8 and counts["skipped_blocked"] == 3
    assert counts["skipped"] == 3 and counts["skipped_opted_out"] == 0
    async with hub.db.read() as session:
        reasons = (
            await session.execute(
                sa.select(BroadcastRecipient.skipped_reason).where(
                    col(BroadcastRecipient.status) == "skipped"
                )
            )
        ).scalars()
        assert sorted(reasons) == ["blocked"] * 3
