"""trigger.schedule on the real hub: ticks are queue jobs, fired once per tick across
restarts and by two hubs at once, missed ticks are not fired as a backlog, and a group
schedule starts one run per member (through a flow broadcast). A fake hub clock; the
queue is driven by drain() after fast_forward() makes the tick due."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from hub.app import build_hub
from hub.context import Hub
from hub.models import Broadcast, FlowRun, Job
from hub.services.flow_schedules import SCHEDULE_TICK, schedule_tick
from hub.services.flow_store import run_of
from tests.conftest import drain, make_settings
from tests.helpers import SimPhone, fast_forward
from tests.integration.test_flow_triggers import make_group
from tests.integration.test_flows_hub import ANN, phone, publish, texts_to

__all__ = ["phone"]  # the fixture, imported for these tests

START = datetime(2031, 3, 3, 10, 0, 30, tzinfo=UTC)
BEN = "+15550002222"


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return START.replace(hour=hour, minute=minute, second=second)


def frozen(hub: Hub, when: datetime) -> Callable[[datetime], None]:
    """Stop the hub's clock at ``when``; the returned function moves it."""
    now = [when]
    hub.clock = lambda: now[0]

    def move(to: datetime) -> None:
        now[0] = to

    return move


def scheduled(schedule: dict[str, Any], then: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "Heartbeat",
        "nodes": [
            {"id": "schedule", "type": "trigger.schedule", "config": schedule},
            then or {"id": "done", "type": "flow.stop", "config": {}},
        ],
        "edges": [{"from": "schedule", "to": (then or {"id": "done"})["id"]}],
    }


async def ticks_fired(hub: Hub, flow_id: str) -> list[str]:
    """The scheduled_at of every run of the flow, in order."""
    async with hub.db.read() as session:
        rows = await session.execute(sa.select(FlowRun).where(col(FlowRun.flow_id) == flow_id))
        runs = [run_of(row) for row in rows.scalars()]
    return sorted(str(r.trigger["data"]["scheduled_at"]) for r in runs)


async def pending_ticks(hub: Hub) -> list[str]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Job.args).where(col(Job.name) == SCHEDULE_TICK).order_by(col(Job.run_at))
        )
        return [str(args["tick"]) for args in rows.scalars()]


async def tick_now(hub: Hub) -> None:
    """Make the queued tick due (the queue runs on real time) and run the queue."""
    await fast_forward(hub, SCHEDULE_TICK)
    await drain(hub)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_every_minute_fires_once_per_minute_across_restarts_never_twice_a_tick(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    tmp_path: Path,
    database_url: str,
) -> None:
    move = frozen(hub, START)
    flow = await publish(client, api_headers, scheduled({"every": {"minutes": 1}}))
    flow_id = flow["id"]
    assert await pending_ticks(hub) == [iso(at(10, 1))]  # publishing queued the next tick
    await drain(hub)  # nothing is due yet
    assert await ticks_fired(hub, flow_id) == []

    move(at(10, 1))
    await tick_now(hub)
    assert await ticks_fired(hub, flow_id) == [iso(at(10, 1))]
    assert await pending_ticks(hub) == [iso(at(10, 2))]
    await drain(hub)  # the periodic re-ensure queues nothing new
    assert await pending_ticks(hub) == [iso(at(10, 2))]

    move(at(10, 2, 5))
    await tick_now(hub)
    # The same tick job again (a re-run after a crash): no second run.
    await schedule_tick(hub, flow_id, "schedule", iso(at(10, 2)))
    assert await ticks_fired(hub, flow_id) == [iso(at(10, 1)), iso(at(10, 2))]

    # Restart: a new hub on the same database carries on from the queued tick.
    await hub.close()
    second = build_hub(make_settings(tmp_path, database_url))
    try:
        move = frozen(second, at(10, 2, 40))
        await drain(second)
        assert await ticks_fired(second, flow_id) == [iso(at(10, 1)), iso(at(10, 2))]
        move(at(10, 3, 1))
        await tick_now(second)
        fired = [iso(at(10, 1)), iso(at(10, 2)), iso(at(10, 3))]
        assert await ticks_fired(second, flow_id) == fired
    finally:
        await second.close()

    # Down from 10:03 to 10:30: the latest tick fires once, the 26 missed ones do not.
    third = build_hub(make_settings(tmp_path, database_url))
    fourth = build_hub(make_settings(tmp_path / "fourth", database_url))
    try:
        frozen(third, at(10, 30, 20))
        await tick_now(third)
        fired.append(iso(at(10, 30)))
        assert await ticks_fired(third, flow_id) == fired
        assert await pending_ticks(third) == [iso(at(10, 31))]
        # Two hubs run the 10:31 tick job at the same moment: one run.
        frozen(third, at(10, 31))
        frozen(fourth, at(10, 31))
        tick = iso(at(10, 31))
        await asyncio.gather(
            schedule_tick(third, flow_id, "schedule", tick),
            schedule_tick(fourth, flow_id, "schedule", tick),
        )
        assert await ticks_fired(third, flow_id) == [*fired, tick]
    finally:
        await third.close()
        await fourth.close()


async def test_a_tick_later_than_the_grace_is_skipped_and_the_next_one_queued(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    move = frozen(hub, START)
    flow = await publish(
        client, api_headers, scheduled({"cron": "0 9 * * *", "timezone": "Europe/Paris"})
    )
    assert await pending_ticks(hub) == ["2031-03-04T08:00:00Z"]  # 09:00 in Paris (CET)
    move(datetime(2031, 3, 4, 8, 20, tzinfo=UTC))  # the hub was down 20 minutes past 9:00
    await tick_now(hub)
    assert await ticks_fired(hub, flow["id"]) == []
    assert await pending_ticks(hub) == ["2031-03-05T08:00:00Z"]


async def test_the_grace_for_a_late_tick_is_a_setting(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    """With SMSHUB_SCHEDULE_MISSED_GRACE_S at an hour, the 9:00 tick of a hub back at
    9:20 still fires (once), and the next one is queued."""
    hub.settings = hub.settings.model_copy(update={"schedule_missed_grace_s": 3600.0})
    move = frozen(hub, START)
    flow = await publish(
        client, api_headers, scheduled({"cron": "0 9 * * *", "timezone": "Europe/Paris"})
    )
    move(datetime(2031, 3, 4, 8, 20, tzinfo=UTC))
    await tick_now(hub)
    assert await ticks_fired(hub, flow["id"]) == ["2031-03-04T08:00:00Z"]
    assert await pending_ticks(hub) == ["2031-03-05T08:00:00Z"]


async def test_a_paused_flows_tick_is_stale_and_resuming_queues_the_next(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    move = frozen(hub, START)
    flow = await publish(client, api_headers, scheduled({"every": {"minutes": 5}}))
    url = f"/api/v1/flows/{flow['id']}/enabled"
    paused = await client.post(url, json={"enabled": False}, headers=api_headers)
    assert paused.status_code == 200, paused.text
    move(at(10, 5))
    await tick_now(hub)
    assert await ticks_fired(hub, flow["id"]) == [] and await pending_ticks(hub) == []
    resumed = await client.post(url, json={"enabled": True}, headers=api_headers)
    assert resumed.status_code == 200, resumed.text
    assert await pending_ticks(hub) == [iso(at(10, 10))]


async def test_a_group_schedule_starts_one_run_per_member_through_one_broadcast(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    phone: SimPhone,
) -> None:
    move = frozen(hub, START)
    group = await make_group(client, api_headers, ANN, BEN)
    greet = {
        "id": "greet",
        "type": "sms.send",
        "config": {"to": "{{ contact.phone }}", "text": "Good morning ({{ trigger.type }})"},
    }
    document = scheduled({"every": {"days": 1}, "group_id": group}, greet)
    flow = await publish(client, api_headers, document)
    move(datetime(2031, 3, 4, 0, 0, 10, tzinfo=UTC))
    await tick_now(hub)
    await drain(hub)
    tick = "2031-03-04T00:00:00Z"
    assert await ticks_fired(hub, flow["id"]) == [tick, tick]
    # The tick job again: the same broadcast, no new runs, one SMS each.
    await schedule_tick(hub, flow["id"], "schedule", tick)
    await drain(hub)
    async with hub.db.read() as session:
        broadcasts = list((await session.execute(sa.select(Broadcast))).scalars())
        rows = await session.execute(sa.select(FlowRun).where(col(FlowRun.flow_id) == flow["id"]))
        runs = [run_of(row) for row in rows.scalars()]
    assert len(broadcasts) == 1 and broadcasts[0].group_ids == [group]
    assert broadcasts[0].status == "completed"
    assert sorted((r.contact or {})["phone"] for r in runs) == sorted([ANN, BEN])
    assert {r.trigger["data"]["group_id"] for r in runs} == {group}
    assert await texts_to(hub, ANN) == ["Good morning (schedule.tick)"]
    assert await texts_to(hub, BEN) == ["Good morning (schedule.tick)"]
    assert await pending_ticks(hub) == ["2031-03-05T00:00:00Z"]
