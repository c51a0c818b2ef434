"""/metrics: every metric an operator alerts on is moved by the code path it describes.

Counters are per process and the suite shares one, so each test reads them before and
after (:class:`Scrape`); the queue gauges describe the test's own database.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from connectors.simulator import SIGNATURE_HEADER, event_body, sign_request
from hub.context import Hub
from hub.metrics import REGISTRY
from hub.store import execute, fetch_value
from tests.conftest import ChannelFactory, drain
from tests.fakes.sink import Sink
from tests.helpers import SimPhone
from tests.integration.test_flows_hub import (
    appointment,
    example,
    publish,
    start_appointment,
    without_http,
)

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ANN = "+15550001234"


class Scrape:
    """One GET /metrics, parsed: ``scrape.value(name, **labels)`` (0 when absent)."""

    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, metric: str, /, **labels: str) -> float:
        for sample in self.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
        return 0.0


async def scrape(client: httpx.AsyncClient) -> Scrape:
    resp = await client.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return Scrape(resp.text)


@pytest.fixture
async def phone(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        id="ch_metrics",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


def _signed(body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", **sign_request(SECRET, body, datetime.now(UTC))}


async def test_every_webhook_answer_is_counted_refusals_included(
    client: httpx.AsyncClient, phone: SimPhone, api_headers: dict[str, str]
) -> None:
    url = f"/webhooks/{phone.channel_id}"
    good = event_body(
        "sms.received", event_id="m1", from_number=ANN, to_number=SIM_NUMBER, text="hi"
    )
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    forged = {**_signed(good), SIGNATURE_HEADER: "0" * 64}
    before = await scrape(client)
    answers = [
        await client.post("/webhooks/ch_nope", content=good, headers=_signed(good)),  # 404
        await client.post(url, content=big, headers=_signed(big)),  # 413
        await client.post(url, content=good, headers={**_signed(good), "content-type": "a/b"}),
        await client.post(url, content=good, headers=forged),  # 401
        await client.post(url, content=b"[1]", headers=_signed(b"[1]")),  # 400
        await client.post(url, content=good, headers=_signed(good)),  # 200
    ]
    assert [r.status_code for r in answers] == [404, 413, 415, 401, 400, 200]
    patched = await client.patch(
        f"/api/v1/channels/{phone.channel_id}", json={"enabled": False}, headers=api_headers
    )
    assert patched.status_code == 200
    assert (await client.post(url, content=good, headers=_signed(good))).status_code == 403
    after = await scrape(client)

    def delta(connector: str, status: str) -> float:
        name, labels = "smshub_webhooks_total", {"connector": connector, "status": status}
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("unknown", "404") == 1
    for status in ("413", "415", "401", "400", "200", "403"):
        assert delta("simulator", status) == 1, status


@pytest.fixture
async def sinks() -> AsyncIterator[tuple[Sink, Sink]]:
    async with Sink() as happy, Sink() as gone:
        gone.always(410)
        yield happy, gone


async def test_a_conversation_moves_events_runs_steps_sends_deliveries_and_optouts(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    phone: SimPhone,
    sinks: tuple[Sink, Sink],
) -> None:
    await publish(client, api_headers, without_http(example("join_keyword")))
    for sink in sinks:
        made = await client.post(
            "/api/v1/endpoints",
            json={"url": sink.url, "event_types": ["flow.run.completed"]},
            headers=api_headers,
        )
        assert made.status_code == 201, made.text
    before = await scrape(client)
    await phone.says(ANN, "JOIN")
    await drain(hub)
    await phone.says(ANN, "STOP")
    await drain(hub)
    after = await scrape(client)

    def delta(metric: str, /, **labels: str) -> float:
        return after.value(metric, **labels) - before.value(metric, **labels)

    assert delta("smshub_events_total", type="sms.received") == 2
    assert delta("smshub_events_total", type="flow.run.completed") == 1
    assert delta("smshub_events_total", type="sms.delivered") == 2  # welcome + STOP's answer
    assert delta("smshub_flow_runs_total", status="completed") == 1
    for node_type in ("trigger.sms_received", "sms.reply", "contact.update"):
        assert delta("smshub_flow_step_seconds_count", node_type=node_type) == 1, node_type
    assert delta("smshub_flow_step_seconds_sum", node_type="sms.reply") > 0
    assert delta("smshub_sends_total", connector="simulator", outcome="accepted") == 2
    assert delta("smshub_optouts_total", action="stop") == 1
    assert delta("smshub_deliveries_total", outcome="succeeded") == 1
    assert delta("smshub_deliveries_total", outcome="failed") == 1  # the 410: a dead letter
    assert delta("smshub_jobs_total", name="send_message", outcome="done") == 2


async def test_queue_depth_oldest_due_and_dead_jobs_are_read_at_scrape_time(
    hub: Hub, client: httpx.AsyncClient, phone: SimPhone
) -> None:
    empty = await scrape(client)
    assert empty.value("smshub_queue_depth", status="pending") == 0
    assert empty.value("smshub_queue_oldest_due_seconds") == 0
    assert empty.value("smshub_jobs_dead") == 0
    await phone.says(ANN, "HELP")  # its answer: a send_message job, not drained
    await phone.says("+15550009999", "STOP")
    past = datetime.now(UTC) - timedelta(seconds=120)
    await hub.store.write(execute("UPDATE jobs SET run_at = ?", (past,)))
    await hub.store.write(
        execute(
            "UPDATE jobs SET status = 'dead' WHERE id = (SELECT MIN(id) FROM jobs)",
        )
    )
    total = await hub.store.read(fetch_value("SELECT COUNT(*) FROM jobs"))
    assert total >= 3  # the two answers, the cancellation of STOP's waiting runs
    queued = await scrape(client)
    assert queued.value("smshub_queue_depth", status="pending") == total - 1
    assert queued.value("smshub_queue_depth", status="dead") == 1
    assert queued.value("smshub_queue_depth", status="running") == 0
    assert queued.value("smshub_jobs_dead") == 1
    assert 110 < queued.value("smshub_queue_oldest_due_seconds") < 600


async def test_a_run_cancelled_by_stop_is_counted_cancelled(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    flow = await publish(client, api_headers, appointment())
    before = await scrape(client)
    assert (await start_appointment(client, api_headers, flow))["status"] == "waiting"
    await drain(hub)
    await phone.says(ANN, "STOP")  # cancels the runs waiting for this contact's reply
    await drain(hub)
    after = await scrape(client)
    for status, moved in (("cancelled", 1), ("completed", 0), ("failed", 0)):
        name = "smshub_flow_runs_total"
        assert after.value(name, status=status) - before.value(name, status=status) == moved


def test_every_metric_is_documented_with_its_labels() -> None:
    text = (Path(__file__).parents[2] / "docs" / "deployment.md").read_text()
    rows = dict(re.findall(r"^\| `(smshub_[a-z_]+)` \|([^|]*)\|", text, flags=re.M))
    for collector in REGISTRY._collector_to_names:
        assert isinstance(collector, MetricWrapperBase)
        name = collector._name + ("_total" if collector._type == "counter" else "")
        assert name in rows, name
        labels = [label.strip("` ") for label in rows[name].split(",") if label.strip()]
        assert labels == list(collector._labelnames), name
