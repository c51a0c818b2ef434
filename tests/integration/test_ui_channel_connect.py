"""The channel page's "Connect phone" button: the same connect as the API, against the fake
of SMS Gateway for Android's webhooks API; what was registered, what is left to do on the
phone, or what to fix, on the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.app import create_app
from hub.context import Hub
from tests.conftest import ChannelFactory
from tests.e2e.helpers import Web, text_of, unescape
from tests.fakes.smsgate_api import FakeSmsGateApi


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"public_url": "https://hub.example.com"}


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    """The browser on the hub's https address (its session cookie is Secure there)."""
    transport = httpx.ASGITransport(app=create_app(hub=hub, workers=False))
    async with httpx.AsyncClient(transport=transport, base_url="https://hub.example.com") as http:
        yield http


async def test_the_button_registers_the_webhooks_and_says_what_is_left(
    web: Web, make_channel: ChannelFactory
) -> None:
    async with FakeSmsGateApi(username="sms", password="pw") as phone:
        channel = await make_channel(
            "smsgate",
            config={
                "mode": "local",
                "base_url": phone.base_url,
                "username": "sms",
                "password": "pw",
            },
        )
        page = await web.get(f"/channels/{channel.id}")
        assert page.status_code == 200
        assert f'action="/channels/{channel.id}/connect#connect"' in page.text
        assert "Connect phone" in page.text

        done = await web.post(f"/channels/{channel.id}/connect")
        assert done.status_code == 200, done.text
        text = unescape(text_of(done.text))
        for event in ("sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping"):
            assert f"smshub-{channel.id}-{event.replace(':', '-')}" in text
        assert f"https://hub.example.com/webhooks/{channel.id}" in text
        assert "Settings → Webhooks → Signing Key" in text and "Settings → Ping" in text
        assert len(phone.webhooks) == 5


async def test_a_wrong_password_is_shown_on_the_page(
    web: Web, make_channel: ChannelFactory
) -> None:
    async with FakeSmsGateApi(username="sms", password="right") as phone:
        channel = await make_channel(
            "smsgate",
            config={
                "mode": "local",
                "base_url": phone.base_url,
                "username": "sms",
                "password": "x",
            },
        )
        resp = await web.post(f"/channels/{channel.id}/connect")
    assert resp.status_code == 422
    assert 'data-connect-error="gateway_unauthorized"' in resp.text
    assert "username/password of the app's Local server settings" in unescape(resp.text)


async def test_other_gateways_have_no_button(web: Web, make_channel: ChannelFactory) -> None:
    channel = await make_channel("simulator")
    page = await web.get(f"/channels/{channel.id}")
    assert "Connect phone" not in page.text
    resp = await web.post(f"/channels/{channel.id}/connect")
    assert resp.status_code == 409
    assert "only SMS Gateway for Android" in unescape(resp.text)
