"""Contacts, groups and import pages, signed in: create / edit / delete with messages next
to the fields, groups and their members, a CSV import with its progress and report."""

from __future__ import annotations

import asyncio
import re

import sqlalchemy as sa

from hub.context import Hub
from hub.models import Contact, Group, GroupMember
from tests.e2e.helpers import Web, error_next_to, text_of
from tests.helpers import count


async def _contact(hub: Hub) -> Contact:
    async with hub.db.read() as session:
        return (await session.execute(sa.select(Contact))).scalar_one()


async def test_create_edit_delete_a_contact(hub: Hub, web: Web) -> None:
    form = await web.get("/contacts/new")
    assert form.status_code == 200 and 'name="phone"' in form.text
    bad = await web.post("/contacts/new", {"phone": "12", "timezone": "Mars/Base"})
    assert bad.status_code == 422
    assert error_next_to(bad.text, "phone") and "time zone" in error_next_to(bad.text, "timezone")
    assert await count(hub, Contact) == 0
    made = await web.post(
        "/contacts/new",
        {"phone": "(555) 000-1234", "name": "Ann", "tags": "vip, clinic", "fields": "city=Oslo"},
    )
    assert made.status_code == 303, made.text
    contact = await _contact(hub)
    assert (contact.phone, contact.tags, contact.fields) == (
        "+15550001234",
        ["vip", "clinic"],
        {"city": "Oslo"},
    )
    again = await web.post("/contacts/new", {"phone": "+15550001234"})
    assert again.status_code == 422 and "already a contact" in error_next_to(again.text, "phone")
    listed = await web.get("/contacts")
    assert "+15550001234" in listed.text and f"/contacts/{contact.id}/edit" in listed.text
    edit = await web.get(f"/contacts/{contact.id}/edit")
    assert "city=Oslo" in edit.text
    saved = await web.post(
        f"/contacts/{contact.id}/edit",
        {
            "name": "Ann Lee",
            "timezone": "Europe/Oslo",
            "language": "nb",
            "tags": "vip",
            "fields": "plan=gold",
        },
    )
    assert saved.status_code == 303, saved.text
    contact = await _contact(hub)
    assert (contact.name, contact.timezone, contact.language) == ("Ann Lee", "Europe/Oslo", "nb")
    assert contact.fields == {"plan": "gold"} and contact.tags == ["vip"]
    wrong = await web.post(f"/contacts/{contact.id}/edit", {"fields": "no equals sign"})
    assert wrong.status_code == 422 and "name=value" in error_next_to(wrong.text, "fields")
    gone = await web.post(f"/contacts/{contact.id}/delete")
    assert gone.status_code == 303
    assert "+15550001234" not in (await web.get("/contacts")).text
    contact = await _contact(hub)
    assert contact.deleted_at is not None and contact.name == "" and contact.fields == {}


async def test_groups_page_members_and_filter(hub: Hub, web: Web) -> None:
    empty = await web.post("/groups", {"name": ""})
    assert empty.status_code == 422 and error_next_to(empty.text, "name")
    made = await web.post("/groups", {"name": "Clinic"})
    assert made.status_code == 303
    group_url = made.headers["location"]
    assert (await web.post("/groups", {"name": "Clinic"})).status_code == 422
    added = await web.post(f"{group_url}/members", {"phones": "+15550001111\n(555) 000-2222, nope"})
    assert added.status_code == 200
    assert "Added 2" in text_of(added.text) and "refused 1" in text_of(added.text)
    assert await count(hub, GroupMember) == 2
    async with hub.db.read() as session:
        group = (await session.execute(sa.select(Group))).scalar_one()
    listed = await web.get(f"/contacts?group={group.id}")
    assert "+15550001111" in listed.text and "+15550002222" in listed.text
    assert "Clinic (2)" in listed.text
    member = re.search(r'data-member="(ct_[^"]+)"', added.text)
    assert member is not None
    removed = await web.post(f"{group_url}/members/{member.group(1)}/remove")
    assert removed.status_code == 303 and await count(hub, GroupMember) == 1
    renamed = await web.post(f"{group_url}/rename", {"name": "Patients"})
    assert renamed.status_code == 303
    assert "Patients" in (await web.get("/groups")).text
    assert (await web.post(f"{group_url}/delete")).status_code == 303
    assert await count(hub, Group) == 0 and await count(hub, Contact) == 2


async def test_import_page_shows_progress_and_report(hub: Hub, web: Web) -> None:
    page = await web.get("/contacts/import")
    assert page.status_code == 200 and 'type="file"' in page.text
    none = await web.post("/contacts/import")
    assert none.status_code == 422 and error_next_to(none.text, "file")
    rows = "\n".join(f"+1555000{i:04d},P{i},clinic" for i in range(1200))
    body = f"phone,name,group\n{rows}\n+1,bad,\n+15550000001,dup,\n"
    started = await web.client.post(
        "/contacts/import",
        data={"_csrf": web.csrf},
        files={"file": ("people.csv", body.encode(), "text/csv")},
    )
    assert started.status_code == 303, started.text
    url = started.headers["location"]
    shown = await web.get(url)
    assert shown.status_code == 200 and "<progress" in shown.text
    for _ in range(200):
        card = await web.get(url, headers={"HX-Request": "true"})
        if 'data-status="completed"' in card.text:
            break
        assert 'data-status="running"' in card.text and 'hx-trigger="every 1s"' in card.text
        await asyncio.sleep(0.05)
    assert 'data-status="completed"' in card.text and "hx-get" not in card.text
    assert 'data-count="created">1200<' in card.text and 'data-count="refused">2<' in card.text
    assert "duplicate of row 3" in card.text
    assert await count(hub, Contact) == 1200 and await count(hub, GroupMember) == 1200
    bad = await web.client.post(
        "/contacts/import",
        data={"_csrf": web.csrf},
        files={"file": ("x.csv", b"colour\nred\n", "text/csv")},
    )
    assert bad.status_code == 422 and "colour" in error_next_to(bad.text, "file")
