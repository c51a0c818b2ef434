"""The SSRF guard end to end: refusals at endpoint creation (422 naming the field), at send
time (recorded on the attempt), and DNS rebinding that never reaches 127.0.0.1.

The guard is on here (the test default turns it off); plain http is allowed so the local
listener can be used, and a scripted resolver stands in for DNS.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hub.context import Hub
from hub.delivery import send_request
from hub.delivery.models import Endpoint
from hub.delivery.signing import new_secret
from hub.ids import new_id
from hub.services.events import emit_in_session as emit
from tests.conftest import drain
from tests.fakes.sink import ConnectionProbe, Sink

GUARD_ON = {
    "allow_private_destinations": False,
    "allow_http_destinations": True,
    "delivery_retry_schedule": "0",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(GUARD_ON)


class ScriptedDNS(AbstractResolver):
    """Answers lookups from a script; the last answer repeats."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in answer
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
async def probe() -> AsyncIterator[ConnectionProbe]:
    async with ConnectionProbe() as listening:
        yield listening


def use_dns(hub: Hub, dns: ScriptedDNS) -> None:
    """Make the hub's guarded pool resolve through ``dns``."""
    hub.http.resolver_factory = lambda: dns


async def create(client: httpx.AsyncClient, auth: dict[str, str], url: str) -> httpx.Response:
    return await client.post("/api/v1/endpoints", json={"url": url}, headers=auth)


async def publish(hub: Hub, key: str) -> None:
    async with hub.db.write() as session:
        await emit(session, type="sms.received", channel_id="ch_x", dedupe_key=key, data={})


async def last_attempt(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    page = (await client.get("/api/v1/deliveries", headers=auth)).json()["items"]
    detail = await client.get(f"/api/v1/deliveries/{page[0]['id']}", headers=auth)
    attempt: dict[str, Any] = detail.json()["attempts"][-1]
    return attempt


async def test_dns_rebinding_never_reaches_loopback(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    probe: ConnectionProbe,
) -> None:
    # First answer public (the check at creation passes), then 127.0.0.1 (the attack).
    dns = ScriptedDNS(["93.184.215.14"], ["127.0.0.1"])
    use_dns(hub, dns)
    resp = await create(client, api_headers, f"http://rebind.example:{probe.port}/hook")
    assert resp.status_code == 201, resp.text
    await publish(hub, "rebind")
    await drain(hub)

    assert probe.connections == 0  # never connected to the loopback listener
    assert len(dns.lookups) >= 2  # the connection asked DNS again and got 127.0.0.1
    attempt = await last_attempt(client, api_headers)
    assert attempt["status_code"] is None
    assert "127.0.0.1 is loopback" in attempt["error"]
    assert attempt["error"].startswith("refused:")


async def test_a_name_with_any_private_address_is_refused(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], probe: ConnectionProbe
) -> None:
    use_dns(hub, ScriptedDNS(["93.184.215.14", "127.0.0.1"]))
    resp = await create(client, api_headers, f"http://mixed.example:{probe.port}/hook")
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "destination_refused"
    assert error["details"][0]["field"] == "url"
    assert "127.0.0.1 is loopback" in error["details"][0]["message"]
    assert probe.connections == 0


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
        ("https://10.0.0.7/hook", "private"),  # RFC 1918 literal
        ("https://[::ffff:127.0.0.1]/hook", "embeds 127.0.0.1"),  # mapped loopback
        ("https://2130706433/hook", "unusual spelling"),  # decimal loopback
        ("https://user:pw@example.com/hook", "password"),  # credentials
        ("https://localhost/hook", "localhost"),  # the name itself
    ],
)
async def test_refusals_at_creation_name_the_field(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], url: str, words: str
) -> None:
    resp = await create(client, api_headers, url)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["error"]["details"][0]
    assert detail["field"] == "url" and words in detail["message"]


@pytest.mark.parametrize("settings_overrides", [{"allow_private_destinations": False}])
async def test_plain_http_needs_the_setting(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    resp = await create(client, api_headers, "http://example.com/hook")
    assert resp.status_code == 422
    assert "https://" in resp.json()["error"]["details"][0]["message"]


async def test_send_time_refusal_is_recorded_on_the_attempt(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], probe: ConnectionProbe
) -> None:
    # An endpoint stored while the guard was off (or before an allow-list shrank).
    now = datetime.now(UTC)
    async with hub.db.write() as session:
        session.add(
            Endpoint(
                id=new_id("ep"),
                url=f"http://127.0.0.1:{probe.port}/hook",
                event_types=["*"],
                secret_enc=hub.box.encrypt(new_secret()),
                created_at=now,
                updated_at=now,
            )
        )
    await publish(hub, "literal")
    await drain(hub)
    attempt = await last_attempt(client, api_headers)
    assert "refused" in attempt["error"] and "loopback" in attempt["error"]
    assert probe.connections == 0


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {**GUARD_ON, "allow_private_destinations": True},  # the guard off entirely
        {**GUARD_ON, "destination_allowlist": "127.0.0.0/8"},  # just loopback opened
    ],
)
async def test_opening_the_guard_lets_the_same_request_through(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    # The control for the tests above: the same route does connect when allowed.
    use_dns(hub, ScriptedDNS(["127.0.0.1"]))
    async with Sink() as sink:
        resp = await create(client, api_headers, sink.url.replace("127.0.0.1", "local.test"))
        assert resp.status_code == 201, resp.text
        await publish(hub, "opened")
        await drain(hub)
        assert len(sink.requests) == 1


async def test_gateway_calls_do_not_go_through_the_guard(hub: Hub, probe: ConnectionProbe) -> None:
    # Connectors reach provider APIs at operator-configured base URLs (a LAN gateway is
    # normal), so hub.http.request is not guarded while user URLs are.
    response = await hub.http.request("GET", f"http://127.0.0.1:{probe.port}/api")
    assert response.status == 200 and probe.connections == 1
    outcome = await send_request(hub, url=f"http://127.0.0.1:{probe.port}/api", method="GET")
    assert outcome.status is None and outcome.error and "loopback" in outcome.error
    assert probe.connections == 1


async def test_flow_requests_resolve_through_the_guard(hub: Hub) -> None:
    use_dns(hub, ScriptedDNS(["127.0.0.1"]))
    refused = await send_request(hub, url="http://sneaky.example/x", body={"a": 1})
    assert refused.status is None and refused.error and "127.0.0.1 is loopback" in refused.error


@pytest.mark.parametrize("settings_overrides", [{"allow_private_destinations": True}])
async def test_flow_requests_get_presets_and_never_follow_redirects(hub: Hub) -> None:
    from tests.fakes.sink import Reply

    async with Sink(path="/webhook/flow") as n8n, Sink() as elsewhere:
        n8n.script(Reply(302, headers={"Location": elsewhere.url}))
        moved = await send_request(hub, url=n8n.url, body={"a": {"b": 1}}, preset="n8n")
        assert moved.status == 302 and moved.headers["location"] == elsewhere.url
        assert elsewhere.requests == []
        ok = await send_request(
            hub, url=n8n.url, method="put", headers={"X-Auth": "k"}, body={"a": {"b": 1}}
        )
        assert ok.status == 200 and ok.body == '{"ok": true}' and ok.duration_ms >= 0
    first, second = n8n.requests
    assert first.json() == {"a__b": 1}  # the n8n preset flattens
    assert first.headers["content-type"] == "application/json"
    assert second.method == "PUT" and second.headers["x-auth"] == "k"
    assert second.json() == {"a": {"b": 1}}  # generic sends the body as it is
