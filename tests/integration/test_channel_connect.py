"""Connect a phone (issue 13, item 1): ``POST /api/v1/channels/{id}/connect`` registers the
hub's webhooks on SMS Gateway for Android through the app's own API — here a local fake of
it that records every request — and the phone then calls them; pings keep the device's last
seen, silence raises ``device.offline`` once and the next ping ``device.online`` once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import Device, Event, Message
from hub.services import devices
from hub.wiring import default_wiring
from tests.conftest import ChannelFactory, drain, free_port
from tests.fakes.sink import Sink
from tests.fakes.smsgate_api import FakeSmsGateApi

PUBLIC = "https://hub.example.com"
EVENTS = ["sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping"]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"public_url": PUBLIC, "device_offline_after_s": 900.0}


async def _smsgate_channel(
    make_channel: ChannelFactory, phone: FakeSmsGateApi, **config: Any
) -> Any:
    values = {"mode": "local", "base_url": phone.base_url, "username": "sms", "password": "pw"}
    return await make_channel("smsgate", name="Shop phone", config={**values, **config})


async def _connect(client: httpx.AsyncClient, headers: dict[str, str], channel_id: str) -> Any:
    return await client.post(f"/api/v1/channels/{channel_id}/connect", headers=headers)


async def _phone_posts(
    client: httpx.AsyncClient,
    phone: FakeSmsGateApi,
    event: str,
    payload: dict[str, Any],
    at: datetime,
) -> list[int]:
    """The phone calls every URL registered for ``event``; the hub's answers (another
    service's registration is called too, but not by us)."""
    statuses = []
    for delivery in phone.deliveries(event, payload, at):
        if not delivery.url.startswith(PUBLIC + "/webhooks/"):
            continue
        path = delivery.url.removeprefix(PUBLIC)
        resp = await client.post(path, content=delivery.body, headers=delivery.headers)
        statuses.append(resp.status_code)
    return statuses


async def test_connect_registers_the_five_webhooks_once_and_the_phone_then_reaches_the_hub(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    async with FakeSmsGateApi(username="sms", password="pw") as phone:
        phone.webhooks["someone-else"] = {
            "id": "someone-else",
            "url": "https://crm.example.com/sms",
            "event": "sms:received",
        }
        channel = await _smsgate_channel(make_channel, phone)
        url = f"{PUBLIC}/webhooks/{channel.id}"
        ids = [f"smshub-{channel.id}-{e.replace(':', '-')}" for e in EVENTS]

        resp = await _connect(client, api_headers, channel.id)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        # The exact conversation: check it answers, one registration per event, list again.
        assert [(r.method, r.path) for r in phone.requests] == [
            ("GET", "/webhooks"),
            *[("POST", "/webhooks")] * 5,
            ("GET", "/webhooks"),
        ]
        assert all(r.basic_auth() == ("sms", "pw") for r in phone.requests)
        assert [r.json() for r in phone.requests[1:6]] == [
            {"id": hook_id, "url": url, "event": event}
            for hook_id, event in zip(ids, EVENTS, strict=True)
        ]
        assert answer["registered"] == [
            {"id": hook_id, "event": event, "url": url}
            for hook_id, event in zip(ids, EVENTS, strict=True)
        ]
        assert answer["removed"] == []
        assert answer["gateway"] == {
            "connector": "smsgate",
            "mode": "local",
            "base_url": phone.base_url,
            "webhooks_api": f"{phone.base_url}/webhooks",
        }
        secret = (await client.get(f"/api/v1/channels/{channel.id}", headers=api_headers)).json()[
            "webhook_secret"
        ]
        assert answer["signing_key"] == secret
        assert any("Signing Key" in step for step in answer["next_steps"])

        # Again: the same ids replace, nothing is added; the other registration is untouched.
        again = await _connect(client, api_headers, channel.id)
        assert again.status_code == 200, again.text
        assert again.json()["registered"] == answer["registered"]
        ours = [h for h in phone.webhooks.values() if h["url"] == url]
        assert sorted(h["event"] for h in ours) == sorted(EVENTS)
        assert len(phone.webhooks) == 6 and "someone-else" in phone.webhooks

        # Until the app's signing key is the channel's secret, the hub refuses its webhooks.
        now = datetime.now(UTC)
        sms = {"messageId": "m1", "message": "JOIN news", "sender": "+15550001234", "simNumber": 1}
        assert await _phone_posts(client, phone, "sms:received", sms, now) == [401]
        phone.signing_key = answer["signing_key"]
        assert await _phone_posts(client, phone, "sms:received", sms, now) == [200]
        async with hub.db.read() as session:
            messages = (await session.execute(sa.select(Message))).scalars().all()
        assert [(m.direction, m.from_number, m.body, m.channel_id) for m in messages] == [
            ("inbound", "+15550001234", "JOIN news", channel.id)
        ]


async def test_older_registrations_of_the_same_url_are_removed_cloud_mode(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    """Registered by hand earlier under the app's own id, it would deliver every SMS twice."""
    async with FakeSmsGateApi(username="sms", password="pw", mode="cloud") as phone:
        channel = await make_channel(
            "smsgate",
            config={
                "mode": "private",
                "base_url": phone.base_url,
                "username": "sms",
                "password": "pw",
            },
        )
        url = f"{PUBLIC}/webhooks/{channel.id}"
        phone.webhooks["Hd8s-by-hand"] = {"id": "Hd8s-by-hand", "url": url, "event": "sms:received"}
        resp = await _connect(client, api_headers, channel.id)
        assert resp.status_code == 200, resp.text
        assert resp.json()["removed"] == ["Hd8s-by-hand"]
        assert resp.json()["gateway"]["webhooks_api"] == f"{phone.base_url}/3rdparty/v1/webhooks"
        assert ("DELETE", "/3rdparty/v1/webhooks/Hd8s-by-hand") in [
            (r.method, r.path) for r in phone.requests
        ]
        assert sorted(h["event"] for h in phone.webhooks.values()) == sorted(EVENTS)


async def _device_events(hub: Hub) -> list[str]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(col(Event.type))
            .where(col(Event.type).startswith("device."))
            .order_by(col(Event.created_at))
        )
        return list(rows.scalars())


async def test_pings_keep_the_device_seen_and_silence_is_announced_once_each_way(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    assert default_wiring().periodic[devices.DEVICE_WATCH] == devices.WATCH_INTERVAL_S
    now = [datetime.now(UTC).replace(microsecond=0)]
    hub.clock = lambda: now[0]
    async with FakeSmsGateApi(username="sms", password="pw") as phone, Sink() as sink:
        subscribed = await client.post(
            "/api/v1/endpoints",
            json={"url": sink.url, "event_types": ["device.offline", "device.online"]},
            headers=api_headers,
        )
        assert subscribed.status_code == 201, subscribed.text
        channel = await _smsgate_channel(make_channel, phone)
        assert (await _connect(client, api_headers, channel.id)).status_code == 200
        phone.signing_key = (
            await client.get(f"/api/v1/channels/{channel.id}", headers=api_headers)
        ).json()["webhook_secret"]
        ping = {"health": {"status": "pass", "checks": {}}}

        assert await _phone_posts(client, phone, "system:ping", ping, now[0]) == [200]
        async with hub.db.read() as session:
            device = (await session.execute(sa.select(Device))).scalar_one()
            assert (
                await session.execute(sa.select(sa.func.count()).select_from(Message))
            ).scalar() == 0
            assert (
                await session.execute(sa.select(sa.func.count()).select_from(Event))
            ).scalar() == 0
        assert device.external_id == phone.device_id and device.last_seen_at == now[0]

        now[0] += timedelta(seconds=899)  # not yet
        await devices.device_watch(hub)
        assert await _device_events(hub) == []
        now[0] += timedelta(seconds=2)
        await devices.device_watch(hub)
        await devices.device_watch(hub)  # the next watch finds it already announced
        assert await _device_events(hub) == ["device.offline"]
        offline_at = now[0]

        now[0] += timedelta(seconds=600)
        assert await _phone_posts(client, phone, "system:ping", ping, now[0]) == [200]
        assert await _phone_posts(client, phone, "system:ping", ping, now[0]) == [200]
        await devices.device_watch(hub)
        assert await _device_events(hub) == ["device.offline", "device.online"]

        await drain(hub)
        await sink.wait_for(2)
        # Deliveries run concurrently: their order is not the events' order.
        sent = sorted((r.json() for r in sink.requests), key=lambda e: e["timestamp"])
        assert [e["type"] for e in sent] == ["device.offline", "device.online"]
        device_ref = {"id": device.id, "gateway_id": phone.device_id, "name": None}
        channel_ref = {"id": channel.id, "name": "Shop phone", "connector": "smsgate"}
        assert sent[0]["data"] == {
            "device_id": device.id,
            "channel_id": channel.id,
            "status": "offline",
            "last_seen_at": _iso(offline_at - timedelta(seconds=901)),
            "offline_at": _iso(offline_at),
            "offline_after_s": 900.0,
            "device": device_ref,
            "channel": channel_ref,
        }
        assert sent[1]["data"]["status"] == "online"
        assert sent[1]["data"]["offline_at"] == _iso(offline_at)
        assert sent[1]["data"]["last_seen_at"] == _iso(now[0])
        listed = (await client.get("/api/v1/devices", headers=api_headers)).json()
        assert [d["offline_at"] for d in listed] == [None]


async def test_a_device_of_a_disabled_channel_is_not_announced(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    now = [datetime.now(UTC)]
    hub.clock = lambda: now[0]
    async with FakeSmsGateApi(username="sms", password="pw") as phone:
        channel = await _smsgate_channel(make_channel, phone)
        phone.webhooks["p"] = {
            "id": "p",
            "url": f"{PUBLIC}/webhooks/{channel.id}",
            "event": "system:ping",
        }
        phone.signing_key = (
            await client.get(f"/api/v1/channels/{channel.id}", headers=api_headers)
        ).json()["webhook_secret"]
        assert await _phone_posts(client, phone, "system:ping", {}, now[0]) == [200]
        patched = await client.patch(
            f"/api/v1/channels/{channel.id}", json={"enabled": False}, headers=api_headers
        )
        assert patched.status_code == 200
        now[0] += timedelta(hours=2)
        await devices.device_watch(hub)
        assert await _device_events(hub) == []


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds")[:23] + "Z"


# --- errors that say what to fix ------------------------------------------------------------


async def test_unreachable_phone_says_what_to_check(
    client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    channel = await make_channel(
        "smsgate",
        config={"mode": "local", "base_url": address, "username": "sms", "password": "pw"},
    )
    resp = await _connect(client, api_headers, channel.id)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "gateway_unreachable"
    assert error["message"].startswith(f"the hub cannot reach {address}")
    assert "same network" in error["message"] and "Local server" in error["message"]


async def test_a_phone_that_does_not_answer_in_time_is_unreachable(
    client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    async with FakeSmsGateApi(username="sms", password="pw") as phone:
        phone.hang()
        channel = await _smsgate_channel(make_channel, phone, timeout_s=0.3)
        resp = await _connect(client, api_headers, channel.id)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "gateway_unreachable"
    assert "no answer within 0.3 s" in error["message"]


async def test_wrong_password_names_the_apps_local_server_settings(
    client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    async with FakeSmsGateApi(username="sms", password="the-real-one") as phone:
        channel = await _smsgate_channel(make_channel, phone)
        resp = await _connect(client, api_headers, channel.id)
        assert [r.method for r in phone.requests] == ["GET"]  # nothing registered
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "gateway_unauthorized"
    assert "username/password of the app's Local server settings" in error["message"]
    assert error["details"] == {"gateway_status": 401}


@pytest.mark.parametrize("settings_overrides", [{"public_url": "http://192.168.1.5:8000"}])
async def test_an_http_public_url_is_refused_before_calling_the_phone(
    client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    async with FakeSmsGateApi(username="sms", password="pw") as phone:
        channel = await _smsgate_channel(make_channel, phone)
        resp = await _connect(client, api_headers, channel.id)
        assert phone.requests == []
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "public_url_not_https"
    assert "set SMSHUB_PUBLIC_URL to an https URL" in error["message"]
    assert "docs/deployment.md" in error["message"] and "Caddy" in error["message"]


async def test_only_sms_gateway_for_android_channels_connect(
    client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    channel = await make_channel("simulator")
    resp = await _connect(client, api_headers, channel.id)
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "connect_unsupported"
    assert "only SMS Gateway for Android" in resp.json()["error"]["message"]
    missing = await _connect(client, api_headers, "ch_nope")
    assert missing.status_code == 404


async def test_a_disabled_channel_is_not_connected(
    client: httpx.AsyncClient, api_headers: dict[str, str], make_channel: ChannelFactory
) -> None:
    async with FakeSmsGateApi(username="sms", password="pw") as phone:
        channel = await _smsgate_channel(make_channel, phone)
        await client.patch(
            f"/api/v1/channels/{channel.id}", json={"enabled": False}, headers=api_headers
        )
        resp = await _connect(client, api_headers, channel.id)
        assert phone.requests == []
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "channel_disabled"
