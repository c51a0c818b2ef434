"""The campaigns page, signed in: the nav entry, the create form (group, an event with a
date field, offset, local time and text), errors next to the fields, a campaign's page
with its event's counts, pause / resume / end."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import CampaignFire
from tests.conftest import ChannelFactory
from tests.e2e.helpers import error_next_to, set_up_admin, text_of

SECRET = "simulator-secret-123"


@pytest.fixture
async def csrf(client: httpx.AsyncClient, make_channel: ChannelFactory) -> str:
    await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": "+15550100000", "delivery_delay_s": 0},
        timezone="Europe/Paris",
    )
    return await set_up_admin(client)


async def _group(client: httpx.AsyncClient, api_headers: dict[str, str]) -> str:
    group = await client.post("/api/v1/groups", json={"name": "patients"}, headers=api_headers)
    group_id: str = group.json()["id"]
    for phone, date in (("+15552000001", "2099-03-10"), ("+15552000002", "")):
        body = {"phone": phone, "fields": {"appointment_date": date} if date else {}}
        made = await client.post("/api/v1/contacts", json=body, headers=api_headers)
        await client.post(
            f"/api/v1/groups/{group_id}/members",
            json={"contact_ids": [made.json()["id"]]},
            headers=api_headers,
        )
    return group_id


async def test_create_from_the_page_see_the_counts_then_pause_resume_and_end(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], csrf: str
) -> None:
    group_id = await _group(client, api_headers)
    page = await client.get("/campaigns")
    assert page.status_code == 200
    assert 'href="/campaigns"' in page.text and "No campaigns" in page.text
    assert f'value="{group_id}"' in page.text

    form = {
        "_csrf": csrf,
        "name": "Reminders",
        "group_id": group_id,
        "ev0_field": "appointment_date",
        "ev0_amount": "2",
        "ev0_unit": "days",
        "ev0_when": "before",
        "ev0_at_time": "10:00",
        "ev0_kind": "text",
        "ev0_text": "See you on {{ contact.fields.appointment_date }}",
    }
    bad = await client.post("/campaigns", data={**form, "ev0_at_time": "25:00"})
    assert bad.status_code == 422
    assert "HH:MM" in error_next_to(bad.text, "ev0_at_time")
    broken = await client.post("/campaigns", data={**form, "ev0_text": "{{ x"})
    assert broken.status_code == 422 and "template" in error_next_to(broken.text, "ev0_text")
    missing = await client.post("/campaigns", data={**form, "group_id": ""})
    assert missing.status_code == 422 and error_next_to(missing.text, "group_id")

    created = await client.post("/campaigns", data=form)
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    async with hub.db.read() as session:
        fires = (await session.execute(sa.select(CampaignFire))).scalars().all()
    scheduled = [f for f in fires if f.status == "scheduled"]
    # 10:00 in Paris (the channel's zone: the contact has none) two days before.
    assert [f.fire_at for f in scheduled] == [datetime(2099, 3, 8, 9, 0, tzinfo=UTC)]
    detail = await client.get(url)
    assert detail.status_code == 200
    assert 'data-count="scheduled">1<' in detail.text
    assert 'data-count="skipped">1' in detail.text and "no_date 1" in detail.text
    assert 'data-action="pause"' in detail.text and 'data-action="resume"' not in detail.text
    listed = await client.get("/campaigns")
    assert "Reminders" in listed.text and "1 scheduled" in text_of(listed.text)

    paused = await client.post(f"{url}/pause", data={"_csrf": csrf})
    assert paused.status_code == 303
    after = await client.get(url)
    assert 'data-action="resume"' in after.text and 'data-count="cancelled">1<' in after.text
    await client.post(f"{url}/resume", data={"_csrf": csrf})
    assert 'data-count="scheduled">1<' in (await client.get(url)).text
    ended = await client.post(f"{url}/end", data={"_csrf": csrf})
    assert ended.status_code == 303
    final = await client.get(url)
    assert 'data-status="ended"' in final.text and 'data-action="' not in final.text
