"""Groups API: unique names, member counts, members by phone or id, removal."""

from __future__ import annotations

import httpx

from hub.context import Hub
from hub.models import Contact
from tests.helpers import count


async def test_group_lifecycle(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    made = await client.post(
        "/api/v1/groups", json={"name": "Clinic", "description": "patients"}, headers=api_headers
    )
    assert made.status_code == 201, made.text
    group = made.json()
    assert group["member_count"] == 0 and group["id"].startswith("grp_")
    dup = await client.post("/api/v1/groups", json={"name": "Clinic"}, headers=api_headers)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "group_exists"
    other = (await client.post("/api/v1/groups", json={"name": "B"}, headers=api_headers)).json()
    clash = await client.patch(
        f"/api/v1/groups/{other['id']}", json={"name": "Clinic"}, headers=api_headers
    )
    assert clash.status_code == 409
    renamed = await client.patch(
        f"/api/v1/groups/{group['id']}", json={"name": "Clinic 2"}, headers=api_headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Clinic 2"
    listed = (await client.get("/api/v1/groups", headers=api_headers)).json()
    assert [g["name"] for g in listed] == ["B", "Clinic 2"]
    assert (
        await client.delete(f"/api/v1/groups/{other['id']}", headers=api_headers)
    ).status_code == 204
    assert (
        await client.get(f"/api/v1/groups/{other['id']}", headers=api_headers)
    ).status_code == 404
    assert (
        await client.post("/api/v1/groups", json={"name": ""}, headers=api_headers)
    ).status_code == 422


async def test_members_by_phone_and_id(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    group = (await client.post("/api/v1/groups", json={"name": "G"}, headers=api_headers)).json()
    known = (
        await client.post("/api/v1/contacts", json={"phone": "+15550001111"}, headers=api_headers)
    ).json()
    url = f"/api/v1/groups/{group['id']}/members"
    resp = await client.post(
        url, json={"phones": ["+15550001111", "(555) 000-2222", "nope"]}, headers=api_headers
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["added"] == ["+15550001111", "(555) 000-2222"]
    assert body["already_members"] == [] and [r["value"] for r in body["refused"]] == ["nope"]
    assert await count(hub, Contact) == 2  # the new number became a contact
    again = (
        await client.post(
            url, json={"contact_ids": [known["id"], "ct_missing"]}, headers=api_headers
        )
    ).json()
    assert again["already_members"] == [known["id"]] and again["added"] == []
    assert again["refused"] == [{"value": "ct_missing", "reason": "no such contact"}]
    shown = (await client.get(f"/api/v1/groups/{group['id']}", headers=api_headers)).json()
    assert shown["member_count"] == 2
    out = await client.delete(f"{url}/{known['id']}", headers=api_headers)
    assert out.status_code == 204
    assert (await client.delete(f"{url}/{known['id']}", headers=api_headers)).status_code == 404
    members = (
        await client.get(f"/api/v1/contacts?group_id={group['id']}", headers=api_headers)
    ).json()["items"]
    assert [m["phone"] for m in members] == ["+15550002222"]
    empty = await client.post(url, json={}, headers=api_headers)
    assert empty.status_code == 400 and "phones" in empty.text
    missing = await client.post(
        "/api/v1/groups/grp_nope/members", json={"phones": ["+15550001111"]}, headers=api_headers
    )
    assert missing.status_code == 404


async def test_deleting_a_group_keeps_its_contacts(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    group = (await client.post("/api/v1/groups", json={"name": "G"}, headers=api_headers)).json()
    await client.post(
        f"/api/v1/groups/{group['id']}/members",
        json={"phones": ["+15550001111"]},
        headers=api_headers,
    )
    assert (
        await client.delete(f"/api/v1/groups/{group['id']}", headers=api_headers)
    ).status_code == 204
    contacts = (await client.get("/api/v1/contacts", headers=api_headers)).json()["items"]
    assert [c["phone"] for c in contacts] == ["+15550001111"]
