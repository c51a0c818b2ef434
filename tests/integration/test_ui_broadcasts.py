"""The broadcasts page, signed in: list with counts, the create form with its preview
(text for one member, SMS parts, encoding), a broadcast's page and its buttons."""

from __future__ import annotations

import re

import httpx
import pytest

from hub.context import Hub
from tests.conftest import ChannelFactory, drain
from tests.e2e.helpers import error_next_to, set_up_admin, text_of

SECRET = "simulator-secret-123"


@pytest.fixture
async def csrf(client: httpx.AsyncClient, make_channel: ChannelFactory) -> str:
    await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": "+15550100000", "delivery_delay_s": 0},
    )
    return await set_up_admin(client)


async def _group(client: httpx.AsyncClient, api_headers: dict[str, str]) -> str:
    group = await client.post("/api/v1/groups", json={"name": "club"}, headers=api_headers)
    group_id: str = group.json()["id"]
    numbers = ["+15552000001", "+15552000002", "+15552000003"]
    await client.post(
        f"/api/v1/groups/{group_id}/members", json={"phones": numbers}, headers=api_headers
    )
    found = await client.get("/api/v1/contacts", params={"q": numbers[-1]}, headers=api_headers)
    newest = found.json()["items"][0]["id"]
    await client.patch(f"/api/v1/contacts/{newest}", json={"name": "Zoë"}, headers=api_headers)
    return group_id


async def test_create_from_the_page_with_a_preview_then_watch_and_cancel(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], csrf: str
) -> None:
    group_id = await _group(client, api_headers)
    page = await client.get("/broadcasts")
    assert page.status_code == 200
    assert 'href="/broadcasts"' in page.text and "No broadcasts" in page.text
    assert f'value="{group_id}"' in page.text

    form = {"_csrf": csrf, "text": "Hi {{ contact.name }}!", "group_ids": group_id}
    preview = await client.post("/broadcasts/preview", data=form)
    assert preview.status_code == 200
    assert "Hi Zoë!" in preview.text  # the group's newest member
    assert re.search(r"data-segments>1<", preview.text)
    assert "data-encoding>UCS-2<" in preview.text  # ë is not in GSM-7
    broken = await client.post("/broadcasts/preview", data={**form, "text": "{{ contact.name"})
    assert 'data-preview="error"' in broken.text

    bad = await client.post("/broadcasts", data={**form, "name": "Club", "text": "{{ x"})
    assert bad.status_code == 422
    assert "template" in error_next_to(bad.text, "text")
    later = "2099-01-01T09:00"
    created = await client.post(
        "/broadcasts", data={**form, "name": "Club night", "send_at": later}
    )
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    detail = await client.get(url)
    assert "scheduled" in text_of(detail.text) and 'data-action="cancel"' in detail.text
    assert 'data-action="pause"' not in detail.text  # a scheduled broadcast cannot pause
    listed = await client.get("/broadcasts")
    assert "Club night" in listed.text and "<progress" in listed.text

    cancelled = await client.post(f"{url}/cancel", data={"_csrf": csrf})
    assert cancelled.status_code == 303
    await drain(hub)
    after = await client.get(url)
    assert 'data-status="cancelled"' in after.text
    assert 'data-action="' not in after.text
    wrong = await client.post(f"{url}/resume", data={"_csrf": csrf})
    assert wrong.status_code == 409


async def test_send_now_shows_the_counts_when_done(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], csrf: str
) -> None:
    group_id = await _group(client, api_headers)
    created = await client.post(
        "/broadcasts",
        data={"_csrf": csrf, "name": "Now", "text": "Hello", "group_ids": group_id},
    )
    assert created.status_code == 303, created.text
    await drain(hub)
    from tests.helpers import fast_forward

    await fast_forward(hub, "broadcast_finish")
    await drain(hub)
    detail = await client.get(created.headers["location"])
    assert 'data-status="completed"' in detail.text
    assert re.search(r'data-count="recipients"><b>3<', detail.text)
