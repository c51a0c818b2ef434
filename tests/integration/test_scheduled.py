"""Scheduled messages (send_at, PATCH, cancel) and quiet hours, through the API and the
queue (simulator gateway; a fake clock where hours pass)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import Contact, Job, Message
from hub.queue.base import enqueue_job
from hub.services.handover import SEND_MESSAGE
from tests.conftest import ChannelFactory, drain
from tests.helpers import fast_forward, running_queue
from tests.integration.test_sending import ALICE, SECRET, SIM_NUMBER, get_message, send


@pytest.fixture
async def sim(make_channel: ChannelFactory) -> str:
    """A Paris simulator channel that reports delivery an hour later (no extra jobs)."""
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 3600},
        timezone="Europe/Paris",
    )
    return str(channel.id)


def frozen(hub: Hub, at: datetime) -> Callable[[datetime], None]:
    """Stop the hub's clock at ``at``; the returned function moves it."""
    now = [at]
    hub.clock = lambda: now[0]

    def move(to: datetime) -> None:
        now[0] = to

    return move


async def job_of(hub: Hub, message_id: str) -> Job | None:
    async with hub.db.read() as session:
        found = await session.execute(sa.select(Job).where(Job.key == f"send:{message_id}"))
        return found.scalar_one_or_none()


def iso(at: datetime) -> str:
    return at.isoformat()


async def test_a_message_scheduled_for_t_plus_5_s_goes_out_at_t_plus_5_s(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=5)
    resp = await send(client, api_headers, send_at=iso(send_at))
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "scheduled"
    message_id = resp.json()["id"]
    job = await job_of(hub, message_id)
    assert job is not None and abs(job.run_at - send_at) < timedelta(milliseconds=1)
    listed = (await client.get("/api/v1/messages?status=scheduled", headers=api_headers)).json()
    assert [m["id"] for m in listed["items"]] == [message_id]
    async with running_queue(hub):
        for _ in range(200):
            if (await get_message(client, api_headers, message_id))["status"] == "sent":
                break
            await asyncio.sleep(0.05)
    msg = await get_message(client, api_headers, message_id)
    assert [h["status"] for h in msg["history"]] == ["scheduled", "queued", "sending", "sent"]
    async with hub.db.read() as session:
        handed = (await session.get(Message, message_id)).handed_at  # type: ignore[union-attr]
    assert handed is not None
    assert send_at <= handed < send_at + timedelta(seconds=1.5)


async def test_a_message_cancelled_before_its_time_never_goes_out(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    send_at = datetime.now(UTC) + timedelta(hours=1)
    message_id = (await send(client, api_headers, send_at=iso(send_at))).json()["id"]
    resp = await client.post(f"/api/v1/messages/{message_id}/cancel", headers=api_headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "cancelled"
    assert await job_of(hub, message_id) is None
    move = frozen(hub, send_at + timedelta(seconds=1))
    # A timer that outlived the row (a deferred arq job, say) runs and sends nothing.
    stale = enqueue_job(SEND_MESSAGE, {"message_id": message_id, "channel_id": sim})
    await hub.store.write(stale)
    await fast_forward(hub)
    await drain(hub)
    msg = await get_message(client, api_headers, message_id)
    assert msg["status"] == "cancelled" and msg["provider_message_id"] is None
    assert [h["status"] for h in msg["history"]] == ["scheduled", "cancelled"]
    again = await client.post(f"/api/v1/messages/{message_id}/cancel", headers=api_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_cancellable"
    edit = await client.patch(
        f"/api/v1/messages/{message_id}", json={"text": "too late"}, headers=api_headers
    )
    assert edit.status_code == 409 and edit.json()["error"]["code"] == "not_scheduled"
    # A message that went out cannot be cancelled either.
    move(datetime.now(UTC))
    sent_id = (await send(client, api_headers)).json()["id"]
    await drain(hub)
    gone = await client.post(f"/api/v1/messages/{sent_id}/cancel", headers=api_headers)
    assert gone.status_code == 409
    assert gone.json()["error"]["details"]["status"] == "sent"


async def test_patch_changes_the_text_and_time_of_a_scheduled_message(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    first = datetime.now(UTC) + timedelta(hours=1)
    message_id = (await send(client, api_headers, send_at=iso(first))).json()["id"]
    later = first + timedelta(hours=1)
    resp = await client.patch(
        f"/api/v1/messages/{message_id}",
        json={"text": "See you at 10 instead", "send_at": iso(later)},
        headers=api_headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["body"] == "See you at 10 instead"
    job = await job_of(hub, message_id)
    assert job is not None and abs(job.run_at - later) < timedelta(milliseconds=1)
    # A timer that fires early (a stale one, say) finds it not due and re-times itself.
    move = frozen(hub, first + timedelta(seconds=1))
    await fast_forward(hub)
    await drain(hub)
    assert (await get_message(client, api_headers, message_id))["status"] == "scheduled"
    move(later + timedelta(seconds=1))
    await fast_forward(hub)
    await drain(hub)
    msg = await get_message(client, api_headers, message_id)
    assert msg["status"] == "sent" and msg["body"] == "See you at 10 instead"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"send_at": "2020-01-01T00:00:00+00:00"}, "send_at"),
        ({"send_at": "2999-01-01T00:00:00+00:00"}, "send_at"),
        ({"send_at": "2030-01-01T09:00:00"}, "send_at"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"quiet_hours": {"start": "21:00", "end": "8"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "21:00", "end": "21:00"}}, "quiet_hours"),
    ],
)
async def test_bad_send_at_or_quiet_hours_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    sim: str,
    payload: dict[str, Any],
    field: str,
) -> None:
    resp = await send(client, api_headers, **payload)
    assert resp.status_code == 422, resp.text
    assert field in resp.text


async def test_the_same_idempotency_key_with_send_at_is_the_same_message(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    body = {"send_at": iso(datetime.now(UTC) + timedelta(hours=2)), "idempotency_key": "k-1"}
    one = await send(client, api_headers, **body)
    two = await send(client, api_headers, **body)
    assert one.json()["id"] == two.json()["id"] and two.json()["duplicate"] is True
    assert two.json()["status"] == "scheduled"


async def test_a_message_due_in_quiet_hours_waits_for_their_end(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    evening = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # 22:00 in Paris
    move = frozen(hub, evening)
    quiet = {"start": "21:00", "end": "08:00"}
    message_id = (await send(client, api_headers, quiet_hours=quiet)).json()["id"]
    await drain(hub)
    msg = await get_message(client, api_headers, message_id)
    morning = "2026-12-02T07:00:00Z"  # 08:00 in Paris
    assert msg["status"] == "queued" and msg["quiet_hours"] == quiet
    assert msg["waiting_reason"] == f"quiet hours until {morning}"
    assert msg["next_attempt_at"].startswith("2026-12-02T07:00:00")
    job = await job_of(hub, message_id)
    assert job is not None and job.attempts == 0
    assert job.run_at > datetime.now(UTC) + timedelta(hours=9)
    move(datetime(2026, 12, 2, 6, 59, tzinfo=UTC))
    await fast_forward(hub)
    await drain(hub)
    assert (await get_message(client, api_headers, message_id))["status"] == "queued"
    move(datetime(2026, 12, 2, 7, 0, 1, tzinfo=UTC))
    await fast_forward(hub)
    await drain(hub)
    msg = await get_message(client, api_headers, message_id)
    assert msg["status"] == "sent" and msg["waiting_reason"] is None


async def test_quiet_hours_follow_the_contact_timezone_then_the_channel_default(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: str
) -> None:
    resp = await client.patch(
        f"/api/v1/channels/{sim}",
        json={"quiet_hours": {"start": "21:00", "end": "08:00"}},
        headers=api_headers,
    )
    assert resp.status_code == 200 and resp.json()["timezone"] == "Europe/Paris"
    hub.channels.invalidate(sim)
    frozen(hub, datetime(2026, 12, 1, 22, 0, tzinfo=UTC))  # 23:00 Paris, 17:00 New York
    in_paris = (await send(client, api_headers)).json()["id"]
    in_new_york = (await send(client, api_headers, to="+12125550123")).json()["id"]
    async with hub.db.write() as session:
        await session.execute(
            sa.update(Contact)
            .where(Contact.phone == "+12125550123")  # type: ignore[arg-type]
            .values(timezone="America/New_York")
        )
    await drain(hub)
    waiting = await get_message(client, api_headers, in_paris)
    assert waiting["status"] == "queued" and waiting["quiet_hours"]["start"] == "21:00"
    assert waiting["to"] == ALICE
    assert (await get_message(client, api_headers, in_new_york))["status"] == "sent"


async def test_the_conversation_composer_sends_later_and_cancels(
    hub: Hub, client: httpx.AsyncClient, sim: str
) -> None:
    from tests.e2e.helpers import error_next_to, set_up_admin
    from tests.helpers import SimPhone

    csrf = await set_up_admin(client)
    await SimPhone(client, sim, SECRET, SIM_NUMBER).says(ALICE, "hello")
    async with hub.db.read() as session:
        contact = (await session.execute(sa.select(Contact))).scalar_one()
    thread = f"/conversations/{contact.id}/{sim}"
    page = await client.get(thread)
    assert 'name="send_at"' in page.text and "Europe/Paris" in page.text
    later = datetime.now(UTC) + timedelta(days=2)
    local = later.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%dT%H:%M")
    form = {"_csrf": csrf, "message": "Reminder: tomorrow 9:00", "send_at": local}
    assert (await client.post(f"{thread}/send", data=form)).status_code == 303
    async with hub.db.read() as session:
        msg = (
            await session.execute(sa.select(Message).where(Message.direction == "outbound"))  # type: ignore[arg-type]
        ).scalar_one()
    assert msg.status == "scheduled" and msg.source == "ui"
    assert msg.send_at is not None and abs(msg.send_at - later) < timedelta(minutes=1)
    bubbles = await client.get(f"{thread}/messages")
    assert "data-scheduled" in bubbles.text and 'data-action="cancel"' in bubbles.text
    resp = await client.post(f"{thread}/messages/{msg.id}/cancel", data={"_csrf": csrf})
    assert resp.status_code == 303
    async with hub.db.read() as session:
        assert (await session.get(Message, msg.id)).status == "cancelled"  # type: ignore[union-attr]
    assert "data-scheduled" not in (await client.get(f"{thread}/messages")).text
    bad = await client.post(
        f"{thread}/send", data={**form, "send_at": "2020-01-01T09:00"}, headers={"HX-Request": "1"}
    )
    assert "future" in error_next_to(bad.text, "send_at")


async def test_the_new_routes_and_fields_are_in_the_openapi_schema(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert "patch" in paths["/api/v1/messages/{message_id}"]
    assert "post" in paths["/api/v1/messages/{message_id}/cancel"]
    assert "patch" in paths["/api/v1/devices/{device_id}"]
    shapes = schema["components"]["schemas"]
    for shape, fields in {
        "SendIn": ("send_at", "quiet_hours"),
        "MessageOut": ("send_at", "waiting_reason", "next_attempt_at"),
        "SimIn": ("slot", "rate_per_min", "daily_cap"),
        "DevicePatch": ("sims",),
    }.items():
        for name in fields:
            prop = shapes[shape]["properties"][name]
            described = prop.get("description") or any(
                "description" in option for option in prop.get("oneOf", prop.get("anyOf", []))
            )
            assert described, f"{shape}.{name} has no description"
