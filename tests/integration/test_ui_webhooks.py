"""The webhooks pages: endpoints, the test button, the delivery log, retry and replay, and
bad input shown next to the field — against a real local receiver."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.delivery.models import Delivery, Endpoint
from hub.services.events import emit_in_session as emit
from tests.conftest import drain
from tests.e2e.helpers import error_next_to, set_up_admin, unescape
from tests.fakes.sink import Sink, wait_until
from tests.helpers import count


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


async def add_endpoint(
    client: httpx.AsyncClient, csrf: str, url: str, events: list[str]
) -> httpx.Response:
    return await client.post(
        "/outbound",
        data={"_csrf": csrf, "url": url, "event_types": events, "description": "CRM"},
    )


async def settle(hub: Hub) -> None:
    async def none_pending() -> bool:
        await drain(hub)
        return await count(hub, Delivery, Delivery.status == "pending") == 0  # type: ignore[arg-type]

    await wait_until(none_pending, timeout=15)


async def test_add_an_endpoint_see_its_secret_and_test_it(
    hub: Hub, client: httpx.AsyncClient, sink: Sink
) -> None:
    csrf = await set_up_admin(client)
    resp = await add_endpoint(client, csrf, sink.url, ["sms.received", "sms.failed"])
    assert resp.status_code == 303, error_next_to(resp.text, "url") or resp.text[:500]
    page = await client.get(resp.headers["location"])
    assert page.status_code == 200
    assert re.search(r'value="whsec_[^"]+"', page.text)
    endpoint_id = resp.headers["location"].split("/")[2].split("?")[0]
    tested = await client.post(
        f"/outbound/{endpoint_id}/test", data={"_csrf": csrf, "event_type": "sms.received"}
    )
    assert tested.status_code == 200
    assert "data-test-result" in tested.text and "Delivered: HTTP 200" in tested.text
    assert len(sink.requests) == 1
    assert sink.requests[0].headers["webhook-signature"].startswith("v1,")
    listing = await client.get("/outbound")
    assert sink.url in listing.text and f'data-endpoint="{endpoint_id}"' in listing.text


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"url": "", "event_types": ["*"]}, "url", ""),  # missing
        ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url", ""),  # not http(s)
        ({"url": "https://example.com/hook", "event_types": []}, "event_types", "at least one"),
        ({"url": "https://example.com/x", "event_types": ["sms.bogus"]}, "event_types", "unknown"),
        (
            {"url": "https://example.com/x", "event_types": ["*"], "preset": "zapier"},
            "url",
            "",
        ),  # not a Zapier URL
        (
            {"url": "https://example.com/x", "event_types": ["*"], "headers": "no colon"},
            "headers",
            "Name: value",
        ),
        (
            {"url": "https://example.com/x", "event_types": ["*"], "headers": "Host: evil"},
            "headers",
            "set by the hub",
        ),
        (
            {"url": "https://example.com/x", "event_types": ["*"], "rate_limit_per_s": "lots"},
            "rate_limit_per_s",
            "",
        ),
        ({"url": "https://example.com/x", "event_types": ["*"], "preset": "aol"}, "preset", ""),
    ],
)
async def test_endpoint_form_rejects_bad_input_next_to_the_field(
    hub: Hub, client: httpx.AsyncClient, form: dict[str, object], field: str, message: str
) -> None:
    csrf = await set_up_admin(client)
    resp = await client.post("/outbound", data={"_csrf": csrf, **form})  # type: ignore[dict-item]
    assert resp.status_code == 422
    shown = error_next_to(resp.text, field)
    assert shown and message in shown, resp.text[-3000:]
    assert await count(hub, Endpoint) == 0


async def test_delivery_log_retry_and_replay(
    hub: Hub, client: httpx.AsyncClient, sink: Sink
) -> None:
    csrf = await set_up_admin(client)
    resp = await add_endpoint(client, csrf, sink.url, ["sms.received"])
    endpoint_id = resp.headers["location"].split("/")[2].split("?")[0]
    sink.always(500)
    async with hub.db.write() as session:
        await emit(
            session,
            type="sms.received",
            channel_id="ch_ui",
            dedupe_key="ui-test-1",
            data={"from": "+15550001234", "body": "hello"},
        )
    hub.queue.notify()
    await drain(hub)
    async with hub.db.write() as session:
        # Skip the retry schedule: the delivery has failed for good.
        await session.execute(sa.update(Delivery).values(status="failed", next_attempt_at=None))
    log = await client.get("/outbound/deliveries?status=failed")
    assert log.status_code == 200
    delivery_id = re.search(r'data-delivery="(dlv_\w+)"', log.text).group(1)  # type: ignore[union-attr]
    detail = await client.get(f"/outbound/deliveries/{delivery_id}")
    assert "HTTP 500" in detail.text and '"body": "hello"' in unescape(detail.text)
    sink.always(200)
    retried = await client.post(f"/outbound/deliveries/{delivery_id}/retry", data={"_csrf": csrf})
    assert retried.status_code == 303
    await settle(hub)
    async with hub.db.read() as session:
        row = await session.get(Delivery, delivery_id)
    assert row is not None and row.status == "succeeded"
    # Replay finds nothing failed now; the page says how many went again.
    replayed = await client.post(
        f"/outbound/{endpoint_id}/replay", data={"_csrf": csrf, "since": "24h"}
    )
    assert replayed.status_code == 200 and 'data-replayed="0"' in replayed.text
    bad = await client.post(f"/outbound/{endpoint_id}/replay", data={"_csrf": csrf, "since": "1y"})
    assert bad.status_code == 422 and error_next_to(bad.text, "since")
    bad_filter = await client.get("/outbound/deliveries?status=lost")
    assert bad_filter.status_code == 422 and "listed statuses" in bad_filter.text


async def test_edit_disable_rotate_and_delete(
    hub: Hub, client: httpx.AsyncClient, sink: Sink
) -> None:
    csrf = await set_up_admin(client)
    resp = await add_endpoint(client, csrf, sink.url, ["*"])
    endpoint_id = resp.headers["location"].split("/")[2].split("?")[0]
    url = f"/outbound/{endpoint_id}"
    bad = await client.post(f"{url}/edit", data={"_csrf": csrf, "url": "", "event_types": ["*"]})
    assert bad.status_code == 422 and error_next_to(bad.text, "url")
    ok = await client.post(
        f"{url}/edit",
        data={
            "_csrf": csrf,
            "url": sink.url,
            "event_types": ["sms.failed"],
            "description": "Alerts",
            "headers": "X-Token: s3cr3t-value",
        },
    )
    assert ok.status_code == 303
    async with hub.db.read() as session:
        row = await session.get(Endpoint, endpoint_id)
    assert row is not None and row.event_types == ["sms.failed"] and row.description == "Alerts"
    old_secret = row.secret_enc
    assert (
        await client.post(f"{url}/enabled", data={"_csrf": csrf, "enabled": "false"})
    ).status_code == 303
    page = await client.get(url)
    assert "disabled" in page.text and "X-Token" in page.text and "s3cr3t-value" not in page.text
    # A test send still goes out while disabled (to check it before enabling it again).
    tested = await client.post(f"{url}/test", data={"_csrf": csrf, "event_type": "sms.failed"})
    assert tested.status_code == 200 and "Delivered: HTTP 200" in tested.text
    bad = await client.post(f"{url}/test", data={"_csrf": csrf, "event_type": "sms.lost"})
    assert bad.status_code == 422 and error_next_to(bad.text, "event_type")
    assert (await client.post(f"{url}/rotate", data={"_csrf": csrf})).status_code == 303
    async with hub.db.read() as session:
        rotated = await session.get(Endpoint, endpoint_id)
    assert rotated is not None and rotated.secret_enc != old_secret
    assert (await client.post(f"{url}/delete", data={"_csrf": csrf})).status_code == 303
    assert (await client.get(url)).status_code == 404
    assert (
        await client.post("/outbound/deliveries/dlv_nope/retry", data={"_csrf": csrf})
    ).status_code == 404
