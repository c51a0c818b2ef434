"""Campaigns on the real hub: "2 days before appointment_date at 10:00 local" for contacts
in three time zones, on a fake clock — the exact fire instants, sending at them and not
before, moves (API, a flow's contact.update, CSV import), leaving the group, past dates,
a restart, counts, flow events, pause / resume / end, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.app import build_hub
from hub.context import Hub
from hub.models import CampaignFire, FlowRun, Job, Message
from hub.services.campaigns_schedule import CAMPAIGN_FIRE
from hub.services.retention import prune
from tests.conftest import ChannelFactory, drain, make_settings
from tests.helpers import SimPhone, fast_forward

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
NY, PARIS, TOKYO, LATE = "+12125550101", "+33612345678", "+81312345678", "+12125550199"
ZONES = {NY: "America/New_York", PARIS: "Europe/Paris", TOKYO: "Asia/Tokyo", LATE: None}
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
#: 2030-01-18 10:00 local, 2 days before 2030-01-20, in UTC.
DUE = {
    TOKYO: datetime(2030, 1, 18, 1, 0, tzinfo=UTC),
    PARIS: datetime(2030, 1, 18, 9, 0, tzinfo=UTC),
    NY: datetime(2030, 1, 18, 15, 0, tzinfo=UTC),
}
REMINDER = {
    "field": "appointment_date",
    "offset": {"days": -2},
    "at_time": "10:00",
    "text": "Hi {{ contact.name }}, see you on {{ contact.fields.appointment_date }}",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Retention of runs (and of campaign fires that are over) for the prune test; the
    # other tests' rows are written on a clock in 2030, never old enough. The clock jumps
    # hours and days at a time: no fire is skipped as late, except in the test of that.
    return {"send_spacing_max_s": 0.0, "retain_runs_days": 30, "campaign_late_after_s": 0}


@pytest.fixture
async def sim(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    """A London simulator channel that reports delivery an hour later (no extra jobs)."""
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 3600},
        timezone="Europe/London",
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


def frozen(hub: Hub, at: datetime) -> Callable[[datetime], None]:
    """Stop the hub's clock at ``at``; the returned function moves it."""
    now = [at]
    hub.clock = lambda: now[0]

    def move(to: datetime) -> None:
        now[0] = to

    return move


async def add_contact(
    client: httpx.AsyncClient, headers: dict[str, str], phone: str, date: str
) -> str:
    body: dict[str, Any] = {"phone": phone, "name": f"C{phone[-2:]}"}
    body["fields"] = {"appointment_date": date}
    if ZONES.get(phone):
        body["timezone"] = ZONES[phone]
    resp = await client.post("/api/v1/contacts", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def make_group(client: httpx.AsyncClient, headers: dict[str, str], ids: list[str]) -> str:
    resp = await client.post("/api/v1/groups", json={"name": "patients"}, headers=headers)
    assert resp.status_code == 201, resp.text
    group_id = str(resp.json()["id"])
    if not ids:
        return group_id
    added = await client.post(
        f"/api/v1/groups/{group_id}/members", json={"contact_ids": ids}, headers=headers
    )
    assert added.status_code == 200, added.text
    return group_id


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], group_id: str, *events: dict[str, Any]
) -> dict[str, Any]:
    body = {"name": "Reminders", "group_id": group_id, "events": list(events) or [REMINDER]}
    resp = await client.post("/api/v1/campaigns", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    found: dict[str, Any] = resp.json()
    return found


async def fires(hub: Hub) -> dict[str, CampaignFire]:
    """Every fire row by contact id."""
    async with hub.db.read() as session:
        rows = (await session.execute(sa.select(CampaignFire))).scalars().all()
    return {r.contact_id: r for r in rows}


async def pending_jobs(hub: Hub) -> dict[str, datetime]:
    """Pending campaign_fire jobs: fire id -> run_at."""
    async with hub.db.read() as session:
        rows = (
            await session.execute(
                sa.select(Job).where(col(Job.name) == CAMPAIGN_FIRE, col(Job.status) == "pending")
            )
        ).scalars()
        return {str(j.args["fire_id"]): j.run_at for j in rows if j.key}


async def sent_to(hub: Hub) -> dict[str, str]:
    """Campaign messages: number -> body."""
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message.to_number, Message.body).where(col(Message.source) == "campaign")
        )
        return {str(n): str(b) for n, b in rows.all()}


async def run_until(hub: Hub, move: Callable[[datetime], None], at: datetime) -> None:
    """Move the clock to ``at`` and run whatever is due by then."""
    move(at)
    await fast_forward(hub)
    await drain(hub)


async def counts(client: httpx.AsyncClient, headers: dict[str, str], cid: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/campaigns/{cid}", headers=headers)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()["events"][0]["counts"]
    return found


async def three_zones(
    hub: Hub, client: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[dict[str, str], str, dict[str, Any]]:
    ids = {p: await add_contact(client, headers, p, "2030-01-20") for p in (NY, PARIS, TOKYO)}
    group_id = await make_group(client, headers, list(ids.values()))
    return ids, group_id, await create(client, headers, group_id)


async def test_each_member_gets_the_reminder_at_10_local_two_days_before_and_not_sooner(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    move = frozen(hub, START)
    ids, _, campaign = await three_zones(hub, client, api_headers)
    rows = await fires(hub)
    assert {p: rows[ids[p]].fire_at for p in DUE} == DUE
    jobs = await pending_jobs(hub)
    assert {p: jobs[rows[ids[p]].id] for p in DUE} == DUE
    assert campaign["events"][0]["counts"]["scheduled"] == 3
    assert campaign["events"][0]["counts"]["next_fire_at"].startswith("2030-01-18T01:00:00")
    await run_until(hub, move, DUE[TOKYO] - timedelta(minutes=1))
    assert await sent_to(hub) == {}
    await run_until(hub, move, DUE[TOKYO] + timedelta(seconds=1))
    assert await sent_to(hub) == {TOKYO: "Hi C78, see you on 2030-01-20"}
    await run_until(hub, move, DUE[PARIS] - timedelta(minutes=1))
    assert set(await sent_to(hub)) == {TOKYO}
    await run_until(hub, move, DUE[PARIS])
    assert set(await sent_to(hub)) == {TOKYO, PARIS}
    await run_until(hub, move, DUE[NY] + timedelta(minutes=5))
    assert set(await sent_to(hub)) == {TOKYO, PARIS, NY}
    found = await counts(client, api_headers, campaign["id"])
    assert (found["scheduled"], found["fired"], found["skipped"]) == (0, 3, 0)
    async with hub.db.read() as session:
        statuses = (
            await session.execute(
                sa.select(Message.status).where(col(Message.source) == "campaign")
            )
        ).scalars()
        assert set(statuses) <= {"sent", "delivered"}  # handed to the gateway
    # Run again (a re-delivered job): nothing more goes out.
    await run_until(hub, move, DUE[NY] + timedelta(days=1))
    assert len(await sent_to(hub)) == 3


async def test_moving_the_date_by_api_flow_and_import_moves_the_reminder(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    move = frozen(hub, START)
    ids, _, campaign = await three_zones(hub, client, api_headers)
    first = (await fires(hub))[ids[NY]]
    # API: PATCH the contact's field.
    resp = await client.patch(
        f"/api/v1/contacts/{ids[NY]}",
        json={"fields": {"appointment_date": "2030-01-25"}},
        headers=api_headers,
    )
    assert resp.status_code == 200, resp.text
    moved = (await fires(hub))[ids[NY]]
    assert moved.id == first.id and moved.fire_at == datetime(2030, 1, 23, 15, 0, tzinfo=UTC)
    assert (await pending_jobs(hub))[moved.id] == moved.fire_at
    # A flow's contact.update (a keyword from the contact through the real ingest).
    flow = {
        "name": "Move",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.sms_received",
                "config": {"match": "first_word", "keywords": ["MOVE"]},
            },
            {
                "id": "set",
                "type": "contact.update",
                "config": {"fields": {"appointment_date": "2030-01-27T09:30"}},
            },
        ],
        "edges": [{"from": "start", "to": "set"}],
    }
    resp = await client.post("/api/v1/flows/import?publish=true", json=flow, headers=api_headers)
    assert resp.status_code == 201, resp.text
    move(datetime.now(UTC))  # the webhook's signature is checked on the hub's clock
    await sim.says(PARIS, "MOVE please")
    await drain(hub)
    move(START)
    assert (await fires(hub))[ids[PARIS]].fire_at == datetime(2030, 1, 25, 9, 0, tzinfo=UTC)
    # CSV import.
    csv = f"phone,field:appointment_date\n{TOKYO},2030-02-01\n"
    resp = await client.post(
        "/api/v1/contacts/import",
        content=csv.encode(),
        headers={**api_headers, "content-type": "text/csv"},
    )
    assert resp.status_code == 200, resp.text
    assert (await fires(hub))[ids[TOKYO]].fire_at == datetime(2030, 1, 30, 1, 0, tzinfo=UTC)
    # At the old times nothing goes out (the old jobs are stale); at the new ones it does.
    await run_until(hub, move, DUE[NY] + timedelta(hours=1))
    assert await sent_to(hub) == {}
    await run_until(hub, move, datetime(2030, 2, 1, tzinfo=UTC))
    assert set(await sent_to(hub)) == {NY, PARIS, TOKYO}
    found = await counts(client, api_headers, campaign["id"])
    assert (found["scheduled"], found["fired"]) == (0, 3)


async def test_leaving_the_group_cancels_and_a_past_date_is_skipped_not_fired(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    move = frozen(hub, START)
    ids = {p: await add_contact(client, api_headers, p, "2030-01-20") for p in (NY, PARIS)}
    ids[LATE] = await add_contact(client, api_headers, LATE, "2029-12-25")
    ids[TOKYO] = await add_contact(client, api_headers, TOKYO, "next week")
    group_id = await make_group(client, api_headers, list(ids.values()))
    campaign = await create(client, api_headers, group_id)
    resp = await client.delete(
        f"/api/v1/groups/{group_id}/members/{ids[PARIS]}", headers=api_headers
    )
    assert resp.status_code == 204, resp.text
    rows = await fires(hub)
    assert (rows[ids[PARIS]].status, rows[ids[PARIS]].reason) == ("cancelled", "left_group")
    assert (rows[ids[LATE]].status, rows[ids[LATE]].reason) == ("skipped", "past")
    assert rows[ids[LATE]].fire_at == datetime(2029, 12, 23, 10, 0, tzinfo=UTC)  # channel: UTC+0
    assert (rows[ids[TOKYO]].status, rows[ids[TOKYO]].reason) == ("skipped", "bad_date")
    assert set(await pending_jobs(hub)) == {rows[ids[NY]].id, rows[ids[PARIS]].id}
    await run_until(hub, move, datetime(2030, 1, 19, tzinfo=UTC))
    assert set(await sent_to(hub)) == {NY}
    found = await counts(client, api_headers, campaign["id"])
    assert {k: found[k] for k in ("scheduled", "fired", "skipped", "cancelled")} == {
        "scheduled": 0,
        "fired": 1,
        "skipped": 2,
        "cancelled": 1,
    }
    assert found["skipped_reasons"] == {"past": 1, "bad_date": 1}
    # Joining again schedules it again; STOP cancels; START brings it back (ahead only).
    move(START)
    added = await client.post(
        f"/api/v1/groups/{group_id}/members",
        json={"contact_ids": [ids[PARIS]]},
        headers=api_headers,
    )
    assert added.status_code == 200
    assert (await fires(hub))[ids[PARIS]].status == "scheduled"
    move(datetime.now(UTC))
    await sim.says(PARIS, "STOP")
    await drain(hub)
    assert ((await fires(hub))[ids[PARIS]].reason) == "opted_out"
    await sim.says(PARIS, "START")
    await drain(hub)
    assert (await fires(hub))[ids[PARIS]].status == "scheduled"
    # Blocking by API cancels, unblocking schedules again; so does PATCH opted_out.
    move(START)
    for change, expected in (
        ({"blocked": True}, ("cancelled", "blocked")),
        ({"blocked": False}, ("scheduled", None)),
        ({"opted_out": True}, ("cancelled", "opted_out")),
        ({"opted_out": False}, ("scheduled", None)),
    ):
        resp = await client.patch(
            f"/api/v1/contacts/{ids[PARIS]}", json=change, headers=api_headers
        )
        assert resp.status_code == 200, resp.text
        row = (await fires(hub))[ids[PARIS]]
        assert (row.status, row.reason) == expected, change


async def test_pending_fires_survive_a_restart(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    sim: SimPhone,
    tmp_path: Path,
    database_url: str,
) -> None:
    frozen(hub, START)
    await three_zones(hub, client, api_headers)
    await hub.close()
    again = build_hub(
        make_settings(tmp_path, database_url, send_spacing_max_s=0.0, campaign_late_after_s=0)
    )
    try:
        move = frozen(again, START)
        assert len(await pending_jobs(again)) == 3
        await run_until(again, move, DUE[NY] + timedelta(seconds=1))
        assert set(await sent_to(again)) == {NY, PARIS, TOKYO}
    finally:
        await again.close()


async def test_a_fire_missed_while_the_hub_was_down_goes_out_late_only_within_the_limit(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    """Down at each 10:00: back 10 minutes later, Tokyo's and Paris's reminders still go
    out; back more than the limit after New York's, it is skipped as ``late``, never sent."""
    hub.settings = hub.settings.model_copy(update={"campaign_late_after_s": 3600.0})
    move = frozen(hub, START)
    _ids, _group, campaign = await three_zones(hub, client, api_headers)
    await run_until(hub, move, DUE[TOKYO] + timedelta(minutes=10))
    await run_until(hub, move, DUE[PARIS] + timedelta(minutes=59))
    assert set(await sent_to(hub)) == {TOKYO, PARIS}
    await run_until(hub, move, DUE[NY] + timedelta(hours=1, seconds=1))
    assert set(await sent_to(hub)) == {TOKYO, PARIS}
    found = await counts(client, api_headers, campaign["id"])
    assert (found["fired"], found["skipped"], found["skipped_reasons"]) == (2, 1, {"late": 1})


async def test_a_flow_event_starts_the_published_flow_once_for_the_contact(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    move = frozen(hub, START)
    flow = {
        "name": "Confirm",
        "nodes": [
            {"id": "start", "type": "trigger.http", "config": {}},
            {
                "id": "ask",
                "type": "sms.send",
                "config": {
                    "to": "{{ contact.phone }}",
                    "text": "Confirm {{ trigger.data.campaign_id }}?",
                },
            },
        ],
        "edges": [{"from": "start", "to": "ask"}],
    }
    resp = await client.post("/api/v1/flows/import?publish=true", json=flow, headers=api_headers)
    assert resp.status_code == 201, resp.text
    flow_id = resp.json()["id"]
    contact = await add_contact(client, api_headers, PARIS, "2030-01-20")
    group_id = await make_group(client, api_headers, [contact])
    event = {"field": "appointment_date", "offset": {"days": -1, "hours": 9}, "flow_id": flow_id}
    campaign = await create(client, api_headers, group_id, event)
    # Midnight Paris of the 20th, minus a day, plus nine hours: 09:00 Paris on the 19th.
    assert (await fires(hub))[contact].fire_at == datetime(2030, 1, 19, 8, 0, tzinfo=UTC)
    await run_until(hub, move, datetime(2030, 1, 19, 8, 0, 1, tzinfo=UTC))
    await run_until(hub, move, datetime(2030, 1, 19, 9, 0, tzinfo=UTC))
    async with hub.db.read() as session:
        runs = (await session.execute(sa.select(FlowRun))).scalars().all()
        bodies = (
            (await session.execute(sa.select(Message.body).where(col(Message.to_number) == PARIS)))
            .scalars()
            .all()
        )
    assert [r.status for r in runs] == ["completed"]
    assert runs[0].doc["trigger"]["type"] == "campaign.event"
    assert list(bodies) == [f"Confirm {campaign['id']}?"]
    assert (await fires(hub))[contact].run_id == runs[0].id


async def test_pause_resume_edit_and_end(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    move = frozen(hub, START)
    ids, _, campaign = await three_zones(hub, client, api_headers)
    url = f"/api/v1/campaigns/{campaign['id']}"
    paused = await client.patch(url, json={"status": "paused"}, headers=api_headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["counts"] == {"scheduled": 0, "fired": 0, "skipped": 0, "cancelled": 3}
    resumed = await client.patch(url, json={"status": "active"}, headers=api_headers)
    assert resumed.json()["counts"]["scheduled"] == 3
    event_id = campaign["events"][0]["id"]
    edited = await client.patch(
        url,
        json={"events": [{**REMINDER, "id": event_id, "offset": {"days": -1}}]},
        headers=api_headers,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["events"][0]["id"] == event_id
    assert (await fires(hub))[ids[PARIS]].fire_at == datetime(2030, 1, 19, 9, 0, tzinfo=UTC)
    listed = await client.get("/api/v1/campaigns", headers=api_headers)
    assert [c["id"] for c in listed.json()["items"]] == [campaign["id"]]
    ended = await client.delete(url, headers=api_headers)
    assert ended.status_code == 204
    shown = (await client.get(url, headers=api_headers)).json()
    assert shown["status"] == "ended" and shown["counts"]["cancelled"] == 3
    await run_until(hub, move, datetime(2030, 1, 21, tzinfo=UTC))
    assert await sent_to(hub) == {}
    again = await client.patch(url, json={"name": "x"}, headers=api_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "campaign_ended"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"field": "d", "offset": {"days": -2}}, "events[0].text"),  # neither text nor flow
        ({"field": "d", "offset": {"days": 1}, "text": "a", "flow_id": "f"}, "events[0].text"),
        ({"field": "d", "offset": {}, "text": "a"}, "events[0].offset"),
        ({"field": "d", "offset": {"days": 99999}, "text": "a"}, "events[0].offset"),
        ({"field": "d", "offset": {"weeks": 1}, "text": "a"}, "offset"),
        ({"field": "d", "offset": {"days": 1}, "at_time": "25:00", "text": "a"}, "at_time"),
        ({"field": "d", "offset": {"days": 1}, "text": "{{ nope("}, "events[0].text"),
        ({"field": "d", "offset": {"days": 1}, "flow_id": "flw_missing"}, "events[0].flow_id"),
    ],
)
async def test_bad_events_are_a_422_naming_the_field(
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    sim: SimPhone,
    event: dict[str, Any],
    field: str,
) -> None:
    group_id = await make_group(client, api_headers, [])
    body = {"name": "x", "group_id": group_id, "events": [event]}
    resp = await client.post("/api/v1/campaigns", json=body, headers=api_headers)
    assert resp.status_code == 422, resp.text
    assert field in resp.text


async def test_unknown_group_and_campaign_are_clear_errors(
    client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    body = {"name": "x", "group_id": "grp_nope", "events": [REMINDER]}
    resp = await client.post("/api/v1/campaigns", json=body, headers=api_headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "unknown_group"
    missing = await client.get("/api/v1/campaigns/cmp_nope", headers=api_headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "campaign_not_found"
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"/api/v1/campaigns", "/api/v1/campaigns/{campaign_id}"} <= set(schema["paths"])
    for shape in ("CampaignIn", "EventIn", "OffsetIn", "CampaignPatch"):
        fields = schema["components"]["schemas"][shape]["properties"]
        assert all(f.get("description") for f in fields.values()), shape


async def test_fires_that_are_over_are_pruned_with_the_runs_retention(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    move = frozen(hub, START)
    ids, _, campaign = await three_zones(hub, client, api_headers)
    await run_until(hub, move, DUE[PARIS] + timedelta(seconds=1))  # Tokyo and Paris fired
    counted = await prune(hub, dry_run=True, now=START + timedelta(days=40))
    assert counted["campaign_fires"] == 0  # fired on the 18th: not 30 days ago yet
    counted = await prune(hub, now=DUE[NY] + timedelta(days=31))
    assert counted["campaign_fires"] == 2
    assert set(await fires(hub)) == {ids[NY]}  # the scheduled one stays
    assert (await counts(client, api_headers, campaign["id"]))["scheduled"] == 1


async def test_a_contact_without_a_zone_follows_the_channels_zone(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], sim: SimPhone
) -> None:
    frozen(hub, START)
    contact = await add_contact(client, api_headers, LATE, "2030-01-20")  # no timezone
    campaign = await create(client, api_headers, await make_group(client, api_headers, [contact]))
    assert (await fires(hub))[contact].fire_at == datetime(2030, 1, 18, 10, 0, tzinfo=UTC)
    resp = await client.patch(
        f"/api/v1/channels/{campaign['channel_id']}",
        json={"timezone": "Asia/Tokyo"},
        headers=api_headers,
    )
    assert resp.status_code == 200, resp.text
    assert (await fires(hub))[contact].fire_at == DUE[TOKYO]
