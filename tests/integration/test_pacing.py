"""Per-SIM pace: 2 devices x 2 SIMs at 20 parts a minute, daily caps, spacing, waiting
for capacity, and the per-SIM limits of the devices API (simulator gateway, fake clock)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.models import Message
from hub.services.sims import capacity_wait
from tests.conftest import ChannelFactory, drain
from tests.helpers import SimPhone, fast_forward
from tests.integration.test_sending import SECRET, SIM_NUMBER, send

MINUTE = timedelta(seconds=60)


@pytest.fixture
async def channel(make_channel: ChannelFactory) -> str:
    created = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 3600},
    )
    return str(created.id)


async def two_phones(
    client: httpx.AsyncClient, headers: dict[str, str], channel: str, sims: list[dict[str, Any]]
) -> dict[str, str]:
    """Two phones texting in once each (from numbers the test never sends to), each given
    the ``sims``; their ids by gateway id."""
    phone = SimPhone(client, channel, SECRET, SIM_NUMBER)
    for i, device in enumerate(["phone-a", "phone-b"]):
        await phone.says(f"+1555000900{i}", "hi", device_id=device)
    devices = (await client.get("/api/v1/devices", headers=headers)).json()
    ids = {d["external_id"]: d["id"] for d in devices}
    for device_id in ids.values():
        resp = await client.patch(
            f"/api/v1/devices/{device_id}", json={"sims": sims}, headers=headers
        )
        assert resp.status_code == 200, resp.text
    return ids


async def outbound(hub: Hub) -> list[Message]:
    async with hub.db.read() as session:
        found = await session.execute(
            sa.select(Message).where(Message.direction == "outbound")  # type: ignore[arg-type]
        )
        return list(found.scalars())


async def run_clock(hub: Hub, now: list[datetime], rounds: int) -> int:
    """Drain; move the fake clock to the earliest next attempt; repeat until nothing waits."""
    for done in range(rounds):
        await drain(hub, timeout=60)
        waiting = [m.next_attempt_at for m in await outbound(hub) if m.status == "queued"]
        if not waiting:
            return done
        assert all(waiting), "a queued message without its next attempt"
        now[0] = max(now[0], min(w for w in waiting if w))
        await fast_forward(hub, "send_message")
    raise AssertionError(f"messages still waiting after {rounds} rounds")


async def test_two_devices_two_sims_at_20_a_minute_never_pass_the_rate_of_any_sim(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], channel: str
) -> None:
    ids = await two_phones(
        client, api_headers, channel, [{"slot": 0, "rate_per_min": 20}, {"slot": 1}]
    )
    capped = await client.patch(
        f"/api/v1/devices/{ids['phone-b']}",
        json={"sims": [{"slot": 1, "daily_cap": 30}]},
        headers=api_headers,
    )
    assert capped.json()["sims"][1]["daily_cap"] == 30
    assert capped.json()["sims"][1]["effective_rate_per_min"] == 20  # the hub default
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    now = [start]
    hub.clock = lambda: now[0]
    for i in range(200):
        resp = await send(client, api_headers, to=f"+1555100{i:04d}", message=f"news {i}")
        assert resp.status_code == 202
    await drain(hub, timeout=60)
    # 80 went at once (20 per SIM); the rest waits for capacity, and says until when.
    waiting = [m for m in await outbound(hub) if m.status == "queued"]
    assert len(waiting) == 120
    free_at = await capacity_wait(hub, channel)
    # Counted in 1-s buckets: the first bucket frees 60 s after its end.
    one_min_one_s = start + MINUTE + timedelta(seconds=1)
    assert free_at is not None and one_min_one_s <= free_at < one_min_one_s + timedelta(seconds=1)
    assert waiting[0].waiting_reason is not None
    assert waiting[0].waiting_reason.startswith("waiting for capacity until 2026-12-01T09:01:01")
    rounds = await run_clock(hub, now, rounds=20)
    assert rounds <= 6
    sent = await outbound(hub)
    assert Counter(m.status for m in sent) == {"sent": 200}
    per_sim: dict[tuple[str, int], list[datetime]] = defaultdict(list)
    for m in sent:
        assert m.device_id is not None and m.sim_slot is not None and m.handed_at is not None
        per_sim[(m.device_id, m.sim_slot)].append(m.handed_at)
    assert len(per_sim) == 4  # spread across the 4 SIMs
    for times in per_sim.values():
        for t in times:
            assert sum(1 for u in times if t <= u < t + MINUTE) <= 20
    assert len(per_sim[(ids["phone-b"], 1)]) == 30  # its daily cap held
    assert max(max(t) for t in per_sim.values()) >= start + 2 * MINUTE
    devices = (await client.get("/api/v1/devices", headers=api_headers)).json()
    usage = {(d["external_id"], s["slot"]): s["parts_today"] for d in devices for s in d["sims"]}
    assert usage[("phone-b", 1)] == 30 and sum(usage.values()) == 200


async def test_when_every_sim_is_at_its_daily_cap_the_message_waits_for_the_next_day(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], channel: str
) -> None:
    await two_phones(client, api_headers, channel, [{"slot": 0, "daily_cap": 1}])
    resp = await client.patch(
        f"/api/v1/channels/{channel}", json={"timezone": "America/New_York"}, headers=api_headers
    )
    assert resp.status_code == 200
    hub.channels.invalidate(channel)
    now = [datetime(2026, 12, 1, 15, 0, tzinfo=UTC)]
    hub.clock = lambda: now[0]
    ids = [(await send(client, api_headers, to=f"+1555200000{i}")).json()["id"] for i in range(3)]
    await drain(hub)
    messages = {m.id: m for m in await outbound(hub)}
    held = [messages[i] for i in ids if messages[i].status == "queued"]
    assert len(held) == 1  # one a SIM, then both are at their cap
    midnight_new_york = "2026-12-02T05:00:00Z"
    assert held[0].waiting_reason == f"waiting for capacity until {midnight_new_york}"
    assert await capacity_wait(hub, channel) == datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    await run_clock(hub, now, rounds=3)
    assert all(m.status == "sent" for m in await outbound(hub))


@pytest.mark.parametrize("settings_overrides", [{"send_spacing_max_s": 2.0}])
async def test_a_sims_sends_are_spaced_by_a_random_pause_of_at_most_the_setting(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], channel: str
) -> None:
    phone = SimPhone(client, channel, SECRET, SIM_NUMBER)
    await phone.says("+15550009000", "hi", device_id="phone-a")
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    hub.clock = lambda: now[0]
    for i in range(8):
        await send(client, api_headers, to=f"+1555300000{i}")
    await run_clock(hub, now, rounds=20)
    handed = sorted(m.handed_at for m in await outbound(hub) if m.handed_at)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(handed)]
    assert len(handed) == 8
    assert all(0 < g <= 2.01 for g in gaps), gaps


@pytest.mark.parametrize(
    "sims",
    [
        [{"slot": 8}],
        [{"slot": 0, "rate_per_min": 0}],
        [{"slot": 0, "daily_cap": -1}],
        [{"slot": 0}, {"slot": 0}],
        [{"slot": 0, "speed": 3}],
    ],
)
async def test_bad_sim_limits_are_a_422_naming_the_field(
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    channel: str,
    sims: list[dict[str, Any]],
) -> None:
    ids = await two_phones(client, api_headers, channel, [])
    resp = await client.patch(
        f"/api/v1/devices/{ids['phone-a']}", json={"sims": sims}, headers=api_headers
    )
    assert resp.status_code == 422, resp.text
    assert "sims" in resp.text


async def test_sim_limits_can_be_reset_to_the_default(
    client: httpx.AsyncClient, api_headers: dict[str, str], channel: str
) -> None:
    ids = await two_phones(
        client, api_headers, channel, [{"slot": 0}, {"slot": 1, "rate_per_min": 5}]
    )
    resp = await client.patch(
        f"/api/v1/devices/{ids['phone-a']}",
        json={"rate_limit_per_min": 7, "sims": [{"slot": 1, "rate_per_min": None}]},
        headers=api_headers,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["sim_slots"] == [0, 1]
    assert [(s["slot"], s["rate_per_min"], s["effective_rate_per_min"]) for s in body["sims"]] == [
        (0, None, 7),
        (1, None, 7),
    ]


async def test_a_contact_stays_on_its_sim_until_that_sim_is_at_its_daily_cap(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], channel: str
) -> None:
    ids = await two_phones(client, api_headers, channel, [{"slot": 0}, {"slot": 1}])
    await SimPhone(client, channel, SECRET, SIM_NUMBER).says(
        "+15550004444", "hi", device_id="phone-b", sim_slot=1
    )
    resp = await client.patch(
        f"/api/v1/devices/{ids['phone-b']}",
        json={"sims": [{"slot": 1, "rate_per_min": 1, "daily_cap": 2}]},
        headers=api_headers,
    )
    assert resp.status_code == 200
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    hub.clock = lambda: now[0]
    for i in range(3):
        await send(client, api_headers, to="+15550004444", message=f"reply {i}")
    await drain(hub)
    # (The three send jobs may run in any order — arq runs them side by side.)
    first = await outbound(hub)
    handed = [(m.device_id, m.sim_slot) for m in first if m.status != "queued"]
    assert handed == [(ids["phone-b"], 1)]
    # At its rate the contact's SIM is waited for, not swapped for another one...
    assert sorted(m.status for m in first).count("queued") == 2
    await run_clock(hub, now, rounds=10)
    finished = await outbound(hub)
    done = Counter((m.device_id, m.sim_slot) for m in finished)
    # ...and at its daily cap (2) another SIM of the channel takes the contact's third.
    assert done[(ids["phone-b"], 1)] == 2 and sum(done.values()) == 3
    [third] = [m for m in finished if (m.device_id, m.sim_slot) != (ids["phone-b"], 1)]
    assert third.device_id is not None and third.status == "sent"
    assert third.handed_at is not None and third.handed_at < now[0] + MINUTE
