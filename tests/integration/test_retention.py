"""Data retention on the real hub: the periodic job and ``smshub prune`` clear old message
texts and delete old events, runs and deliveries — never a dedupe key a gateway retry can
still hit, a waiting run or a pending delivery; a flow's settings keep data out of its
stored steps."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel, col

from hub.app import create_app
from hub.cli import main
from hub.context import Hub
from hub.delivery.models import Delivery, DeliveryAttempt
from hub.models import Event, FlowRun, FlowStep, Message
from hub.queue.runner import PeriodicClock
from hub.services.retention import DEDUPE_FLOOR_DAYS, KINDS
from tests.conftest import ChannelFactory, drain, free_port
from tests.e2e.helpers import set_up_admin
from tests.helpers import FIXTURE_PUBLIC_URL, SimPhone, count, load_gateway_fixtures

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ANN = "+15550001234"
BOB = "+15550005678"
EXAMPLES = Path(__file__).parents[2] / "flows" / "examples"
RETAIN = {
    "retain_message_bodies_days": 1,
    "retain_events_days": 1,  # below the dedupe floor: events stay DEDUPE_FLOOR_DAYS
    "retain_runs_days": 1,
    "retain_deliveries_days": 1,
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        **RETAIN,
        "public_url": FIXTURE_PUBLIC_URL,  # the gateway fixtures were signed for it
        # The fixture's phone is seen at its 2025 signing time, then the clock comes back to
        # now: a year of silence would announce it offline (one more event to count).
        "device_offline_after_s": 0,
        "allow_http_destinations": True,
        "delivery_retry_schedule": "0,3600",
    }


@pytest.fixture
async def phone(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


async def age(hub: Hub, model: type[SQLModel], where: Any, by: timedelta, *columns: str) -> None:
    """Move the rows' timestamps (``created_at`` unless named) back by ``by``."""
    names = columns or ("created_at",)
    table = model.__table__  # type: ignore[attr-defined]
    seconds = int(by.total_seconds())
    if hub.store.dialect == "sqlite":  # SQLite keeps timestamps as text: move them there
        shift = f"-{seconds} seconds"
        values = {
            name: sa.func.strftime("%Y-%m-%d %H:%M:%f000", table.c[name], shift) for name in names
        }
    else:
        interval = sa.literal_column(f"interval '{seconds} seconds'", type_=sa.Interval)
        values = {name: table.c[name] - interval for name in names}
    async with hub.db.write() as session:
        await session.execute(sa.update(table).where(where).values(**values))


async def run_the_job(hub: Hub) -> None:
    """The periodic clock queues ``retention_prune`` (with the others); the queue runs it."""
    assert await PeriodicClock(hub).tick()
    await drain(hub)


async def messages(hub: Hub) -> list[Message]:
    async with hub.db.read() as session:
        found = await session.execute(sa.select(Message).order_by(col(Message.id)))
        return list(found.scalars())


async def everything_stored(hub: Hub) -> str:
    """Every message, event, run and step row as text (to look for a text in)."""
    rows: list[Any] = []
    async with hub.db.read() as session:
        for model in (Message, Event, FlowRun, FlowStep):
            rows += [
                r.model_dump(mode="json")
                for r in (await session.execute(sa.select(model))).scalars()
            ]
    return json.dumps(rows, ensure_ascii=False)


# -- message bodies ------------------------------------------------------------------------


async def test_an_old_message_keeps_its_metadata_but_not_its_text(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    await phone.says(ANN, "my old secret")
    await phone.says(BOB, "still fresh")
    await phone.says(BOB, "not sent yet")
    await drain(hub)
    by_text = {m.body: m for m in await messages(hub)}
    old, fresh, unsent = (by_text[t] for t in ("my old secret", "still fresh", "not sent yet"))
    async with hub.db.write() as session:  # as if an outbound SMS waited for its gateway
        await session.execute(
            sa.update(Message)
            .where(col(Message.id) == unsent.id)
            .values(direction="outbound", status="queued")
        )
    await age(hub, Message, col(Message.id).in_([old.id, unsent.id]), timedelta(days=2))
    await age(hub, Message, col(Message.id) == fresh.id, timedelta(hours=1))
    before = (await client.get(f"/api/v1/messages/{old.id}", headers=api_headers)).json()
    assert before["body"] == "my old secret" and before["body_pruned"] is False

    await run_the_job(hub)

    shown = (await client.get(f"/api/v1/messages/{old.id}", headers=api_headers)).json()
    assert shown["body"] == "" and shown["body_pruned"] is True
    assert shown["body_pruned_at"] is not None
    kept = ("id", "direction", "from", "to", "status", "segments", "encoding", "created_at")
    assert {k: shown[k] for k in kept} == {k: before[k] for k in kept}
    assert shown["history"] == before["history"]
    young = (await client.get(f"/api/v1/messages/{fresh.id}", headers=api_headers)).json()
    assert young["body"] == "still fresh" and young["body_pruned"] is False
    listed = (await client.get("/api/v1/messages", headers=api_headers)).json()["items"]
    assert {m["id"]: m["body_pruned"] for m in listed} == {
        old.id: True,
        fresh.id: False,
        unsent.id: False,  # still to be handed to a gateway: it keeps its text
    }
    # The copy in the sms.received event went too; the young one's stays.
    stored = await everything_stored(hub)
    assert "my old secret" not in stored and "still fresh" in stored
    async with hub.db.read() as session:
        event = (
            await session.execute(sa.select(Event).where(col(Event.message_id) == old.id))
        ).scalar_one()
    assert event.payload["data"]["body"] == "" and event.payload["data"]["body_pruned"] is True
    # The conversation shows that a message was there, not an empty bubble.
    # (a browser on the public URL: the sign-in cookie is Secure on https)
    transport = httpx.ASGITransport(app=create_app(hub=hub, workers=False))
    async with httpx.AsyncClient(transport=transport, base_url=FIXTURE_PUBLIC_URL) as web:
        await set_up_admin(web)
        thread = f"/conversations/{shown['contact_id']}/{phone.channel_id}/messages"
        bubbles = await web.get(thread)
    assert bubbles.status_code == 200
    assert "Text removed by data retention" in bubbles.text and "my old secret" not in bubbles.text
    # A second pass finds nothing more to do.
    again = await client.get(f"/api/v1/messages/{old.id}", headers=api_headers)
    await run_the_job(hub)
    assert (
        await client.get(f"/api/v1/messages/{old.id}", headers=api_headers)
    ).json() == again.json()


async def test_nothing_is_pruned_when_every_setting_is_zero(
    hub: Hub, phone: SimPhone, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in RETAIN:
        monkeypatch.setattr(hub.settings, name, 0)
    await phone.says(ANN, "kept forever")
    await drain(hub)
    await age(hub, Message, sa.true(), timedelta(days=400))
    await age(hub, Event, sa.true(), timedelta(days=400))
    await run_the_job(hub)
    [message] = await messages(hub)
    assert message.body == "kept forever" and message.body_pruned_at is None
    assert await count(hub, Event) == 1


# -- the dedupe floor ----------------------------------------------------------------------

SMSGATE = next(f for f in load_gateway_fixtures() if f.id == "smsgate/sms_received")


@pytest.mark.parametrize(
    "old", [timedelta(hours=1), timedelta(days=2)], ids=["1h-old", "past-retention-in-floor"]
)
async def test_a_gateway_retry_after_pruning_is_still_a_no_op(
    hub: Hub,
    client: httpx.AsyncClient,
    make_channel: ChannelFactory,
    phone: SimPhone,
    old: timedelta,
) -> None:
    fx = SMSGATE
    await make_channel(
        fx.connector, id="ch_test", config=fx.channel_config(), webhook_secret=fx.secret
    )
    hub.clock = fx.frozen_at  # the fixture's signature is checked at its own time
    first = await client.post(fx.path, content=fx.body, headers=fx.headers)
    assert first.status_code == 200, first.text
    hub.clock = lambda: datetime.now(UTC)
    await phone.says(BOB, "long ago")  # an event past the floor: it does go
    await drain(hub)
    gateway = col(Event.channel_id) == "ch_test"
    await age(hub, Event, gateway, old)
    await age(hub, Event, ~gateway, timedelta(days=DEDUPE_FLOOR_DAYS, hours=1))
    assert await count(hub, Event) == 2

    await run_the_job(hub)

    assert await count(hub, Event) == 1  # the simulator's old event was deleted
    assert await count(hub, Event, gateway) == 1
    hub.clock = fx.frozen_at
    retry = await client.post(fx.path, content=fx.body, headers=fx.headers)
    assert retry.status_code == 200, retry.text
    assert await count(hub, Event) == 1
    assert await count(hub, Message, col(Message.channel_id) == "ch_test") == 1


# -- smshub prune --------------------------------------------------------------------------


def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, hub: Hub) -> None:
    monkeypatch.setenv("SMSHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("SMSHUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SMSHUB_SECRET_KEY", hub.settings.secret_key)
    monkeypatch.setenv("SMSHUB_BOOTSTRAP_SIMULATOR", "false")
    monkeypatch.delenv("SMSHUB_REDIS_URL", raising=False)
    for name, days in RETAIN.items():
        monkeypatch.setenv(f"SMSHUB_{name.upper()}", str(days))


def counted(out: str) -> dict[str, int]:
    lines = [line.strip().split(": ") for line in out.splitlines() if line.startswith("  ")]
    return {kind: int(value) for kind, value in lines}


async def test_prune_dry_run_changes_nothing_and_prints_what_a_real_run_does(
    hub: Hub,
    phone: SimPhone,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for n in range(3):
        await phone.says(ANN, f"text {n}")
    await drain(hub)
    by_text = {m.body: m for m in await messages(hub)}
    first, second = by_text["text 0"], by_text["text 1"]
    two = col(Message.id).in_([first.id, second.id])
    await age(hub, Message, two, timedelta(days=5))
    await age(hub, Event, col(Event.message_id).in_([first.id, second.id]), timedelta(days=5))
    cli_env(monkeypatch, tmp_path, database_url, hub)
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["prune", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert dry.startswith("would prune (dry run, nothing changed):")
    expected = dict.fromkeys(KINDS, 0) | {"message_bodies": 2, "events": 2}
    assert counted(dry) == expected
    assert sorted(m.body for m in await messages(hub)) == ["text 0", "text 1", "text 2"]
    assert await count(hub, Event) == 3

    assert await asyncio.to_thread(main, ["prune"]) == 0
    real = capsys.readouterr().out
    assert real.startswith("pruned:") and counted(real) == expected
    assert sorted(m.body for m in await messages(hub)) == ["", "", "text 2"]
    assert await count(hub, Event) == 1
    assert await asyncio.to_thread(main, ["prune"]) == 0
    assert counted(capsys.readouterr().out) == dict.fromkeys(KINDS, 0)


# -- runs and deliveries -------------------------------------------------------------------


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    gone = {n["id"] for n in doc["nodes"] if n["type"] == "http.request"}
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] not in gone]
    doc["edges"] = [e for e in doc["edges"] if e["to"] not in gone]
    return doc


async def publish(client: httpx.AsyncClient, headers: dict[str, str], doc: dict[str, Any]) -> str:
    resp = await client.post("/api/v1/flows/import?publish=true", json=doc, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def run_list(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    resp = await client.get("/api/v1/runs", headers=headers)
    assert resp.status_code == 200, resp.text
    return {r["flow_id"]: r["id"] for r in resp.json()["items"]}


async def test_finished_runs_and_deliveries_go_waiting_runs_and_pending_deliveries_stay(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    join = await publish(client, api_headers, example("join_keyword"))
    survey = await publish(client, api_headers, example("survey"))
    nowhere = f"http://127.0.0.1:{free_port()}/hook"  # refused: each attempt fails
    endpoints = []
    for _ in range(2):
        made = await client.post(
            "/api/v1/endpoints",
            json={"url": nowhere, "event_types": ["sms.received"]},
            headers=api_headers,
        )
        assert made.status_code == 201, made.text
        endpoints.append(made.json()["id"])
    await phone.says(ANN, "JOIN news")
    await phone.says(BOB, "SURVEY")
    await drain(hub)
    # One endpoint goes: its deliveries are cancelled (finished); the other's wait to retry.
    assert (
        await client.delete(f"/api/v1/endpoints/{endpoints[0]}", headers=api_headers)
    ).status_code == 204
    runs = await run_list(client, api_headers)
    done, waiting = runs[join], runs[survey]
    assert await count(hub, FlowRun, col(FlowRun.status) == "waiting") == 1
    two_days = timedelta(days=2)
    await age(hub, FlowRun, sa.true(), two_days, "created_at", "updated_at")
    await age(hub, FlowRun, col(FlowRun.finished_at).is_not(None), two_days, "finished_at")
    await age(hub, Delivery, col(Delivery.finished_at).is_not(None), two_days, "finished_at")
    await age(hub, Delivery, sa.true(), two_days, "created_at")
    await age(hub, DeliveryAttempt, sa.true(), two_days, "at")
    await age(hub, Event, sa.true(), timedelta(days=DEDUPE_FLOOR_DAYS + 1))
    pending = col(Delivery.status) == "pending"
    assert await count(hub, Delivery, pending) == 2  # one per inbound SMS, endpoint 2
    assert await count(hub, Delivery, col(Delivery.status) == "cancelled") == 2
    steps_of_done = await count(hub, FlowStep, col(FlowStep.run_id) == done)
    assert steps_of_done == 3

    await run_the_job(hub)

    assert (await client.get(f"/api/v1/runs/{done}", headers=api_headers)).status_code == 404
    assert await count(hub, FlowStep, col(FlowStep.run_id) == done) == 0
    kept = (await client.get(f"/api/v1/runs/{waiting}", headers=api_headers)).json()
    assert kept["run"]["status"] == "waiting" and kept["steps"]
    assert await count(hub, Delivery) == 2 and await count(hub, Delivery, pending) == 2
    assert await count(hub, DeliveryAttempt) == 2  # the pending ones' first attempts
    # The events the pending deliveries still have to send are kept; the rest went.
    delivered = sa.select(Delivery.event_id)
    assert await count(hub, Event, col(Event.id).in_(delivered)) == 2
    assert await count(hub, Event, col(Event.id).not_in(delivered)) == 0
    # The waiting run carries on when its contact answers.
    await phone.says(BOB, "5")
    await drain(hub)
    resumed = (await client.get(f"/api/v1/runs/{waiting}", headers=api_headers)).json()
    assert [s["node_id"] for s in resumed["steps"]][:3] == ["start", "q1", "check_rating"]


# -- the flow option -----------------------------------------------------------------------


async def test_a_flow_that_stores_no_step_data_still_runs_and_shows_its_steps_redacted(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    doc = example("join_keyword") | {"settings": {"store_step_data": False}}
    flow_id = await publish(client, api_headers, doc)
    await phone.says(ANN, "JOIN Secret Club")
    await drain(hub)
    run_id = (await run_list(client, api_headers))[flow_id]
    shown = (await client.get(f"/api/v1/runs/{run_id}", headers=api_headers)).json()
    assert shown["run"]["status"] == "completed"
    assert [s["node_id"] for s in shown["steps"]] == ["start", "welcome", "tag"]
    for step in shown["steps"]:
        assert (step["input"], step["output"], step["redacted"]) == (None, None, True)
    async with hub.db.read() as session:
        reply = (
            await session.execute(sa.select(Message).where(col(Message.to_number) == ANN))
        ).scalar_one()
        docs = (await session.execute(sa.select(FlowStep.doc))).scalars().all()
    assert reply.body == "Welcome to Secret Club! Reply STOP to opt out."
    assert "Secret Club" not in json.dumps(docs)
    exported = await client.get(f"/api/v1/flows/{flow_id}/export", headers=api_headers)
    assert exported.status_code == 200, exported.text
    assert json.loads(exported.text)["settings"] == {"store_step_data": False}


async def test_a_flow_redacting_named_fields_keeps_the_rest(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    doc = example("survey") | {"settings": {"redact": ["body", "text"]}}
    flow_id = await publish(client, api_headers, doc)
    await phone.says(BOB, "SURVEY")
    await drain(hub)
    await phone.says(BOB, "5")
    await drain(hub)
    run_id = (await run_list(client, api_headers))[flow_id]
    steps = (await client.get(f"/api/v1/runs/{run_id}", headers=api_headers)).json()["steps"]
    q1 = next(s for s in steps if s["node_id"] == "q1")
    assert q1["status"] == "succeeded" and q1["redacted"] is True
    assert q1["output"]["body"] == "[redacted]" and q1["input"]["text"] == "[redacted]"
    assert q1["output"]["from"] == BOB  # not named: kept
    assert [s["node_id"] for s in steps][:4] == ["start", "q1", "check_rating", "save_rating"]


async def test_a_bad_flow_setting_is_refused_with_422_naming_it(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    doc = example("join_keyword") | {"settings": {"store_step_data": "sometimes"}}
    resp = await client.post("/api/v1/flows/import?publish=true", json=doc, headers=api_headers)
    assert resp.status_code == 422, resp.text
    fields = [d.get("field") for d in resp.json()["error"]["details"]]
    assert "settings.store_step_data" in fields
