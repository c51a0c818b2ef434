"""The broadcast form's flow option and its send_at read in the channel's time zone (errors
next to the field), and blocked contacts in the UI: the block / unblock action on the
contact form, the badge, the filter, and skipped_blocked on the broadcast page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from hub.context import Hub
from hub.models import Broadcast
from tests.conftest import ChannelFactory, drain
from tests.e2e.helpers import error_next_to, set_up_admin, text_of
from tests.integration.test_broadcasts import make_group, settle

SECRET = "simulator-secret-123"
SURVEY = {
    "name": "Survey",
    "nodes": [
        {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
        {"id": "ask", "type": "sms.send", "config": {"to": "{{ contact.phone }}", "text": "1-5?"}},
    ],
    "edges": [{"from": "start", "to": "ask"}],
}


@pytest.fixture
async def channel_id(client: httpx.AsyncClient, make_channel: ChannelFactory) -> str:
    channel = await make_channel(
        "simulator",
        name="Shop",
        webhook_secret=SECRET,
        timezone="America/New_York",
        config={"phone_number": "+15550100000", "delivery_delay_s": 0},
    )
    return str(channel.id)


async def broadcast_row(hub: Hub, url: str) -> Broadcast:
    async with hub.db.read() as session:
        row = await session.get(Broadcast, url.rsplit("/", 1)[-1])
    assert row is not None
    return row


async def test_flow_option_and_send_at_in_the_channel_time_zone(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], channel_id: str
) -> None:
    csrf = await set_up_admin(client)
    group_id = await make_group(client, api_headers, "panel", ["+15552000001", "+15552000002"])
    draft = await client.post(
        "/api/v1/flows/import", json={**SURVEY, "name": "Draft only"}, headers=api_headers
    )
    assert draft.status_code == 201, draft.text
    flow = await client.post("/api/v1/flows/import?publish=true", json=SURVEY, headers=api_headers)
    flow_id = flow.json()["id"]
    page = await client.get("/broadcasts")
    assert f'value="{flow_id}"' in page.text  # published flows are offered
    assert draft.json()["id"] not in page.text  # an unpublished one is not
    assert "Shop (America/New_York)" in page.text

    base = {"_csrf": csrf, "name": "Survey", "group_ids": group_id, "channel_id": channel_id}
    missing = await client.post("/broadcasts", data={**base, "kind": "flow"})
    assert missing.status_code == 422
    assert "flow" in error_next_to(missing.text, "flow_id")
    unknown = await client.post("/broadcasts", data={**base, "kind": "flow", "flow_id": "flw_x"})
    assert unknown.status_code == 422 and "unknown flow" in error_next_to(unknown.text, "flow_id")
    bad_time = await client.post(
        "/broadcasts", data={**base, "kind": "flow", "flow_id": flow_id, "send_at": "soon"}
    )
    assert bad_time.status_code == 422 and error_next_to(bad_time.text, "send_at")

    # 09:00 in New York on 1 July 2099 (EDT, UTC-4) is 13:00 UTC.
    created = await client.post(
        "/broadcasts",
        data={
            **base,
            "kind": "flow",
            "flow_id": flow_id,
            "text": "",
            "send_at": "2099-07-01T09:00",
        },
    )
    assert created.status_code == 303, created.text
    row = await broadcast_row(hub, created.headers["location"])
    assert row.flow_id == flow_id and row.text is None
    assert row.send_at == datetime(2099, 7, 1, 13, 0, tzinfo=UTC)

    # A text broadcast on the same channel: 09:00 in January is EST (UTC-5).
    text = await client.post(
        "/broadcasts", data={**base, "text": "Hello", "send_at": "2099-01-15T09:00"}
    )
    assert text.status_code == 303, text.text
    row = await broadcast_row(hub, text.headers["location"])
    assert row.text == "Hello" and row.flow_id is None
    assert row.send_at == datetime(2099, 1, 15, 14, 0, tzinfo=UTC)


async def test_block_from_the_contact_form_and_skipped_blocked_on_the_page(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], channel_id: str
) -> None:
    csrf = await set_up_admin(client)
    members = ["+15552000001", "+15552000002", "+15552000003"]
    group_id = await make_group(client, api_headers, "club", members)
    ann = (await client.get(f"/api/v1/contacts/{members[0]}", headers=api_headers)).json()
    form = await client.get(f"/contacts/{ann['id']}/edit")
    assert 'data-action="block"' in form.text and 'data-badge="blocked"' not in form.text
    blocked = await client.post(
        f"/contacts/{ann['id']}/block", data={"_csrf": csrf, "blocked": "1"}
    )
    assert blocked.status_code == 303
    form = await client.get(f"/contacts/{ann['id']}/edit")
    assert 'data-badge="blocked"' in form.text and 'data-action="unblock"' in form.text
    listed = await client.get("/contacts", params={"status": "blocked"})
    assert members[0] in listed.text and members[1] not in listed.text
    assert 'data-badge="blocked"' in listed.text

    created = await client.post(
        "/broadcasts",
        data={"_csrf": csrf, "name": "Club", "text": "Hi", "group_ids": group_id},
    )
    assert created.status_code == 303, created.text
    await settle(hub)
    detail = await client.get(created.headers["location"])
    assert re.search(r'data-count="skipped_blocked"><b>1<', detail.text), text_of(detail.text)
    assert "1 blocked" in (await client.get("/broadcasts")).text

    unblocked = await client.post(
        f"/contacts/{ann['id']}/block", data={"_csrf": csrf, "blocked": "0"}
    )
    assert unblocked.status_code == 303
    await drain(hub)
    again = (await client.get(f"/api/v1/contacts/{ann['id']}", headers=api_headers)).json()
    assert again["blocked"] is False
