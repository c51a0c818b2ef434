"""Contacts API: create (E.164, 409), edit language and timezone, delete (anonymised row
kept, opt-out kept, brought back by traffic), list by group."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from hub.context import Hub
from hub.models import Contact, GroupMember
from tests.helpers import SimPhone, count


async def _sim_channel(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    resp = await client.post(
        "/api/v1/channels",
        json={"connector": "simulator", "name": "sim", "webhook_secret": "contacts-secret"},
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def test_create_normalizes_and_refuses_a_second_time(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/contacts",
        json={
            "phone": "(555) 000-1234",
            "name": "Ann",
            "language": "pt-BR",
            "timezone": "Europe/Lisbon",
            "tags": ["vip", "vip"],
            "fields": {"city": "Porto"},
        },
        headers=api_headers,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["phone"] == "+15550001234" and body["id"].startswith("ct_")
    assert body["language"] == "pt-BR" and body["timezone"] == "Europe/Lisbon"
    assert body["tags"] == ["vip"] and body["fields"] == {"city": "Porto"}
    again = await client.post(
        "/api/v1/contacts", json={"phone": "+15550001234"}, headers=api_headers
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "contact_exists"


async def test_bad_input_names_the_field(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    cases = [
        ({"phone": "12"}, "phone"),
        ({"phone": "+15550001234", "timezone": "Mars/Olympus"}, "timezone"),
        ({"phone": "+15550001234", "timezone": "../../etc/passwd"}, "timezone"),
        ({"phone": "+15550001234", "tags": [""]}, "tags"),
        ({"phone": "+15550001234", "colour": "red"}, "colour"),
    ]
    for body, name in cases:
        resp = await client.post("/api/v1/contacts", json=body, headers=api_headers)
        assert resp.status_code == 422, (body, resp.text)
        assert name in str(resp.json()["error"]["details"]), resp.text
    assert (await client.get("/api/v1/contacts", headers=api_headers)).json()["items"] == []


async def test_patch_language_and_timezone(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    made = (
        await client.post("/api/v1/contacts", json={"phone": "+15550001234"}, headers=api_headers)
    ).json()
    resp = await client.patch(
        f"/api/v1/contacts/{made['id']}",
        json={"language": "fr", "timezone": "America/Montreal"},
        headers=api_headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["language"] == "fr" and resp.json()["timezone"] == "America/Montreal"
    bad = await client.patch(
        f"/api/v1/contacts/{made['id']}", json={"timezone": "Nowhere"}, headers=api_headers
    )
    assert bad.status_code == 422 and "timezone" in bad.text
    cleared = await client.patch(
        f"/api/v1/contacts/{made['id']}", json={"timezone": None}, headers=api_headers
    )
    assert cleared.json()["timezone"] is None and cleared.json()["language"] == "fr"


async def test_delete_erases_personal_data_and_keeps_the_opt_out(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    channel_id = await _sim_channel(client, api_headers)
    phone = SimPhone(client, channel_id, "contacts-secret", "+15550100000")
    await phone.says("+15550001234", "hello")
    await phone.says("+15550001234", "STOP")
    contact = (await client.get("/api/v1/contacts/+15550001234", headers=api_headers)).json()
    assert contact["opted_out"] is True
    group = (await client.post("/api/v1/groups", json={"name": "G"}, headers=api_headers)).json()
    await client.patch(
        f"/api/v1/contacts/{contact['id']}",
        json={"name": "Ann", "fields": {"city": "Oslo"}, "tags": ["x"], "timezone": "Europe/Oslo"},
        headers=api_headers,
    )
    await client.post(
        f"/api/v1/groups/{group['id']}/members",
        json={"contact_ids": [contact["id"]]},
        headers=api_headers,
    )
    gone = await client.delete(f"/api/v1/contacts/{contact['id']}", headers=api_headers)
    assert gone.status_code == 204
    assert (
        await client.get(f"/api/v1/contacts/{contact['id']}", headers=api_headers)
    ).status_code == 404
    assert (await client.get("/api/v1/contacts", headers=api_headers)).json()["items"] == []
    assert await count(hub, GroupMember) == 0
    async with hub.db.read() as session:
        row = (await session.execute(sa.select(Contact))).scalar_one()
    assert (row.name, row.fields, row.tags, row.timezone) == ("", {}, [], None)
    assert row.opted_out is True and row.deleted_at is not None
    # The conversation stays (messages reference the row).
    messages = (await client.get("/api/v1/messages", headers=api_headers)).json()["items"]
    assert {m["contact_id"] for m in messages} == {contact["id"]}
    # Sending to the number is still refused; traffic brings the row back, still opted out.
    blocked = await client.post(
        "/api/v1/send", json={"to": "+15550001234", "message": "hi"}, headers=api_headers
    )
    assert blocked.status_code == 409
    await phone.says("+15550001234", "are you there?")
    back = (await client.get("/api/v1/contacts/+15550001234", headers=api_headers)).json()
    assert back["id"] == contact["id"] and back["opted_out"] is True and back["name"] == ""


async def test_create_again_after_delete_keeps_opt_out(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    made = (
        await client.post("/api/v1/contacts", json={"phone": "+15550001234"}, headers=api_headers)
    ).json()
    await client.patch(
        f"/api/v1/contacts/{made['id']}", json={"opted_out": True}, headers=api_headers
    )
    assert (
        await client.delete(f"/api/v1/contacts/{made['id']}", headers=api_headers)
    ).status_code == 204
    assert (
        await client.delete(f"/api/v1/contacts/{made['id']}", headers=api_headers)
    ).status_code == 404
    again = await client.post(
        "/api/v1/contacts", json={"phone": "+15550001234", "name": "Bo"}, headers=api_headers
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] == made["id"] and again.json()["opted_out"] is True
    assert again.json()["name"] == "Bo"


async def test_list_by_group_keeps_paging(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    group = (await client.post("/api/v1/groups", json={"name": "G"}, headers=api_headers)).json()
    phones = [f"+1555000{i:04d}" for i in range(5)]
    for p in phones:
        await client.post("/api/v1/contacts", json={"phone": p}, headers=api_headers)
    await client.post(
        f"/api/v1/groups/{group['id']}/members", json={"phones": phones[:3]}, headers=api_headers
    )
    first = (
        await client.get(f"/api/v1/contacts?group_id={group['id']}&limit=2", headers=api_headers)
    ).json()
    rest = (
        await client.get(
            f"/api/v1/contacts?group_id={group['id']}&limit=2&cursor={first['next_cursor']}",
            headers=api_headers,
        )
    ).json()
    listed = [c["phone"] for c in first["items"] + rest["items"]]
    assert sorted(listed) == phones[:3] and rest["next_cursor"] is None
    unknown = await client.get("/api/v1/contacts?group_id=grp_nope", headers=api_headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "group_not_found"


async def test_routes_in_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for path in [
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/contacts/import",
        "/api/v1/contacts/export",
        "/api/v1/groups",
        "/api/v1/groups/{group_id}/members",
        "/api/v1/groups/{group_id}/members/{contact_id}",
    ]:
        assert path in paths, path
    assert "delete" in paths["/api/v1/contacts/{contact_id}"]
